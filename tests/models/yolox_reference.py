"""Independent reference for the C++ YOLOX network parity test (test_yolox.cpp).

Plain-torch transcription of mmdet 3.x's modules as AutoMM's YOLOX configs build them:
mmdet/models/backbones/csp_darknet.py (Focus, SPPBottleneck, CSPDarknet arch P5),
mmdet/models/layers/csp_layer.py (DarknetBottleneck, CSPLayer without channel attention),
mmdet/models/necks/yolox_pafpn.py (YOLOXPAFPN), mmdet/models/dense_heads/yolox_head.py
(YOLOXHead's layers and forward), with mmcv's ConvModule (conv without bias, BatchNorm2d
as `bn`, Swish = x * sigmoid(x)) and DepthwiseSeparableConvModule (depthwise_conv +
pointwise_conv, each a ConvModule with its activation). BN eps 1e-3, momentum 0.03.
Module attribute names follow mmdet, so state_dict() keys are mmdet's.

Per CASE, DIR/CASE/config.json holds deepen, widen, depthwise, neck_channels, num_classes,
forward (bool) and train (bool). The weights (weights.safetensors: parameters and buffers)
load with strict=True. Outputs (outputs.safetensors):
  num_parameters [1] (int64), always;
  with forward: cls_l [B, C, H/s, W/s], reg_l [B, 4, ..], obj_l [B, 1, ..] for levels
  l = 0, 1, 2 (strides 8, 16, 32) of inputs.safetensors' images [B, 3, H, W]; with train the
  forward runs in train mode (batch statistics) and every buffer afterwards is written as
  "state.<name>" (running stats and num_batches_tracked after the update).

Usage: /usr/bin/python3 yolox_reference.py DIR CASE [CASE ...]   (needs torch, numpy)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_common import run_reference_cases


class ConvModule(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2 if k > 1 else 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.03)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x * torch.sigmoid(x)


class DepthwiseSeparableConvModule(nn.Module):
    def __init__(self, cin, cout, k, stride=1):
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, k, stride, groups=cin)
        self.pointwise_conv = ConvModule(cin, cout, 1)

    def forward(self, x):
        return self.pointwise_conv(self.depthwise_conv(x))


def conv3x3(cin, cout, stride, depthwise):
    return DepthwiseSeparableConvModule(cin, cout, 3, stride) if depthwise else ConvModule(cin, cout, 3, stride)


class Focus(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvModule(cin * 4, cout, 3)

    def forward(self, x):
        return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), dim=1))


class SPPBottleneck(nn.Module):
    def __init__(self, cin, cout, kernel_sizes=(5, 9, 13)):
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), cout, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class DarknetBottleneck(nn.Module):
    def __init__(self, cin, cout, expansion, add_identity, depthwise):
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = ConvModule(cin, hidden, 1)
        self.conv2 = conv3x3(hidden, cout, 1, depthwise)
        self.add_identity = add_identity and cin == cout

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    def __init__(self, cin, cout, num_blocks, add_identity, depthwise, expand_ratio=0.5):
        super().__init__()
        mid = int(cout * expand_ratio)
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.final_conv = ConvModule(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*[DarknetBottleneck(mid, mid, 1.0, add_identity, depthwise)
                                      for _ in range(num_blocks)])

    def forward(self, x):
        x_short = self.short_conv(x)
        x_main = self.blocks(self.main_conv(x))
        return self.final_conv(torch.cat((x_main, x_short), dim=1))


class CSPDarknet(nn.Module):
    P5 = [[64, 128, 3, True, False], [128, 256, 9, True, False], [256, 512, 9, True, False],
          [512, 1024, 3, False, True]]

    def __init__(self, deepen, widen, depthwise, out_indices=(2, 3, 4)):
        super().__init__()
        self.out_indices = out_indices
        self.stem = Focus(3, int(self.P5[0][0] * widen))
        self.layers = ['stem']
        for i, (cin, cout, n, add_identity, use_spp) in enumerate(self.P5):
            cin, cout = int(cin * widen), int(cout * widen)
            n = max(round(n * deepen), 1)  # Python's round: half to even
            stage = [conv3x3(cin, cout, 2, depthwise)]
            if use_spp:
                stage.append(SPPBottleneck(cout, cout))
            stage.append(CSPLayer(cout, cout, n, add_identity, depthwise))
            self.add_module(f'stage{i + 1}', nn.Sequential(*stage))
            self.layers.append(f'stage{i + 1}')

    def forward(self, x):
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class YOLOXPAFPN(nn.Module):
    def __init__(self, in_channels, out_channels, num_csp_blocks, depthwise):
        super().__init__()
        self.in_channels = in_channels
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1))
            self.top_down_blocks.append(
                CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1], num_csp_blocks, False, depthwise))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1):
            self.downsamples.append(conv3x3(in_channels[idx], in_channels[idx], 2, depthwise))
            self.bottom_up_blocks.append(
                CSPLayer(in_channels[idx] * 2, in_channels[idx + 1], num_csp_blocks, False, depthwise))
        self.out_convs = nn.ModuleList([ConvModule(c, out_channels, 1) for c in in_channels])

    def forward(self, inputs):
        n = len(self.in_channels)
        inner_outs = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            feat_high = self.reduce_layers[n - 1 - idx](inner_outs[0])
            inner_outs[0] = feat_high
            inner_out = self.top_down_blocks[n - 1 - idx](torch.cat([self.upsample(feat_high), inputs[idx - 1]], 1))
            inner_outs.insert(0, inner_out)
        outs = [inner_outs[0]]
        for idx in range(n - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner_outs[idx + 1]], 1)))
        return tuple(conv(out) for conv, out in zip(self.out_convs, outs))


class YOLOXHead(nn.Module):
    def __init__(self, num_classes, in_channels, feat_channels, depthwise, stacked_convs=2, strides=(8, 16, 32)):
        super().__init__()
        self.multi_level_cls_convs = nn.ModuleList()
        self.multi_level_reg_convs = nn.ModuleList()
        self.multi_level_conv_cls = nn.ModuleList()
        self.multi_level_conv_reg = nn.ModuleList()
        self.multi_level_conv_obj = nn.ModuleList()
        for _ in strides:
            for convs in (self.multi_level_cls_convs, self.multi_level_reg_convs):
                convs.append(nn.Sequential(*[
                    conv3x3(in_channels if i == 0 else feat_channels, feat_channels, 1, depthwise)
                    for i in range(stacked_convs)]))
            self.multi_level_conv_cls.append(nn.Conv2d(feat_channels, num_classes, 1))
            self.multi_level_conv_reg.append(nn.Conv2d(feat_channels, 4, 1))
            self.multi_level_conv_obj.append(nn.Conv2d(feat_channels, 1, 1))

    def forward(self, feats):
        cls, reg, obj = [], [], []
        for x, cls_convs, reg_convs, conv_cls, conv_reg, conv_obj in zip(
                feats, self.multi_level_cls_convs, self.multi_level_reg_convs, self.multi_level_conv_cls,
                self.multi_level_conv_reg, self.multi_level_conv_obj):
            cls_feat, reg_feat = cls_convs(x), reg_convs(x)
            cls.append(conv_cls(cls_feat))
            reg.append(conv_reg(reg_feat))
            obj.append(conv_obj(reg_feat))
        return cls, reg, obj


class YOLOX(nn.Module):
    """mmdet's YOLOX detector's layers (backbone, neck, bbox_head) for one AutoMM variant."""

    def __init__(self, config):
        super().__init__()
        deepen, widen, depthwise = config['deepen'], config['widen'], config['depthwise']
        neck_in = [int(c * widen) for c in (256, 512, 1024)]
        # AutoMM's configs: num_csp_blocks 1, 1, 1, 2, 3, 4 for deepen 0.33, 0.33, 0.33, 0.67, 1.0, 1.33.
        self.backbone = CSPDarknet(deepen, widen, depthwise)
        self.neck = YOLOXPAFPN(neck_in, config['neck_channels'], max(round(3 * deepen), 1), depthwise)
        self.bbox_head = YOLOXHead(config['num_classes'], config['neck_channels'], config['neck_channels'], depthwise)
        self.case_config = config

    def forward(self, images):
        return self.bbox_head(self.neck(self.backbone(images)))


def outputs_of(model, inputs):
    config = model.case_config
    outputs = {'num_parameters': torch.tensor([sum(p.numel() for p in model.parameters())], dtype=torch.int64)}
    if not config.get('forward', True):
        return outputs
    model.train(bool(config.get('train', False)))
    cls, reg, obj = model(inputs['images'])
    for level in range(3):
        outputs[f'cls_{level}'], outputs[f'reg_{level}'], outputs[f'obj_{level}'] = cls[level], reg[level], obj[level]
    if config.get('train', False):
        for name, buffer in model.named_buffers():
            outputs['state.' + name] = buffer
    return outputs


if __name__ == '__main__':
    run_reference_cases(YOLOX, outputs_of)
