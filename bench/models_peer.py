"""Peer of bench/bench_models.cpp: the same models and shapes in eager PyTorch
(Debian's torch 1.13 + torchvision 0.14, run by /usr/bin/python3), and for
inference ONNX Runtime (onnxruntime-node, through bench/ort_peer.js) on the
model exported with torch.onnx.export (opset 14, fp32).

  text    BERT-base / ELECTRA-small discriminator from torch.nn modules as in
          tests/models/bert_reference.py (three nn.Embedding, nn.LayerNorm, the
          electra projection, post-norm nn.TransformerEncoder, gelu, dropout 0.1),
          a 2-class linear head on the first token; sequence 128, no padding
  images  torchvision vit_b_32 and swin_t (1000 classes), 3x224x224
  clip    clip_b32_image / clip_b32_text: CLIP ViT-B/32's towers and projections as
          tests/models/clip_reference.py transcribes transformers' modeling_clip.py
          (openai/clip-vit-base-patch32's sizes); text 77 tokens; inference only
  sam     sam_b_encoder: SAM ViT-B's image encoder (tests/models/sam_reference.py, facebook/
          sam-vit-base's sizes) at 1024 pixels, infer1 only; sam_b_lora: a training step of
          AutoMM's preset (LoRA r 3 alpha 32 on the vision qkv, the mask decoder but its iou head
          trained, AutoMM's structure loss) at 512 pixels (the weights resampled), batch 1, train only

  detectors  yolox_s (640 x 640, raw BGR 0-255) and yolov3_mobilenetv2 (mmdet's
          yolov3_mobilenetv2_8xb24-320-300e_coco, 320 x 320, normalised RGB), 80 classes:
          tests/models/yolox_reference.py + yolox_head_ops_reference.py and
          tests/models/yolov3_reference.py; weights, images and ground truth come from the
          folder --data names, written by `automm_bench_models --prepare MODEL --data DIR`
          (the weights load with strict=True). infer{1,8}_fp32 = network + decoding +
          post-processing (score thresholds, class-aware NMS) under inference_mode;
          train_fp32 = batch 8, network + mmdet's assignment and losses + backward + AdamW.

The LayerNorm workaround for bf16 autocast (see fp32_layer_norms) is on for train_bf16.

Configurations (each in a fresh child process; peak RSS = ru_maxrss of it):
  train_fp32 / train_bf16   batch 8, forward + cross-entropy + backward + AdamW
                            (bf16: torch.autocast("cpu", torch.bfloat16) around forward)
  infer{1,32}_{fp32,bf16}   inference_mode, bf16 = model and image inputs in bf16
  infer1_mixed              inference_mode under torch.autocast("cpu", torch.bfloat16), fp32 weights

Usage: models_peer.py OUT.json [--iters N] [--warmup W] [--threads T]
                      [--models bert_base,electra_small,vit_b32,swin_t]
                      [--ort-js bench/ort_peer.js] [--node node] [--ort-only]
       models_peer.py --child MODEL CONFIG [--iters N] [--warmup W] [--threads T] [--data DIR]
(automm_bench_models runs the --child form beside each of its own configurations,
then this script with --ort-only for ONNX Runtime.)
Writes {"torch": {model: {config: {...}}}, "ort": {model: {...}}}; a failing
configuration records {"error": ...} and the run goes on.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = ["train_fp32", "train_bf16", "infer1_fp32", "infer1_bf16", "infer1_mixed", "infer8_fp32", "infer32_fp32",
           "infer32_bf16"]
MODELS = ["bert_base", "electra_small", "vit_b32", "swin_t"]
DETECTORS = ("yolox_s", "yolov3_mobilenetv2")


def runs(model, config):
    """Which configurations a model runs, as bench_models.cpp's runs()."""
    if model in DETECTORS:
        return config in ("train_fp32", "infer1_fp32", "infer8_fp32")
    if config == "infer8_fp32":
        return False
    train = config.startswith("train")
    if model in ("clip_b32_image", "clip_b32_text"):
        return not train
    if model == "sam_b_encoder":
        return config.startswith("infer1_")
    if model == "sam_b_lora":
        return train
    return True
