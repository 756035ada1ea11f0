"""The command line the encoder reference scripts share (deberta_v2_reference.py,
distilbert_reference.py, mpnet_reference.py): `SCRIPT DIR CASE [CASE ...]`,
where the C++ test wrote each DIR/CASE (config.json, weights.safetensors,
inputs.safetensors) and reads back DIR/CASE/outputs.safetensors."""
import json
import os
import sys

import torch

from safetensors_io import read_safetensors, write_safetensors


def run_reference_cases(make_model, outputs_of):
    """For every CASE: make_model(config.json as a dict) loads the case's weights
    strictly by name (so the C++ parameter names must be Hugging Face's), runs in
    eval mode, and outputs_of(model, inputs) -> {name: tensor}, computed without
    gradients, is written to outputs.safetensors."""
    if len(sys.argv) < 3:
        sys.exit("usage: %s DIR CASE [CASE ...]" % os.path.basename(sys.argv[0]))
    for case in sys.argv[2:]:
        folder = os.path.join(sys.argv[1], case)
        with open(os.path.join(folder, "config.json")) as f:
            model = make_model(json.load(f))
        model.load_state_dict(read_safetensors(os.path.join(folder, "weights.safetensors")), strict=True)
        model.eval()
        inputs = read_safetensors(os.path.join(folder, "inputs.safetensors"))
        with torch.no_grad():
            outputs = outputs_of(model, inputs)
        write_safetensors(os.path.join(folder, "outputs.safetensors"), outputs)
