"""Reference data for tests/models/test_timm_cnn.cpp from torchvision 0.14.

    /usr/bin/python3 torchvision_to_timm.py MODEL OUT_DIR [--seed N] [--size PX]

MODEL is a torchvision name: resnet18, resnet50, convnext_tiny, mobilenet_v3_large.
The script builds it with random weights (torch.manual_seed), makes every
normalization non-trivial (BatchNorm scale / shift / running statistics,
LayerNorm scale / shift, ConvNeXt layer scale, conv / linear biases), renames
its state dict to timm's parameter names and writes, in OUT_DIR:

    weights.safetensors  the timm-named state dict (num_batches_tracked kept, as I64)
    io.safetensors       images [2, 3, PX, PX], features (input of the last Linear:
                         timm's pre-logits) and logits, in eval mode

Architectural differences between torchvision and timm that the script bridges:
  * mobilenet_v3_large: torchvision's BatchNorm eps is 1e-3, timm's 1e-5 (its
    pretrained weights use 1e-5): the reference runs with eps set to 1e-5.
    torchvision's classifier.0 Linear(960, 1280) acting on the pooled
    features is timm's conv_head 1x1 conv (weight reshaped to [1280, 960, 1, 1]).
    SE widths agree: torchvision's _make_divisible(exp // 4, 8) equals timm's
    make_divisible(exp * 0.25, 8) for every expanded width (all divisible by 8).
  * convnext: layer_scale [C, 1, 1] is timm's gamma [C].
  * resnet: the names are the same.
"""
import argparse
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402


