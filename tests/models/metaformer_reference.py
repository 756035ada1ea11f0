"""Independent reference for tests/models/test_timm_metaformer.cpp.

torchvision has no MetaFormer, so this is a transcription, in plain torch, of
timm's timm/models/metaformer.py (huggingface/pytorch-image-models commit
1e35a5d942aef8425e2d536bd54297f4029415ef, timm 1.0.x; the module layout and
names are unchanged since timm 0.9) and the timm.layers pieces it uses
(LayerNorm, LayerNorm2d: eps 1e-6; Mlp; SelectAdaptivePool2d('avg')). Only the
CAFormer / ConvFormer path is kept: Stem, Downsampling, Scale, SquaredReLU,
StarReLU, Attention (the non-fused branch, equal to F.scaled_dot_product_attention),
LayerNorm2dNoBias, LayerNormNoBias, SepConv, MlpHead, MetaFormerBlock,
MetaFormerStage, MetaFormer. Dropout / drop path (0 in timm's defaults),
gradient checkpointing, feature extraction and weight init are left out: the
weights come from the test. Module attributes keep timm's names, so
load_state_dict(strict=True) checks the C++ model's parameter names.

For each CASE named on the command line it reads

  DIR/CASE/config.json          {"depths": [...], "dims": [...], "num_classes": N,
                                 "token_mixers": ["sep_conv" | "attention", ...]}
  DIR/CASE/weights.safetensors  parameters under timm's names
  DIR/CASE/inputs.safetensors   images: float32 [batch, 3, H, W]

and writes DIR/CASE/outputs.safetensors with features (forward_head(...,
pre_logits=True), [batch, dims[-1]]) and, for num_classes > 0, logits.

Usage: /usr/bin/python3 metaformer_reference.py DIR CASE [CASE ...]   (needs torch 1.13, numpy)
"""
import json
import os
import sys
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_io import read_safetensors, write_safetensors

# --- timm.layers ------------------------------------------------------------------------------


