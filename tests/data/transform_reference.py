"""Reference outputs for tests/data/test_image_transforms.cpp.

usage: /usr/bin/python3 transform_reference.py OUT_DIR

Writes test images as raw RGB (<name>.rgb, row-major HWC uint8) and, for each
deterministic case, torchvision 0.14's output on the PIL image (<case>.rgb, or
<case>.f32 for normalized tensors, [3, H, W] float32). manifest.txt has one line
per image ("image NAME W H") and per case ("case ID OP IMAGE OUT_W OUT_H
PARAMS...").
"""
import os
import random
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode

BILINEAR, BICUBIC = InterpolationMode.BILINEAR, InterpolationMode.BICUBIC


def photo(w, h, seed, lo=0, hi=255):
    """Smooth colour gradients, a few edges and noise: resampling sees both."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 0.5 + 0.5 * np.sin(x / (w / 3.1) + y / (h / 1.7))
    g = (x / max(w - 1, 1)) * 0.7 + 0.3 * (((x // 17) + (y // 13)) % 2)
    b = 0.5 + 0.5 * np.cos(np.hypot(x - w / 3, y - h / 2) / 9.0)
    img = np.stack([r, g, b], -1) * (hi - lo) + lo + rng.normal(0, 6, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lines = []
    images = {
        "photo": photo(333, 251, 1, 20, 230),
        "tiny": np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8),
        "wide": photo(640, 97, 3),
        "tall": photo(61, 300, 4),
        "square": photo(64, 64, 5),
        "vga": photo(640, 480, 6),
        "flat": np.full((9, 11, 3), 77, np.uint8),
    }
    pil = {}
    for name, arr in images.items():
        arr.tofile(os.path.join(out, name + ".rgb"))
        lines.append(f"image {name} {arr.shape[1]} {arr.shape[0]}")
        pil[name] = Image.fromarray(arr, "RGB")

    count = [0]

    def case(op, image, result, *params):
        count[0] += 1
        cid = f"c{count[0]:03d}_{op}"
        if isinstance(result, torch.Tensor):
            result.numpy().astype(np.float32).tofile(os.path.join(out, cid + ".f32"))
            w, h = result.shape[2], result.shape[1]
        else:
            assert result.mode == "RGB"
            np.asarray(result).tofile(os.path.join(out, cid + ".rgb"))
            w, h = result.size
        lines.append(" ".join(["case", cid, op, image, str(w), str(h)] + [repr(float(p)) for p in params]))

    interp = {0: BILINEAR, 1: BICUBIC}
    for name, sizes in {
        "photo": [(224, 168), (100, 75), (500, 400), (333, 120), (41, 251)],
        "tiny": [(20, 13), (3, 2), (7, 11)],
        "wide": [(64, 200), (298, 45)],
        "tall": [(224, 1101), (30, 30)],
        "vga": [(298, 224), (224, 224)],
    }.items():
        for w, h in sizes:
            for code, mode in interp.items():
                case("resize", name, F.resize(pil[name], [h, w], mode), w, h, code)
    for name in ["photo", "wide", "tall", "tiny", "vga"]:
        for code, mode in interp.items():
            case("resize_shorter_side", name, F.resize(pil[name], 224 if name != "tiny" else 9, mode),
                 224 if name != "tiny" else 9, code)
    for name, sizes in {"photo": [(224, 224), (100, 51), (332, 250), (400, 260)], "tiny": [(4, 3), (10, 9), (8, 2)],
                        "tall": [(61, 61), (60, 299)]}.items():
        for w, h in sizes:
            case("center_crop", name, F.center_crop(pil[name], [h, w]), w, h)
    for top, left, h, w, size in [(10, 20, 200, 150, 224), (0, 0, 251, 333, 96), (100, 200, 30, 40, 64)]:
        case("resized_crop", "photo", F.resized_crop(pil["photo"], top, left, h, w, [size, size], BILINEAR),
             top, left, h, w, size)
    for name in ["photo", "tiny"]:
        case("hflip", name, F.hflip(pil[name]))
        case("vflip", name, F.vflip(pil[name]))
    for name in ["photo", "square", "tiny"]:
        for angle in [30, -17.5, 90, 180, 270, 7, -30, 1]:
            case("rotate", name, F.rotate(pil[name], angle), angle)
    for name in ["photo", "tall"]:
        for angle, tx, ty, scale, shx, shy in [(15, 0, 0, 1, 0, 0), (-10, 12, -7, 0.9, 0, 0), (3, 30, 5, 1.1, 0, 0),
                                              (0, 0, 0, 1, 20, 0), (25, -3, 4, 0.95, -8, 5), (0, 5, 9, 1, 0, 0),
                                              (0, 0, 0, 1.3, 0, 0)]:
            case("affine", name, F.affine(pil[name], angle, [tx, ty], scale, [shx, shy]),
                 angle, tx, ty, scale, shx, shy)
    # AutoMM's shear / translate ops call PIL's transform directly.
    for name in ["photo", "square"]:
        for m in [(1, 0.21, 0, 0, 1, 0), (1, -0.3, 0, 0, 1, 0), (1, 0, 0, 0.09, 1, 0), (1, 0, -7, 0, 1, 0),
                  (1, 0, 0, 0, 1, 10), (1, 0, 30.0, 0, 1, 0), (1, 0, 0, 0, 1, -30.0)]:
            case("transform_affine", name, pil[name].transform(pil[name].size, Image.AFFINE, m), *m)
    for name in ["photo", "wide", "tiny", "flat"]:
        case("autocontrast", name, F.autocontrast(pil[name]))
        case("equalize", name, F.equalize(pil[name]))
        case("invert", name, F.invert(pil[name]))
        for t in [128, 76.8, 0, 256]:
            case("solarize", name, F.solarize(pil[name], t), t)
        for bits in [1, 2, 4, 8]:
            case("posterize", name, F.posterize(pil[name], bits), bits)
        for add in [33.0, 0.0, 110.0]:  # AutoMM randaug's SolarizeAdd
            arr = np.clip(np.array(pil[name]).astype(int) + add, 0, 255).astype(np.uint8)
            case("solarize_add", name, ImageOps.solarize(Image.fromarray(arr), 128), add)
        for f in [0.1, 0.64, 1.0, 1.5, 1.8]:
            case("brightness", name, F.adjust_brightness(pil[name], f), f)
            case("contrast", name, F.adjust_contrast(pil[name], f), f)
            case("saturation", name, F.adjust_saturation(pil[name], f), f)
            case("sharpness", name, F.adjust_sharpness(pil[name], f), f)
        for hf in [0.1, -0.2, 0.5, -0.5, 0.0, 0.37]:
            case("hue", name, F.adjust_hue(pil[name], hf), hf)
    norms = {0: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
             1: ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))}
    for code, (mean, std) in norms.items():
        for name in ["photo", "tiny"]:
            case("normalize", name, F.normalize(F.to_tensor(pil[name]), mean, std), code)
    # The whole default val pipeline, end to end.
    val = F.center_crop(F.resize(pil["vga"], 224, BICUBIC), 224)
    case("val_pipeline", "vga", F.normalize(F.to_tensor(val), *norms[0]), 0)

    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def trivial_augment(img):
    """AutoMM's data/trivial_augmenter.py TrivialAugment(IMAGE, 30) for images."""
    op = random.randrange(14)
    level = random.randint(0, 30) / 30
    sign = -1 if random.random() > 0.5 else 1
    enhancers = {5: ImageEnhance.Color, 7: ImageEnhance.Contrast, 8: ImageEnhance.Brightness, 9: ImageEnhance.Sharpness}
    if op == 1:
        return ImageOps.autocontrast(img)
    if op == 2:
        return ImageOps.equalize(img)
    if op == 3:
        return img.rotate(sign * int(level * 30))
    if op == 4:
        return ImageOps.solarize(img, 256 - int(level * 256))
    if op == 6:
        return ImageOps.posterize(img, 4 - int(level * 4))
    if op in enhancers:
        return enhancers[op](img).enhance(level * 1.7 + 0.1)
    affine = {10: (1, sign * level * 0.3, 0, 0, 1, 0), 11: (1, 0, 0, sign * level * 0.3, 1, 0),
              12: (1, 0, sign * int(level * 10), 0, 1, 0), 13: (1, 0, 0, 0, 1, sign * int(level * 10))}
    if op in affine:
        return img.transform(img.size, Image.AFFINE, affine[op])
    return img


if __name__ == "__main__":
    main()