SEQ = 128
TRAIN_BATCH = 8


def text_config(model):
    cfg = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
    if model == "electra_small":
        cfg.update(hidden_size=256, num_attention_heads=4, intermediate_size=1024, embedding_size=128)
    return cfg


def make_model(model):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if model in ("bert_base", "electra_small"):
        cfg = text_config(model)

        class TextClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                hidden = cfg["hidden_size"]
                width = cfg.get("embedding_size", hidden)
                eps = cfg["layer_norm_eps"]
                self.word = nn.Embedding(cfg["vocab_size"], width)
                self.position = nn.Embedding(cfg["max_position_embeddings"], width)
                self.token_type = nn.Embedding(cfg["type_vocab_size"], width)
                self.norm = nn.LayerNorm(width, eps=eps)
                self.dropout = nn.Dropout(0.1)
                self.project = nn.Linear(width, hidden) if width != hidden else None
                layer = nn.TransformerEncoderLayer(hidden, cfg["num_attention_heads"], cfg["intermediate_size"],
                                                   dropout=0.1, activation="gelu", batch_first=True,
                                                   norm_first=False, layer_norm_eps=eps)
                self.encoder = nn.TransformerEncoder(layer, cfg["num_hidden_layers"], enable_nested_tensor=False)
                self.head = nn.Linear(hidden, 2)

            def forward(self, input_ids, token_type_ids):
                positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
                x = self.dropout(self.norm(self.word(input_ids) + self.position(positions)
                                           + self.token_type(token_type_ids)))
                if self.project is not None:
                    # Under autocast the projection answers in bf16; the encoder's fused
                    # inference path then meets fp32 weights and fails. The residual stream
                    # stays in the weights' dtype, as type promotion would make it.
                    x = self.project(x).to(self.norm.weight.dtype)
                return self.head(self.encoder(x)[:, 0])

        net = TextClassifier()

        def inputs(batch, dtype):
            return (torch.randint(1, cfg["vocab_size"], (batch, SEQ)), torch.zeros(batch, SEQ, dtype=torch.long))

        return net, 2, inputs, ["input_ids", "token_type_ids"]

    if model in ("sam_b_encoder", "sam_b_lora"):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
        from sam_reference import SamModel, VisionAttention

        sam = SamModel({"model_type": "sam"})  # facebook/sam-vit-base's sizes
        size = 1024 if model == "sam_b_encoder" else 512  # the LoRA step at 512, as bench_models.cpp
        if size != 1024:
            sam.resample(size)

        def sam_inputs(batch, dtype):
            return (torch.randn(batch, 3, size, size).to(dtype),)

        if model == "sam_b_encoder":
            class Encoder(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.sam = sam

                def forward(self, x):
                    return self.sam.vision_encoder(x, {})

            return Encoder(), 0, sam_inputs, ["images"]

        class LoRALinear(nn.Module):  # AutoMM's LoRALinear: y = x W^T + b + x A^T B^T alpha / r
            def __init__(self, base, r=3, alpha=32):
                super().__init__()
                self.base = base
                self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
                nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)
                self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
                self.scaling = alpha / r

            def forward(self, x):
                return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling

        sam.automm_modify(1, 1)
        for module in sam.vision_encoder.modules():
            if isinstance(module, VisionAttention):
                module.qkv = LoRALinear(module.qkv)
        for name, p in sam.named_parameters():  # AutoMM's preset: adapters and the mask decoder train
            p.requires_grad = "lora_" in name or (name.startswith("mask_decoder") and "iou_prediction_head" not in name)
        gt = (torch.rand(1, 1, size, size) > 0.7).float()

        class Segmenter(nn.Module):
            def __init__(self):
                super().__init__()
                self.sam = sam

            def forward(self, x):
                low_res = self.sam(x, {})[0][:, 0]  # pred_masks[:, 0]
                return torch.nn.functional.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)

        def structure_loss(logits):  # AutoMM's StructureLoss (the BCE term is the plain mean)
            target = gt.expand_as(logits)
            weit = 1 + 5 * torch.abs(torch.nn.functional.avg_pool2d(target, 31, stride=1, padding=15) - target)
            wbce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            prob = torch.sigmoid(logits)
            inter = (prob * target * weit).sum(dim=(2, 3))
            union = ((prob + target) * weit).sum(dim=(2, 3))
            return (wbce + 1 - (inter + 1) / (union - inter + 1)).mean()

        net = Segmenter()
        net.loss = structure_loss
        return net, 0, sam_inputs, ["images"]

    if model in ("clip_b32_image", "clip_b32_text"):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
        from clip_reference import CLIPModel

        clip = CLIPModel({"model_type": "clip"})

        class Tower(nn.Module):
            def __init__(self):
                super().__init__()
                self.clip = clip

            def forward(self, *x):
                if model == "clip_b32_text":
                    return self.clip.text_projection(self.clip.text_model(x[0], x[1]))
                return self.clip.visual_projection(self.clip.vision_model(x[0]))

        def clip_inputs(batch, dtype):
            if model == "clip_b32_text":
                ids = torch.randint(0, 49406, (batch, 77))
                ids[:, -1] = 49407
                return (ids, torch.ones(batch, 77, dtype=torch.long))
            return (torch.randn(batch, 3, 224, 224).to(dtype),)

        return Tower(), 0, clip_inputs, ["input_ids", "attention_mask"] if model == "clip_b32_text" else ["images"]

    import torchvision
    net = torchvision.models.vit_b_32() if model == "vit_b32" else torchvision.models.swin_t()

    def inputs(batch, dtype):
        return (torch.randn(batch, 3, 224, 224).to(dtype),)

    return net, 1000, inputs, ["images"]


