"""Independent reference for tests/models/test_bert_encoder.cpp.

Builds BERT-family encoders from plain torch.nn modules (three nn.Embedding,
nn.LayerNorm, an optional electra projection, then nn.TransformerEncoder with
post-norm nn.TransformerEncoderLayer), randomizes every parameter with a fixed
seed, runs them in eval mode on fixed inputs with a padding mask, and writes

  OUT/<case>/manifest.json   {"config": Hugging Face config.json,
                              "weights": {hf_name: shape},   # float32
                              "inputs":  {name: shape},      # int64
                              "outputs": {name: shape}}      # float32
  OUT/<case>/weights/<hf_name>.bin, inputs/<name>.bin, outputs/<name>.bin

as raw little-endian arrays. Weight names are Hugging Face's (no model prefix).

Usage: /usr/bin/python3 bert_reference.py OUT_DIR   (needs torch 1.13)
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn

BATCH = 3
SEQ = 10
LENGTHS = [10, 7, 4]  # non-padded tokens per row; the rest is padding

COMMON = dict(
    vocab_size=50,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=32,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
)

CASES = {
    "bert": dict(COMMON, model_type="bert", type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0),
    "electra": dict(COMMON, model_type="electra", embedding_size=32, type_vocab_size=2, layer_norm_eps=1e-12,
                    pad_token_id=0),
    "roberta": dict(COMMON, model_type="roberta", max_position_embeddings=34, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1),
}


class Reference(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = cfg["hidden_size"]
        width = cfg.get("embedding_size", hidden)
        eps = cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], width)
        self.position = nn.Embedding(cfg["max_position_embeddings"], width)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.project = nn.Linear(width, hidden) if width != hidden else None
        layer = nn.TransformerEncoderLayer(hidden, cfg["num_attention_heads"], cfg["intermediate_size"], dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=False, layer_norm_eps=eps)
        self.encoder = nn.TransformerEncoder(layer, cfg["num_hidden_layers"], enable_nested_tensor=False)

    def forward(self, input_ids, token_type_ids, position_ids, attention_mask):
        x = self.norm(self.word(input_ids) + self.position(position_ids) + self.token_type(token_type_ids))
        if self.project is not None:
            x = self.project(x)
        return self.encoder(x, src_key_padding_mask=attention_mask == 0)


def randomize(model):
    # Every parameter gets its own random values (TransformerEncoder deep-copies
    # one layer, so without this the layers would be identical).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif "word" in name or "position" in name or "token_type" in name:
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)


def hf_weights(model, cfg):
    out = {
        "embeddings.word_embeddings.weight": model.word.weight,
        "embeddings.position_embeddings.weight": model.position.weight,
        "embeddings.token_type_embeddings.weight": model.token_type.weight,
        "embeddings.LayerNorm.weight": model.norm.weight,
        "embeddings.LayerNorm.bias": model.norm.bias,
    }
    if model.project is not None:
        out["embeddings_project.weight"] = model.project.weight
        out["embeddings_project.bias"] = model.project.bias
    for i, layer in enumerate(model.encoder.layers):
        p = f"encoder.layer.{i}."
        for part, w, b in zip(("query", "key", "value"), layer.self_attn.in_proj_weight.chunk(3, 0),
                              layer.self_attn.in_proj_bias.chunk(3, 0)):
            out[p + f"attention.self.{part}.weight"] = w
            out[p + f"attention.self.{part}.bias"] = b
        pairs = [
            ("attention.output.dense", layer.self_attn.out_proj),
            ("attention.output.LayerNorm", layer.norm1),
            ("intermediate.dense", layer.linear1),
            ("output.dense", layer.linear2),
            ("output.LayerNorm", layer.norm2),
        ]
        for hf_name, module in pairs:
            out[p + hf_name + ".weight"] = module.weight
            out[p + hf_name + ".bias"] = module.bias
    return out


def make_inputs(cfg, generator):
    pad = cfg["pad_token_id"]
    ids = torch.randint(0, cfg["vocab_size"], (BATCH, SEQ), generator=generator)
    ids[ids == pad] = pad + 1  # real tokens never use the padding id
    mask = torch.zeros(BATCH, SEQ, dtype=torch.long)
    types = torch.zeros(BATCH, SEQ, dtype=torch.long)
    for row, length in enumerate(LENGTHS):
        mask[row, :length] = 1
        ids[row, length:] = pad
        if cfg["type_vocab_size"] > 1:
            types[row, length // 2:length] = 1  # second segment
    # Positions, spelled out token by token: bert counts from 0; roberta counts
    # real tokens from pad + 1 and gives padding position pad.
    positions = torch.zeros(BATCH, SEQ, dtype=torch.long)
    for row in range(BATCH):
        count = 0
        for col in range(SEQ):
            if cfg["model_type"] == "roberta":
                if ids[row, col].item() == pad:
                    positions[row, col] = pad
                else:
                    count += 1
                    positions[row, col] = pad + count
            else:
                positions[row, col] = col
    return ids, types, positions, mask


def write(folder, name, tensor, dtype):
    os.makedirs(folder, exist_ok=True)
    array = tensor.detach().contiguous().cpu().numpy().astype(dtype)
    with open(os.path.join(folder, name + ".bin"), "wb") as f:
        f.write(array.tobytes())
    return list(tensor.shape)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bert_reference.py OUT_DIR")
    out_dir = sys.argv[1]
    torch.manual_seed(1234)
    generator = torch.Generator().manual_seed(99)
    for case, cfg in CASES.items():
        model = Reference(cfg)
        randomize(model)
        model.eval()
        ids, types, positions, mask = make_inputs(cfg, generator)
        with torch.no_grad():
            hidden = model(ids, types, positions, mask)
        folder = os.path.join(out_dir, case)
        manifest = {"config": cfg, "weights": {}, "inputs": {}, "outputs": {}}
        for name, tensor in hf_weights(model, cfg).items():
            manifest["weights"][name] = write(os.path.join(folder, "weights"), name, tensor, "<f4")
        for name, tensor in (("input_ids", ids), ("token_type_ids", types), ("attention_mask", mask)):
            manifest["inputs"][name] = write(os.path.join(folder, "inputs"), name, tensor, "<i8")
        manifest["outputs"]["last_hidden_state"] = write(os.path.join(folder, "outputs"), "last_hidden_state", hidden,
                                                         "<f4")
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
