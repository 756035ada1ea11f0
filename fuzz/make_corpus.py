#!/usr/bin/python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/<harness>/): small valid inputs of
every format, which libFuzzer then mutates. Run by Debian's /usr/bin/python3
(torch for the torch.save seeds, PIL for the images); the predictor seeds come
from a fit by the automm command (argument: its path, default build/automm).

    /usr/bin/python3 fuzz/make_corpus.py [path/to/automm]
"""
import base64
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import torch
from PIL import Image

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")


def put(harness, name, data):
    folder = os.path.join(CORPUS, harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def tables():
    csv = "id,text,score,color,label\n1,\"hello, world\",0.5,red,yes\n2,\"a \"\"quoted\"\" cell\",,blue,no\n3,naïve café,NaN,green,yes\n"
    put("delimited", "basic.csv", b"\x00" + csv.encode())
    put("delimited", "crlf.csv", b"\x00" + csv.replace("\n", "\r\n").encode())
    put("delimited", "multiline.csv", b"\x00" + b'a,b\n"line one\nline two",2\n,\n')
    put("delimited", "basic.tsv", b"\x01" + "x\ty\tlabel\n1.5\tfoo\t0\n-2e3\tNA\t1\n".encode())
    put("json_lines", "basic.jsonl", '{"text": "hi", "x": 1.5, "label": "yes"}\n{"text": null, "x": 2, "label": "no"}\n')
    put("json_lines", "types.jsonl", '{"a": true, "b": [1, 2], "c": {"d": "e"}, "f": "\\u00e9"}\n\n{"a": false}\n')


def configs():
    put("yaml_config", "nested.yaml", "optim:\n  lr: 0.001\n  max_epochs: 3\nmodel:\n  names: [numerical_mlp, categorical_mlp, fusion_mlp]\n")
    put("yaml_config", "flat.yaml", '"optimization.learning_rate": 1.0e-4\n"env.per_gpu_batch_size": 8\ndata.categorical.convert_to_text: false\n')
    put("yaml_config", "peft.yaml", "optim:\n  peft: lora\n  lora:\n    r: 4\n    alpha: 8\n    filter: [query, value]\n")


def safetensors_file(tensors, metadata=None):
    header, body = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def weights():
    put("safetensors", "two.safetensors", safetensors_file({
        "encoder.weight": ("F32", [2, 3], struct.pack("<6f", *range(6))),
        "encoder.bias": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "ids": ("I64", [1], struct.pack("<q", 7)),
    }, {"format": "pt"}))
    put("safetensors", "scalar_empty.safetensors", safetensors_file({
        "scale": ("F64", [], struct.pack("<d", 0.5)), "empty": ("U8", [0, 4], b""), "mask": ("BOOL", [2], b"\x01\x00")}))
    for name, obj in {
        "state_dict.bin": {"encoder.weight": torch.arange(6, dtype=torch.float32).view(2, 3), "encoder.bias": torch.ones(2, dtype=torch.float16)},
        "nested.pth": {"state_dict": {"a": torch.zeros(3, dtype=torch.int64), "b": torch.tensor(True)}, "epoch": 3, "name": "x"},
        "views.pt": (lambda base: {"base": base, "view": base[1:], "t": base.view(2, 2).t()})(torch.arange(4.0)),
    }.items():
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        put("torch_checkpoint", name, buffer.getvalue())


SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["hello", "world", "don", "'", "t", "stop", "na", "##ive", "caf", "##e", ",", "!", "東", "京", "##s", "tab", "and", "new", "lines"]


def added(tokens, start=0):
    return [{"id": start + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for i, t in enumerate(tokens)]


def tokenizers():
    vocab = SPECIAL + WORDS
    put("wordpiece_vocab", "lower.txt", b"\x00" + "\n".join(vocab).encode() + b"\n")
    put("wordpiece_vocab", "cased.txt", b"\x01" + "\n".join(vocab + ["Hello", "World"]).encode())
    wordpiece = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added(SPECIAL),
                 "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                                "strip_accents": None, "lowercase": True},
                 "pre_tokenizer": {"type": "BertPreTokenizer"},
                 "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                           "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}}}
    put("tokenizer_json", "wordpiece.json", json.dumps(wordpiece, ensure_ascii=False))

    bpe_vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in "abcdefghijklmnopqrstuvwxyzHWĠ,!'":
        bpe_vocab.setdefault(c, len(bpe_vocab))
    merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "Ġ s", "Ġs t"]
    for m in merges:
        bpe_vocab.setdefault(m.replace(" ", ""), len(bpe_vocab))
    bpe = {"version": "1.0", "added_tokens": added(["<s>", "<pad>", "</s>", "<unk>"]), "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "vocab": bpe_vocab, "merges": merges}}
    put("tokenizer_json", "bpe.json", json.dumps(bpe, ensure_ascii=False))
    put("bpe_vocab_merges", "roberta.bin", json.dumps(bpe_vocab, ensure_ascii=False).encode() + b"\x00" +
        ("#version: 0.2\n" + "\n".join(merges) + "\n").encode())

    pieces = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0], ["▁", -2.0]] + [["▁" + w.strip("#"), -3.0 - i * 0.1] for i, w in enumerate(WORDS)]
    pieces += [[c, -8.0] for c in "abcdefghijklmnopqrstuvwxyz"]
    unigram = {"version": "1.0", "added_tokens": added(["<unk>", "<s>", "</s>"]),
               "normalizer": {"type": "Sequence", "normalizers": [
                   {"type": "Replace", "pattern": {"String": "  "}, "content": " "}, {"type": "Lowercase"}, {"type": "NFD"},
                   {"type": "Strip", "strip_left": True, "strip_right": True}]},
               "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
               "model": {"type": "Unigram", "unk_id": 0, "vocab": pieces}}
    put("tokenizer_json", "unigram.json", json.dumps(unigram, ensure_ascii=False))
    put("sentencepiece_model", "t5.model", sentencepiece_model(pieces))


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_uint(number, value):
    return varint(number << 3) + varint(value)


def sentencepiece_model(pieces):
    """ModelProto: pieces (1: piece, 2: score fixed32, 3: type), trainer_spec
    (3: model_type 1 = unigram, 40: unk_id), normalizer_spec (1: name, 3: add_dummy_prefix)."""
    out = b""
    for i, (piece, score) in enumerate(pieces):
        kind = 2 if i == 0 else 3 if i < 3 else 1  # UNKNOWN, CONTROL, NORMAL
        body = field_bytes(1, piece.encode()) + varint(2 << 3 | 5) + struct.pack("<f", score) + field_uint(3, kind)
        out += field_bytes(1, body)
    out += field_bytes(2, field_uint(3, 1) + field_uint(40, 0))
    out += field_bytes(3, field_bytes(1, b"identity") + field_uint(3, 1))
    return out


def images():
    img = Image.new("RGB", (5, 3))
    img.putdata([((x * 50) % 256, (y * 80) % 256, (x * y * 30) % 256) for y in range(3) for x in range(5)])
    variants = {
        "image_jpeg": [("baseline.jpg", img, "JPEG", {"quality": 90}), ("progressive.jpg", img, "JPEG", {"progressive": True}),
                       ("gray.jpg", img.convert("L"), "JPEG", {})],
        "image_png": [("rgb.png", img, "PNG", {}), ("rgba.png", img.convert("RGBA"), "PNG", {}),
                      ("palette.png", img.convert("P"), "PNG", {}), ("gray16.png", img.convert("L").convert("I"), "PNG", {}),
                      ("interlaced.png", img, "PNG", {"interlace": 1})],
        "image_gif": [("still.gif", img.convert("P"), "GIF", {}),
                      ("frames.gif", img.convert("P"), "GIF", {"save_all": True, "append_images": [img.convert("P").rotate(180)]})],
        "image_webp": [("lossy.webp", img, "WEBP", {"quality": 80}), ("lossless.webp", img.convert("RGBA"), "WEBP", {"lossless": True})],
        "image_bmp": [("rgb.bmp", img, "BMP", {}), ("palette.bmp", img.convert("P"), "BMP", {}), ("gray.bmp", img.convert("L"), "BMP", {})],
    }
    for harness, items in variants.items():
        for name, image, fmt, options in items:
            buffer = io.BytesIO()
            image.save(buffer, fmt, **options)
            put(harness, name, buffer.getvalue())
            if name in ("baseline.jpg", "rgb.png", "lossy.webp"):
                text = base64.b64encode(buffer.getvalue()).decode()
                put("base64_image", name + ".b64", text)
                put("base64_image", name + ".url.b64", "data:image/x;base64," + text.replace("+", "-").replace("/", "_").rstrip("="))


def predictor_files(automm):
    """The harness's own fit (same table, same key), saved by the automm command."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = ["x,color,label"]
        for i in range(60):
            rows.append("%s,%s,%s" % (repr(float(i % 17) / 4.0), ["red", "green", "blue"][i % 3], "yes" if i % 17 > 8 else "no"))
        with open(os.path.join(tmp, "train.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")
        subprocess.run([automm, "fit", "--train", os.path.join(tmp, "train.csv"), "--label", "label", "--path",
                        os.path.join(tmp, "p"), "--hp", "optim.max_epochs=1", "--quiet"], check=True, stdout=subprocess.DEVNULL)
        for prefix, name in ((b"\x00", "predictor.json"), (b"\x01", "processors.json")):
            with open(os.path.join(tmp, "p", name), "rb") as f:
                put("predictor_folder", name, prefix + f.read())


def main():
    automm = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "build", "automm")
    shutil.rmtree(CORPUS, ignore_errors=True)
    tables()
    configs()
    weights()
    tokenizers()
    images()
    predictor_files(automm)


if __name__ == "__main__":
    main()