def median_time(warmup, iters, work):
    for _ in range(warmup):
        work()
    times = []
    for _ in range(max(iters, 1)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fp32_layer_norms(net):
    """torch 1.13's CPU bf16 autocast fails in layer_norm on a bf16 input with fp32
    weights ("expected scalar type BFloat16 but found Float": ELECTRA's projection
    feeds one); such a LayerNorm runs on the input cast to fp32, as CUDA autocast
    does. Returns how many LayerNorms were wrapped."""
    import types

    import torch
    from torch import nn

    def forward(self, x):
        if x.dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)
        return torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    count = 0
    for module in net.modules():
        if isinstance(module, nn.LayerNorm):
            module.forward = types.MethodType(forward, module)
            count += 1
    return count


def detector_check(config, result):
    """The figure both engines print beside each other: detections and their score sum
    (inference), the first step's summed loss (training)."""
    if config.startswith("train"):
        return "loss %.6g" % result["loss"]
    return "%d dets, score sum %.6g" % (result["detections"], result["score_sum"])


def run_detector_child(model, config, warmup, iters, data):
    """yolox_s / yolov3_mobilenetv2 on the weights, images and boxes that
    `automm_bench_models --prepare MODEL --data DATA` wrote (bench_detection.h)."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
    from safetensors_io import read_safetensors

    if not data:
        raise ValueError(f"{model} needs --data DIR, prepared by automm_bench_models --prepare {model} --data DIR")
    weights = read_safetensors(os.path.join(data, model + ".weights.safetensors"))
    inputs = read_safetensors(os.path.join(data, model + ".inputs.safetensors"))
    train = config.startswith("train")
    batch = TRAIN_BATCH if train else int(config[len("infer"):config.index("_")])
    images = inputs["images"][:batch].contiguous()
    gt_boxes = [inputs[f"gt_boxes_{i}"].float().reshape(-1, 4) for i in range(batch)]
    gt_labels = [inputs[f"gt_labels_{i}"].long().reshape(-1) for i in range(batch)]
    if model == "yolox_s":
        import yolox_head_ops_reference as ops
        from yolox_reference import YOLOX

        # detector_spec("yolox_s", 80): deepen 0.33, widen 0.5, neck 128; test_cfg score 0.01, NMS 0.65 (ops.NMS_IOU)
        net = YOLOX(dict(deepen=0.33, widen=0.5, depthwise=False, neck_channels=128, num_classes=80))
        strides = [8, 16, 32]

        def losses(images):
            cls, reg, obj = net(images)
            return ops.loss_by_feat(cls, reg, obj, strides, gt_boxes, gt_labels, False)[0]

        def detect(images):
            return ops.predict_by_feat(*net(images), strides, 0.01)
    elif model == "yolov3_mobilenetv2":
        import yolov3_reference as ops

        net = ops.YOLOV3(80)
        test_cfg = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, conf_thr=0.005, nms_iou=0.45, max_per_img=100)
        gts = list(zip(gt_boxes, gt_labels))

        def losses(images):
            return ops.loss_by_feat(net(images), gts, 80)[0]

        def detect(images):
            return ops.predict_by_feat(net(images), 80, test_cfg)
    else:
        raise ValueError(f"unknown detector {model}")
    net.load_state_dict(weights, strict=True)
    out = {}
    if train:
        net.train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, eps=1e-6, weight_decay=0.01)
        first = {}

        def step():
            optimizer.zero_grad()
            named = losses(images)
            total = sum(named.values())
            if not first:
                first.update({k: float(v) for k, v in named.items()}, loss=float(total))
            total.backward()
            optimizer.step()

        t = median_time(warmup, iters, step)
        out.update(loss=first.pop("loss"), losses=first)
    else:
        net.eval()
        last = []

        def forward():
            last[:] = detect(images)

        with torch.inference_mode():
            t = median_time(warmup, iters, forward)
        out.update(detections=sum(int(s.numel()) for _, s, _ in last),
                   score_sum=float(sum(float(s.double().sum()) for _, s, _ in last)))
    out["check"] = detector_check(config, out)
    return {"ms": t * 1e3, "batch": batch, "samples_per_s": batch / t,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, **out}


def run_child(model, config, warmup, iters, data=""):
    if model in DETECTORS:
        return run_detector_child(model, config, warmup, iters, data)

    import torch

    bf16 = "bf16" in config
    extra = {}
    net, classes, inputs, _ = make_model(model)
    if config.startswith("train"):
        batch = 1 if model.startswith("sam") else TRAIN_BATCH
        net.train()
        optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4, eps=1e-6,
                                      weight_decay=0.01)
        if bf16:
            patched = fp32_layer_norms(net)
        x = inputs(batch, torch.float32)
        labels = torch.randint(0, max(classes, 1), (batch,))

        def step():
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(*x)
            loss = net.loss(logits.float()) if hasattr(net, "loss") else \
                torch.nn.functional.cross_entropy(logits.float(), labels)
            loss.backward()
            optimizer.step()

        t = median_time(warmup, iters, step)
        if bf16:
            extra["layer_norms_made_fp32"] = patched
    else:
        batch = int(config[len("infer"):config.index("_")])
        net.eval()
        mixed = "mixed" in config  # bf16 autocast over fp32 weights, as AutoMM predicts in bf16-mixed
        if bf16:
            net = net.to(torch.bfloat16)
        if mixed:
            extra["layer_norms_made_fp32"] = fp32_layer_norms(net)
            # TransformerEncoderLayer's fused inference path ignores CPU autocast and fails
            # on bf16 activations with fp32 weights; this flag is one of its conditions
            # (the unfused path still applies the layer's gelu). torchvision's ViT goes
            # through MultiheadAttention's fused path, which has no such switch: it fails.
            for module in net.modules():
                if isinstance(module, torch.nn.TransformerEncoderLayer):
                    module.activation_relu_or_gelu = 0
        x = inputs(batch, torch.bfloat16 if bf16 else torch.float32)

        def forward():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
                return net(*x)

        with torch.inference_mode():
            t = median_time(warmup, iters, forward)
    return {"ms": t * 1e3, "batch": batch, "samples_per_s": batch / t,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, **extra}


def export_child(model, path):
    import torch

    net, _, inputs, names = make_model(model)
    net.eval()
    x = inputs(2, torch.float32)
    torch.onnx.export(net, x, path, opset_version=14, input_names=names, output_names=["logits"],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, "logits": {0: "batch"}})
    return {"path": path}


def last_json_line(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def run_self(args, extra, timeout=1800):
    cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads), "--iters", str(args.iters),
           "--warmup", str(args.warmup)] + (["--data", args.data] if args.data else []) + extra
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    result = last_json_line(proc.stdout)
    if result is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {proc.returncode}: {tail}"}
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="models_peer.json")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--ort-js", default="")
    parser.add_argument("--node", default="node")
    parser.add_argument("--ort-only", action="store_true",
                        help="only the ONNX Runtime runs (automm_bench_models runs the torch children itself)")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "CONFIG"))
    parser.add_argument("--export", nargs=2, metavar=("MODEL", "PATH"))
    parser.add_argument("--data", default="",
                        help="the detectors' weights / inputs folder (automm_bench_models --prepare MODEL --data DIR)")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    if args.child or args.export:
        try:
            if args.child:
                result = run_child(*args.child, args.warmup, args.iters, args.data)
            else:
                result = export_child(*args.export)
        except Exception as e:  # recorded in the report, the run goes on
            result = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        print(json.dumps(result))
        return

    models = [m for m in args.models.split(",") if m]
    if not args.ort_only:
        print(f"PyTorch {torch.__version__} eager peer ({args.threads} intra-op threads)")
        print(f"{'torch model':<14} {'config':<13} {'ms/call':>10} {'samples/s':>11} {'RSS MiB':>9}")
    report = {"threads": args.threads, "torch_version": torch.__version__,
              "peak_rss_method": "ru_maxrss of a fresh child process per configuration", "torch": {}, "ort": {}}
    for model in models if not args.ort_only else []:
        report["torch"][model] = {}
        for config in CONFIGS:
            if not runs(model, config):
                continue
            r = run_self(args, ["--child", model, config])
            report["torch"][model][config] = r
            if "error" in r:
                print(f"{model:<14} {config:<13} FAILED: {r['error']}", flush=True)
            else:
                print(f"{model:<14} {config:<13} {r['ms']:10.2f} {r['samples_per_s']:11.2f} {r['peak_rss_mib']:9.0f}",
                      flush=True)

    if args.ort_js:
        print(f"\nONNX Runtime (onnxruntime-node, fp32 export, opset 14, {args.threads} intra-op threads)")
        print(f"{'ORT model':<14} {'config':<13} {'ms/call':>10} {'samples/s':>11} {'RSS MiB':>9}")
        with tempfile.TemporaryDirectory() as tmp:
            for model in models:
                if model in DETECTORS:  # not exported: the post-processing is data-dependent Python
                    continue
                path = os.path.join(tmp, model + ".onnx")
                exported = run_self(args, ["--export", model, path])
                if "error" in exported:
                    report["ort"][model] = {"error": "export: " + exported["error"]}
                    print(f"{model:<14} FAILED: export: {exported['error']}", flush=True)
                    continue
                report["ort"][model] = {}
                for config, batch in (("infer1_fp32", 1), ("infer32_fp32", 32)):
                    cmd = [args.node, args.ort_js, path, str(batch), str(args.threads), str(args.warmup),
                           str(args.iters)]
                    try:
                        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
                        r = last_json_line(proc.stdout) or {
                            "error": f"exit status {proc.returncode}: "
                                     + ((proc.stderr.strip().splitlines() or ["no output"])[-1])}
                    except subprocess.TimeoutExpired:
                        r = {"error": "timed out"}
                    report["ort"][model][config] = r
                    if "error" in r:
                        print(f"{model:<14} {config:<13} FAILED: {r['error']}", flush=True)
                    else:
                        print(f"{model:<14} {config:<13} {r['ms']:10.2f} {r['samples_per_s']:11.2f} "
                              f"{r['peak_rss_mib']:9.0f}", flush=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