class LayerNorm(nn.LayerNorm):
    """timm.layers.LayerNorm: channels last, eps 1e-6."""

    def __init__(self, num_channels, eps=1e-6, affine=True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class LayerNorm2d(nn.LayerNorm):
    """timm.layers.LayerNorm2d: LayerNorm over the channels of NCHW, eps 1e-6."""

    def __init__(self, num_channels, eps=1e-6, affine=True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return x


class Mlp(nn.Module):
    """timm.layers.Mlp (no norm, no dropout)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, bias=True,
                 drop=0., use_conv=False):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        linear_layer = partial(nn.Conv2d, kernel_size=1) if use_conv else nn.Linear
        self.fc1 = linear_layer(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = linear_layer(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop1(x)
        x = self.norm(x)
        x = self.fc2(x)
        x = self.drop2(x)
        return x


class SelectAdaptivePool2d(nn.Module):
    """timm.layers.SelectAdaptivePool2d(pool_type='avg', flatten=False)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(x)


# --- timm/models/metaformer.py ------------------------------------------------------------------


class Stem(nn.Module):
    def __init__(self, in_channels, out_channels, norm_layer=None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=7, stride=4, padding=2)
        self.norm = norm_layer(out_channels) if norm_layer else nn.Identity()

    def forward(self, x):
        x = self.conv(x)
        x = self.norm(x)
        return x


class Downsampling(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, norm_layer=None):
        super().__init__()
        self.norm = norm_layer(in_channels) if norm_layer else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        x = self.norm(x)
        x = self.conv(x)
        return x


class Scale(nn.Module):
    def __init__(self, dim, init_value=1.0, trainable=True, use_nchw=True):
        super().__init__()
        self.shape = (dim, 1, 1) if use_nchw else (dim,)
        self.scale = nn.Parameter(init_value * torch.ones(dim), requires_grad=trainable)

    def forward(self, x):
        return x * self.scale.view(self.shape)


class SquaredReLU(nn.Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.relu = nn.ReLU(inplace=inplace)

    def forward(self, x):
        return torch.square(self.relu(x))


class StarReLU(nn.Module):
    def __init__(self, scale_value=1.0, bias_value=0.0, scale_learnable=True, bias_learnable=True, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.relu = nn.ReLU(inplace=inplace)
        self.scale = nn.Parameter(scale_value * torch.ones(1), requires_grad=scale_learnable)
        self.bias = nn.Parameter(bias_value * torch.ones(1), requires_grad=bias_learnable)

    def forward(self, x):
        return self.scale * self.relu(x) ** 2 + self.bias


class Attention(nn.Module):
    def __init__(self, dim, head_dim=32, num_heads=None, qkv_bias=False, attn_drop=0., proj_drop=0.,
                 proj_bias=False, **kwargs):
        super().__init__()
        self.head_dim = head_dim
        self.scale = head_dim ** -0.5
        self.num_heads = num_heads if num_heads else dim // head_dim
        if self.num_heads == 0:
            self.num_heads = 1
        self.attention_dim = self.num_heads * self.head_dim
        self.qkv = nn.Linear(dim, self.attention_dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(self.attention_dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class LayerNorm2dNoBias(LayerNorm2d):
    def __init__(self, num_channels, **kwargs):
        super().__init__(num_channels, **kwargs)
        self.eps = kwargs.get('eps', 1e-6)
        self.bias = None


class LayerNormNoBias(nn.LayerNorm):
    def __init__(self, num_channels, **kwargs):
        super().__init__(num_channels, **kwargs)
        self.eps = kwargs.get('eps', 1e-6)
        self.bias = None


class SepConv(nn.Module):
    def __init__(self, dim, expansion_ratio=2, act1_layer=StarReLU, act2_layer=nn.Identity, bias=False,
                 kernel_size=7, padding=3, **kwargs):
        super().__init__()
        mid_channels = int(expansion_ratio * dim)
        self.pwconv1 = nn.Conv2d(dim, mid_channels, kernel_size=1, bias=bias)
        self.act1 = act1_layer()
        self.dwconv = nn.Conv2d(mid_channels, mid_channels, kernel_size=kernel_size, padding=padding,
                                groups=mid_channels, bias=bias)
        self.act2 = act2_layer()
        self.pwconv2 = nn.Conv2d(mid_channels, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        x = self.pwconv1(x)
        x = self.act1(x)
        x = self.dwconv(x)
        x = self.act2(x)
        x = self.pwconv2(x)
        return x


class MlpHead(nn.Module):
    def __init__(self, dim, num_classes=1000, mlp_ratio=4, act_layer=SquaredReLU, norm_layer=LayerNorm,
                 drop_rate=0., bias=True):
        super().__init__()
        hidden_features = int(mlp_ratio * dim)
        self.fc1 = nn.Linear(dim, hidden_features, bias=bias)
        self.act = act_layer()
        self.norm = norm_layer(hidden_features)
        self.fc2 = nn.Linear(hidden_features, num_classes, bias=bias)
        self.head_drop = nn.Dropout(drop_rate)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.norm(x)
        x = self.head_drop(x)
        x = self.fc2(x)
        return x


class MetaFormerBlock(nn.Module):
    def __init__(self, dim, token_mixer, mlp_act=StarReLU, mlp_bias=False, norm_layer=LayerNorm2d, proj_drop=0.,
                 use_nchw=True, layer_scale_init_value=None, res_scale_init_value=None, **kwargs):
        super().__init__()
        ls_layer = partial(Scale, dim=dim, init_value=layer_scale_init_value, use_nchw=use_nchw)
        rs_layer = partial(Scale, dim=dim, init_value=res_scale_init_value, use_nchw=use_nchw)

        self.norm1 = norm_layer(dim)
        self.token_mixer = token_mixer(dim=dim, proj_drop=proj_drop, **kwargs)
        self.drop_path1 = nn.Identity()
        self.layer_scale1 = ls_layer() if layer_scale_init_value is not None else nn.Identity()
        self.res_scale1 = rs_layer() if res_scale_init_value is not None else nn.Identity()

        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(4 * dim), act_layer=mlp_act, bias=mlp_bias, drop=proj_drop, use_conv=use_nchw)
        self.drop_path2 = nn.Identity()
        self.layer_scale2 = ls_layer() if layer_scale_init_value is not None else nn.Identity()
        self.res_scale2 = rs_layer() if res_scale_init_value is not None else nn.Identity()

    def forward(self, x):
        x = self.res_scale1(x) + self.layer_scale1(self.drop_path1(self.token_mixer(self.norm1(x))))
        x = self.res_scale2(x) + self.layer_scale2(self.drop_path2(self.mlp(self.norm2(x))))
        return x


class MetaFormerStage(nn.Module):
    def __init__(self, in_chs, out_chs, depth=2, token_mixer=nn.Identity, mlp_act=StarReLU, mlp_bias=False,
                 downsample_norm=LayerNorm2d, norm_layer=LayerNorm2d, proj_drop=0., layer_scale_init_value=None,
                 res_scale_init_value=None, **kwargs):
        super().__init__()
        self.use_nchw = not issubclass(token_mixer, Attention)
        # don't downsample if in_chs and out_chs are the same
        self.downsample = nn.Identity() if in_chs == out_chs else Downsampling(
            in_chs, out_chs, kernel_size=3, stride=2, padding=1, norm_layer=downsample_norm)
        self.blocks = nn.Sequential(*[MetaFormerBlock(
            dim=out_chs, token_mixer=token_mixer, mlp_act=mlp_act, mlp_bias=mlp_bias, norm_layer=norm_layer,
            proj_drop=proj_drop, layer_scale_init_value=layer_scale_init_value,
            res_scale_init_value=res_scale_init_value, use_nchw=self.use_nchw, **kwargs) for _ in range(depth)])

    def forward(self, x):
        x = self.downsample(x)
        B, C, H, W = x.shape
        if not self.use_nchw:
            x = x.reshape(B, C, -1).transpose(1, 2)
        x = self.blocks(x)
        if not self.use_nchw:
            x = x.transpose(1, 2).reshape(B, C, H, W)
        return x


class MetaFormer(nn.Module):
    def __init__(self, in_chans=3, num_classes=1000, depths=(2, 2, 6, 2), dims=(64, 128, 320, 512),
                 token_mixers=nn.Identity, mlp_act=StarReLU, mlp_bias=False, drop_rate=0.0,
                 layer_scale_init_values=None, res_scale_init_values=(None, None, 1.0, 1.0),
                 downsample_norm=LayerNorm2dNoBias, norm_layers=LayerNorm2dNoBias, output_norm=LayerNorm2d,
                 use_mlp_head=True, **kwargs):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = dims[-1]
        self.drop_rate = drop_rate
        self.use_mlp_head = use_mlp_head
        self.num_stages = len(depths)
        if not isinstance(token_mixers, (list, tuple)):
            token_mixers = [token_mixers] * self.num_stages
        if not isinstance(norm_layers, (list, tuple)):
            norm_layers = [norm_layers] * self.num_stages
        if not isinstance(layer_scale_init_values, (list, tuple)):
            layer_scale_init_values = [layer_scale_init_values] * self.num_stages
        if not isinstance(res_scale_init_values, (list, tuple)):
            res_scale_init_values = [res_scale_init_values] * self.num_stages

        self.stem = Stem(in_chans, dims[0], norm_layer=downsample_norm)
        stages = []
        prev_dim = dims[0]
        for i in range(self.num_stages):
            stages += [MetaFormerStage(
                prev_dim, dims[i], depth=depths[i], token_mixer=token_mixers[i], mlp_act=mlp_act,
                mlp_bias=mlp_bias, layer_scale_init_value=layer_scale_init_values[i],
                res_scale_init_value=res_scale_init_values[i], downsample_norm=downsample_norm,
                norm_layer=norm_layers[i], **kwargs)]
            prev_dim = dims[i]
        self.stages = nn.Sequential(*stages)

        if num_classes > 0:
            final = MlpHead(self.num_features, num_classes, drop_rate=self.drop_rate) if self.use_mlp_head \
                else nn.Linear(self.num_features, num_classes)
        else:
            final = nn.Identity()
        self.head = nn.Sequential(OrderedDict([
            ('global_pool', SelectAdaptivePool2d()),
            ('norm', output_norm(self.num_features)),
            ('flatten', nn.Flatten(1)),
            ('drop', nn.Dropout(drop_rate) if self.use_mlp_head else nn.Identity()),
            ('fc', final),
        ]))

    def forward_head(self, x, pre_logits=False):
        x = self.head.global_pool(x)
        x = self.head.norm(x)
        x = self.head.flatten(x)
        x = self.head.drop(x)
        return x if pre_logits else self.head.fc(x)

    def forward_features(self, x):
        x = self.stem(x)
        x = self.stages(x)
        return x

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


# caformer_* / convformer_*: norm_layers follow the token mixers.
_MIXERS = {"sep_conv": (SepConv, LayerNorm2dNoBias), "attention": (Attention, LayerNormNoBias)}


def build(config):
    mixers = [_MIXERS[name] for name in config["token_mixers"]]
    return MetaFormer(depths=config["depths"], dims=config["dims"], num_classes=config["num_classes"],
                      token_mixers=[mixer for mixer, _ in mixers], norm_layers=[norm for _, norm in mixers])


def run_case(folder):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    model = build(config)
    model.load_state_dict(read_safetensors(os.path.join(folder, "weights.safetensors")), strict=True)
    model.eval()
    images = read_safetensors(os.path.join(folder, "inputs.safetensors"))["images"]
    outputs = {}
    with torch.no_grad():
        features = model.forward_features(images)
        outputs["features"] = model.forward_head(features, pre_logits=True)
        if config["num_classes"] > 0:
            outputs["logits"] = model.forward_head(features)
    write_safetensors(os.path.join(folder, "outputs.safetensors"), outputs)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: metaformer_reference.py DIR CASE [CASE ...]")
    for case in sys.argv[2:]:
        run_case(os.path.join(sys.argv[1], case))


if __name__ == "__main__":
    main()
