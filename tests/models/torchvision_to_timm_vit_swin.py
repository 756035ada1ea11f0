"""Reference outputs of torchvision 0.14's ViT-B/32 and Swin-T for tests/models/test_timm_vit_swin.cpp.

usage: /usr/bin/python3 torchvision_to_timm_vit_swin.py OUT_DIR

Builds torchvision.models.vit_b_32() and swin_t() with seeded random weights
(far from the init: torchvision zeroes the ViT head), runs them in eval mode on
a seeded [2, 3, 224, 224] batch and writes, per timm model name,
OUT_DIR/NAME/weights.safetensors (the weights under timm >= 0.9's names) and
OUT_DIR/NAME/io.safetensors (images, logits, pre-logits features). For the ViT
also a random 10 x 10-grid pos_embed and its bicubic, antialiased resampling to
7 x 7 (timm's resample_abs_pos_embed, here through torch's F.interpolate).

Name mapping (torchvision -> timm):
  ViT:  conv_proj -> patch_embed.proj, class_token -> cls_token,
        encoder.pos_embedding -> pos_embed, encoder.layers.encoder_layer_i -> blocks.i with
        ln_1 / ln_2 -> norm1 / norm2, self_attention.in_proj_{weight,bias} -> attn.qkv.{weight,bias}
        (both fuse q, k, v in that order), self_attention.out_proj -> attn.proj,
        mlp.0 / mlp.3 -> mlp.fc1 / mlp.fc2; encoder.ln -> norm; heads.head -> head.
  Swin: features.0.0 / features.0.2 -> patch_embed.proj / patch_embed.norm,
        features.(2k+1).j -> layers.k.blocks.j (mlp.0 / mlp.3 -> mlp.fc1 / mlp.fc2),
        features.(2k) (k >= 1, PatchMerging) -> layers.k.downsample (timm >= 0.9 puts the merge at
        the start of the stage it feeds), norm -> norm, head -> head.fc.
        Patch merging needs no channel permutation: torchvision concatenates x0 = (0::2, 0::2),
        x1 = (1::2, 0::2), x2 = (0::2, 1::2), x3 = (1::2, 1::2), which is the order timm's
        reshape(B, H/2, 2, W/2, 2, C).permute(0, 1, 3, 4, 2, 5) produces.
        relative_position_index (flat in torchvision) is written reshaped [N, N]; timm and the
        C++ loader ignore it.
"""
import os
import re
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402


def vit_name(name):
    rules = [
        (r"^conv_proj\.", "patch_embed.proj."),
        (r"^class_token$", "cls_token"),
        (r"^encoder\.pos_embedding$", "pos_embed"),
        (r"^encoder\.ln\.", "norm."),
        (r"^heads\.head\.", "head."),
        (r"^encoder\.layers\.encoder_layer_(\d+)\.", r"blocks.\1."),
        (r"\.ln_1\.", ".norm1."),
        (r"\.ln_2\.", ".norm2."),
        (r"\.self_attention\.in_proj_(weight|bias)$", r".attn.qkv.\1"),
        (r"\.self_attention\.out_proj\.", ".attn.proj."),
        (r"\.mlp\.0\.", ".mlp.fc1."),
        (r"\.mlp\.3\.", ".mlp.fc2."),
    ]
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name


def swin_name(name):
    match = re.match(r"^features\.(\d+)\.(.*)$", name)
    if match:
        index, rest = int(match.group(1)), match.group(2)
        if index == 0:
            rest = re.sub(r"^0\.", "proj.", rest)
            rest = re.sub(r"^2\.", "norm.", rest)
            return "patch_embed." + rest
        if index % 2 == 1:
            name = "layers.%d.blocks.%s" % (index // 2, rest)
        else:
            name = "layers.%d.downsample.%s" % (index // 2, rest)
    name = re.sub(r"\.mlp\.0\.", ".mlp.fc1.", name)
    name = re.sub(r"\.mlp\.3\.", ".mlp.fc2.", name)
    name = re.sub(r"^head\.", "head.fc.", name)
    return name


def randomize(model, timm_name):
    """Weights far from the init so every term moves the logits: norm scales ~1 +- 0.2,
    biases ~0.1, position / bias tables and tokens ~0.5, matrices 1 / sqrt(fan_in)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            timm = timm_name(name)
            if p.dim() == 1 and "norm" in timm and timm.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif timm in ("cls_token", "pos_embed") or timm.endswith("relative_position_bias_table"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / (p[0].numel() ** 0.5))


def run(model, head, timm_name, seed):
    torch.manual_seed(seed)
    randomize(model, timm_name)
    model.eval()
    captured = {}
    head.register_forward_pre_hook(lambda module, inputs: captured.update(features=inputs[0].detach().clone()))
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = model(images)
    weights = {}
    for name, tensor in model.state_dict().items():
        timm = timm_name(name)
        if timm.endswith("relative_position_index"):
            side = int(round(tensor.numel() ** 0.5))
            tensor = tensor.reshape(side, side)
        weights[timm] = tensor
    return weights, {"images": images, "logits": logits, "features": captured["features"]}


def pos_embed_resample_case(dim):
    old = torch.randn(1, 1 + 10 * 10, dim)
    grid = old[:, 1:].reshape(1, 10, 10, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(7, 7), mode="bicubic", antialias=True, align_corners=False)
    resampled = torch.cat([old[:, :1], grid.permute(0, 2, 3, 1).reshape(1, 49, dim)], dim=1)
    return {"pos_embed_10x10": old, "pos_embed_10x10_as_7x7": resampled}


def write(out_dir, name, weights, io):
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "weights.safetensors"), weights)
    write_safetensors(os.path.join(folder, "io.safetensors"), io)


def main():
    out_dir = sys.argv[1]
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    torch.manual_seed(0)
    vit = torchvision.models.vit_b_32()
    weights, io = run(vit, vit.heads, vit_name, seed=1)
    io.update(pos_embed_resample_case(768))
    write(out_dir, "vit_base_patch32_224", weights, io)

    torch.manual_seed(2)
    swin = torchvision.models.swin_t()
    weights, io = run(swin, swin.head, swin_name, seed=3)
    write(out_dir, "swin_tiny_patch4_window7_224", weights, io)


if __name__ == "__main__":
    main()
