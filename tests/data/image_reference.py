"""Writes test images in every format and mode that data/image/image_io.cpp
decodes, each with PIL's own decoding beside it, for tests/data/test_image_io.cpp.

usage: /usr/bin/python3 image_reference.py OUT_DIR
Writes OUT_DIR/<name>.<ext>, OUT_DIR/<name>.rgb (Image.open(f).convert("RGB")
as raw bytes, which is what AutoMM feeds its image transforms) and
OUT_DIR/manifest.txt with one "<file> <width> <height>" line per image.
Files PIL cannot write (16-bit RGB and interlaced PNG, 4/16-bit and bitfield
BMP) are packed here by hand and still decoded by PIL for the reference.
"""
import io
import os
import random
import struct
import sys
import warnings
import zlib

from PIL import Image

warnings.simplefilter("ignore")  # PIL warns about palette transparency in bytes
out_dir = sys.argv[1]
manifest = []
W, H = 97, 61  # odd sizes exercise chroma subsampling and row padding edges
rng = random.Random(1234)


def picture(w=W, h=H, alpha=False):
    """A gradient with noise and a few hard edges: busy enough for lossy codecs."""
    data = bytearray()
    for y in range(h):
        for x in range(w):
            n = rng.randrange(-24, 25)
            r = (x * 255 // (w - 1) + n) % 256
            g = (y * 255 // (h - 1) - n) % 256
            b = 255 if (x // 16 + y // 16) % 2 else (x * y) % 256
            data += bytes((r, g, b))
            if alpha:
                data.append((x * 7 + y * 3) % 256 if x > 3 else 0)
    return Image.frombytes("RGBA" if alpha else "RGB", (w, h), bytes(data))


def record(name, write):
    path = os.path.join(out_dir, name)
    with open(path, "wb") as f:
        write(f)
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    with open(path + ".rgb", "wb") as f:
        f.write(rgb.tobytes())
    manifest.append(f"{name} {rgb.width} {rgb.height}")


def save(name, im, fmt, **options):
    record(name, lambda f: im.save(f, fmt, **options))


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(w, h, depth, color_type, pixel_bytes, row_bytes, rows, palette=b"", trns=b"", interlace=False):
    """rows: one bytes object per row, already packed. Adam7 needs >= 8-bit samples."""
    raw = bytearray()
    if not interlace:
        for row in rows:
            raw += b"\0" + row
    else:
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            for y in range(y0, h, dy):
                sub = b"".join(rows[y][x * pixel_bytes:(x + 1) * pixel_bytes] for x in range(x0, w, dx))
                if sub:
                    raw += b"\0" + sub
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    body = png_chunk(b"IHDR", ihdr)
    if palette:
        body += png_chunk(b"PLTE", palette)
    if trns:
        body += png_chunk(b"tRNS", trns)
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IDAT", zlib.compress(bytes(raw))) + png_chunk(b"IEND", b"")


def raw_png(name, *args, **kwargs):
    data = png_bytes(*args, **kwargs)
    record(name, lambda f: f.write(data))


def bmp_bytes(w, h, bpp, rows, palette=None, masks=None, top_down=False, core=False):
    """rows: packed pixel rows, top row first; palette: list of (r, g, b)."""
    stride = (w * bpp + 31) // 32 * 4
    pixels = b"".join(row.ljust(stride, b"\0") for row in (rows if top_down else rows[::-1]))
    if core:
        header = struct.pack("<IHHHH", 12, w, h, 1, bpp)
        table = b"".join(bytes((b, g, r)) for r, g, b in palette or [])
    else:
        header = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bpp, 3 if masks else 0,
                             len(pixels), 2835, 2835, len(palette or []), 0)
        table = b"".join(bytes((b, g, r, 0)) for r, g, b in palette or [])
        if masks:
            table = struct.pack("<III", *masks) + table
    offset = 14 + len(header) + len(table)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + table + pixels


def raw_bmp(name, *args, **kwargs):
    data = bmp_bytes(*args, **kwargs)
    record(name, lambda f: f.write(data))


def pack_bits(values, bits):
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc, n = (acc << bits) | v, n + bits
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


rgb = picture()
rgba = picture(alpha=True)
gray = rgb.convert("L")
pal = rgb.quantize(50)

# JPEG: PIL's save and decode go through the same libjpeg-turbo as ours.
save("q90_420.jpg", rgb, "JPEG", quality=90, subsampling=2)
save("q90_422.jpg", rgb, "JPEG", quality=90, subsampling=1)
save("q90_444.jpg", rgb, "JPEG", quality=90, subsampling=0)
save("progressive.jpg", rgb, "JPEG", quality=75, progressive=True)
save("gray.jpg", gray, "JPEG", quality=90)
save("cmyk.jpg", Image.merge("CMYK", rgb.split() + (gray,)), "JPEG", quality=90)  # with real black ink
save("big_640x480.jpg", picture(640, 480), "JPEG", quality=90)

# PNG
save("rgb.png", rgb, "PNG")
save("rgba.png", rgba, "PNG")
save("gray.png", gray, "PNG")
save("gray_alpha.png", rgba.convert("LA"), "PNG")
save("palette.png", pal, "PNG")
save("palette_trns.png", pal, "PNG", transparency=3)
save("bilevel.png", gray.convert("1"), "PNG")
save("gray_trns.png", gray, "PNG", transparency=77)
save("rgb_trns.png", rgb, "PNG", transparency=(255, 255, 255))
rgb_rows = [rgb.tobytes()[y * W * 3:(y + 1) * W * 3] for y in range(H)]
rgba_rows = [rgba.tobytes()[y * W * 4:(y + 1) * W * 4] for y in range(H)]
wide = [bytes(b for v in row for b in (v, rng.randrange(256))) for row in rgb_rows]  # 8 -> 16 bit
wide_a = [bytes(b for v in row for b in (v, rng.randrange(256))) for row in rgba_rows]
gray16 = [b"".join(struct.pack(">H", (x * 811 + y * 37) % 65536 if x % 3 else x % 300) for x in range(W))
          for y in range(H)]
raw_png("rgb16.png", W, H, 16, 2, 6, W * 6, wide)
raw_png("rgba16.png", W, H, 16, 6, 8, W * 8, wide_a)
raw_png("gray16.png", W, H, 16, 0, 2, W * 2, gray16)  # PIL: mode I, clipped to 0..255
raw_png("gray_alpha16.png", W, H, 16, 4, 4, W * 4, [r[:W * 4] for r in wide_a])
raw_png("interlaced_rgb.png", W, H, 8, 2, 3, W * 3, rgb_rows, interlace=True)
raw_png("interlaced_rgba16.png", W, H, 16, 6, 8, W * 8, wide_a, interlace=True)
raw_png("gray2.png", W, H, 2, 0, 0, 0, [pack_bits([(x + y) % 4 for x in range(W)], 2) for y in range(H)])
raw_png("palette4.png", W, H, 4, 3, 0, 0, [pack_bits([(x * y) % 13 for x in range(W)], 4) for y in range(H)],
        palette=bytes(rng.randrange(256) for _ in range(13 * 3)), trns=b"\0\x80")

# WebP: PIL decodes with the same libwebp (through its animation decoder).
save("lossy.webp", rgb, "WEBP", quality=80)
save("lossless.webp", rgb, "WEBP", lossless=True)
save("lossy_alpha.webp", rgba, "WEBP", quality=80)
save("lossless_alpha.webp", rgba, "WEBP", lossless=True)
frames = [picture(), picture(), picture()]
record("animated.webp", lambda f: frames[0].save(f, "WEBP", save_all=True, append_images=frames[1:], quality=70))

# BMP
save("rgb24.bmp", rgb, "BMP")
save("palette8.bmp", pal, "BMP")
save("gray8.bmp", gray, "BMP")
save("bilevel1.bmp", gray.convert("1"), "BMP")
colors16 = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(16)]
raw_bmp("palette4.bmp", W, H, 4, [pack_bits([(x + 3 * y) % 16 for x in range(W)], 4) for y in range(H)],
        palette=colors16)
raw_bmp("core8.bmp", W, H, 8, [bytes((x * y) % 16 for x in range(W)) for y in range(H)], palette=colors16,
        core=True)
bgr_rows = [bytes(b for x in range(W) for b in row[x * 3:x * 3 + 3][::-1]) for row in rgb_rows]
raw_bmp("topdown24.bmp", W, H, 24, bgr_rows, top_down=True)
raw_bmp("bgrx32.bmp", W, H, 32, [bytes(b for x in range(W) for b in row[x * 3:x * 3 + 3] + b"\x99")
                                 for row in bgr_rows])
raw_bmp("rgb555.bmp", W, H, 16, [b"".join(struct.pack("<H", (x * 977 + y * 131) & 0x7FFF) for x in range(W))
                                 for y in range(H)])
raw_bmp("rgb565.bmp", W, H, 16, [b"".join(struct.pack("<H", (x * 977 + y * 131) & 0xFFFF) for x in range(W))
                                 for y in range(H)], masks=(0xF800, 0x7E0, 0x1F))
raw_bmp("xbgr32_bitfields.bmp", W, H, 32, [b"".join(b"\x55" + bytes(row[x * 3:x * 3 + 3][::-1])
                                                    for x in range(W)) for row in rgb_rows],
        masks=(0xFF000000, 0xFF0000, 0xFF00))

# GIF: first frame only, palette looked up, transparency ignored.
save("palette.gif", rgb.quantize(30), "GIF")
save("transparent.gif", rgb.quantize(30), "GIF", transparency=5)
save("gray.gif", gray, "GIF")
gif_frames = [f.quantize(40) for f in frames]
record("animated.gif", lambda f: gif_frames[0].save(f, "GIF", save_all=True, append_images=gif_frames[1:],
                                                   duration=50, loop=0))

with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
