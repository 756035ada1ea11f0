"""Writes the SAM of a saved binary segmentation predictor as a Hugging Face SamModel
folder (config.json + model.safetensors), so that it can serve as a pretrained
checkpoint (model.sam.checkpoint_name) for another fit: the predictor's weights
under their Hugging Face names (the "model." prefix dropped), with AutoMM's single
mask token and hypernetwork MLP copied back to the checkpoint layout's
num_multimask_outputs + 1 of each.

Usage: /usr/bin/python3 bench/sam_to_hf.py PREDICTOR_FOLDER OUT_FOLDER   (needs torch, numpy)
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    folder, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(folder, "predictor.json")) as f:
        meta = json.load(f)
    if meta.get("problem_type") != "semantic_segmentation" or meta.get("num_mask_tokens") != 1:
        sys.exit(f"{folder} is not a binary semantic_segmentation predictor with one mask token")
    with open(os.path.join(folder, "sam", "config.json")) as f:
        config = json.load(f)
    tokens = config.get("mask_decoder_config", {}).get("num_multimask_outputs", 3) + 1
    weights = {}
    for name, tensor in read_safetensors(os.path.join(folder, "model.safetensors")).items():
        if not name.startswith("model."):
            sys.exit(f"unexpected tensor {name}")
        name = name[len("model."):]
        if name == "mask_decoder.mask_tokens.weight":
            tensor = tensor.expand(tokens, -1).contiguous()
        if name.startswith("mask_decoder.output_hypernetworks_mlps.0."):
            for t in range(1, tokens):
                weights[name.replace(".0.", f".{t}.", 1)] = tensor.clone()
        weights[name] = tensor
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), weights)
    shutil.copy(os.path.join(folder, "sam", "config.json"), os.path.join(out, "config.json"))
    print(f"wrote {len(weights)} tensors to {out}")


if __name__ == "__main__":
    main()