def randomize(model, size):
    """Moves every normalization and bias away from its identity init, so that a
    mistake in any of them shows in the logits. BatchNorm running statistics
    are those of a calibration batch, perturbed (mean by 0.2 std, variance by a
    factor in [0.6, 1.6]): arbitrary values would let the activations of a deep
    residual net grow to logits of ~300, where fp32 rounding alone nears 1e-4."""
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for module in batch_norms:
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch gives its exact statistics
        model.train()
        model(torch.randn(4, 3, size, size))
        for module in batch_norms:
            module.momentum = 0.1
            std = module.running_var.sqrt()
            module.running_mean.add_(0.2 * std * torch.randn_like(std))
            module.running_var.mul_(torch.empty_like(std).uniform_(0.6, 1.6))
            module.num_batches_tracked.fill_(17)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(1 + 0.2 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.2 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.bias is not None:
                module.bias.copy_(0.05 * torch.randn_like(module.bias))
        for name, param in model.named_parameters():
            if name.endswith("layer_scale"):  # torchvision's 1e-6 init would mute every block
                param.copy_(torch.empty_like(param).uniform_(0.2, 1.0))


def conv_bn_names(conv_bn, conv_name, bn_name):
    """torchvision Conv2dNormActivation (conv [0], BatchNorm [1]) -> timm names."""
    conv, bn = conv_bn[0], conv_bn[1]
    out = {f"{conv_name}.weight": conv.weight}
    if conv.bias is not None:
        out[f"{conv_name}.bias"] = conv.bias
    for key, value in bn.state_dict(keep_vars=True).items():
        out[f"{bn_name}.{key}"] = value
    return out


def resnet_to_timm(model):
    return dict(model.state_dict())


def convnext_to_timm(model):
    block_names = {"0": "conv_dw", "2": "norm", "3": "mlp.fc1", "5": "mlp.fc2"}
    out = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[0] == "features":
            index = int(parts[1])
            rest = ".".join(parts[2:])
            if index == 0:  # features.0.{0: conv, 1: LayerNorm2d}
                name = f"stem.{rest}"
            elif index % 2 == 0:  # features.2/4/6: {0: LayerNorm2d, 1: conv} between stages
                name = f"stages.{index // 2}.downsample.{rest}"
            else:  # features.1/3/5/7: CNBlocks of stage (index - 1) / 2
                prefix = f"stages.{(index - 1) // 2}.blocks.{parts[2]}"
                if parts[3] == "layer_scale":
                    name, value = f"{prefix}.gamma", value.reshape(-1)
                else:  # block.{0: dwconv, 1: permute, 2: norm, 3: fc1, 4: GELU, 5: fc2, 6: permute}
                    name = f"{prefix}.{block_names[parts[4]]}.{parts[5]}"
        elif parts[0] == "classifier":  # {0: LayerNorm2d, 1: Flatten, 2: Linear}
            name = {"0": "head.norm", "2": "head.fc"}[parts[1]] + "." + parts[2]
        else:
            raise KeyError(f"unmapped torchvision convnext key {key}")
        out[name] = value
    return out


# timm's mobilenetv3_large_100 stages: blocks per stage of features.1 .. features.15
MOBILENET_V3_LARGE_STAGES = [1, 2, 3, 4, 2, 3]


def mobilenet_v3_to_timm(model):
    from torchvision.ops.misc import SqueezeExcitation

    out = conv_bn_names(model.features[0], "conv_stem", "bn1")
    positions = [(stage, i) for stage, count in enumerate(MOBILENET_V3_LARGE_STAGES) for i in range(count)]
    for feature, (stage, index) in zip(model.features[1:16], positions):
        prefix = f"blocks.{stage}.{index}"
        layers = list(feature.block.children())
        conv_layers = [layer for layer in layers if not isinstance(layer, SqueezeExcitation)]
        if len(conv_layers) == 2:  # no expansion: timm's DepthwiseSeparableConv
            names = [("conv_dw", "bn1"), ("conv_pw", "bn2")]
        else:  # timm's InvertedResidual
            names = [("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")]
        for layer, (conv_name, bn_name) in zip(conv_layers, names):
            out.update(conv_bn_names(layer, f"{prefix}.{conv_name}", f"{prefix}.{bn_name}"))
        for layer in layers:
            if isinstance(layer, SqueezeExcitation):
                out[f"{prefix}.se.conv_reduce.weight"] = layer.fc1.weight
                out[f"{prefix}.se.conv_reduce.bias"] = layer.fc1.bias
                out[f"{prefix}.se.conv_expand.weight"] = layer.fc2.weight
                out[f"{prefix}.se.conv_expand.bias"] = layer.fc2.bias
    out.update(conv_bn_names(model.features[16], "blocks.6.0.conv", "blocks.6.0.bn1"))
    head = model.classifier[0]  # Linear(960, 1280) -> 1x1 conv on the pooled features
    out["conv_head.weight"] = head.weight.reshape(head.out_features, head.in_features, 1, 1)
    out["conv_head.bias"] = head.bias
    out["classifier.weight"] = model.classifier[3].weight
    out["classifier.bias"] = model.classifier[3].bias
    return out


MODELS = {
    "resnet18": (torchvision.models.resnet18, resnet_to_timm),
    "resnet50": (torchvision.models.resnet50, resnet_to_timm),
    "convnext_tiny": (torchvision.models.convnext_tiny, convnext_to_timm),
    "mobilenet_v3_large": (torchvision.models.mobilenet_v3_large, mobilenet_v3_to_timm),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    build, to_timm = MODELS[args.model]
    model = build()
    if args.model.startswith("mobilenet_v3"):
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = 1e-5  # timm's BatchNorm eps (torchvision uses 1e-3)
    randomize(model, args.size)
    model.eval()

    images = torch.randn(2, 3, args.size, args.size)
    captured = {}
    last_linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    last_linear.register_forward_pre_hook(lambda module, inputs: captured.update(features=inputs[0]))
    with torch.no_grad():
        logits = model(images)

    weights = {name: value.detach() for name, value in to_timm(model).items()}
    count = sum(1 for _ in model.state_dict())
    if len(weights) != count:
        raise RuntimeError(f"{args.model}: mapped {len(weights)} of {count} torchvision tensors")
    os.makedirs(args.out_dir, exist_ok=True)
    write_safetensors(os.path.join(args.out_dir, "weights.safetensors"), weights)
    write_safetensors(os.path.join(args.out_dir, "io.safetensors"),
                      {"images": images, "features": captured["features"], "logits": logits})
    print(f"{args.model}: {len(weights)} tensors, |logits| max {logits.abs().max().item():.3f}, "
          f"std {logits.std().item():.3f}")


if __name__ == "__main__":
    main()
