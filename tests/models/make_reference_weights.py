#!/usr/bin/python3
"""Reference weight files for tests/models/test_weights_io.cpp.

Usage:
  make_reference_weights.py OUTDIR      write the reference files and OUTDIR/reference.json
                                        (exit status 77: this python has no torch)
  make_reference_weights.py check FILE  read a safetensors FILE by hand, print its tensors as JSON

torch files are written by torch.save itself (Debian's torch 1.13, run with
/usr/bin/python3), so the C++ reader is checked against the real writer.
safetensors files are written and read here with struct + json only, so they
are independent of both torch and the C++ writer.

reference.json: {file: {tensor name: {"dtype": "F32", "shape": [...], "values": [...]}}}
with values flattened in row-major order; inf / nan are the strings "inf",
"-inf" and "nan" because JSON has no such numbers.
"""
import collections
import json
import math
import os
import pickle
import struct
import sys
import zipfile

# Safetensors dtype -> (struct code, itemsize); BF16 is handled by hand.
STRUCT = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": (None, 2), "I64": ("q", 8),
          "I32": ("i", 4), "I16": ("h", 2), "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("?", 1)}


def encode_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def pack(dtype, values):
    code, _ = STRUCT[dtype]
    if dtype == "BF16":
        out = b""
        for v in values:
            bits = struct.pack("<f", v)
            assert bits[:2] == b"\0\0", f"{v} is not exactly representable in bfloat16"
            out += bits[2:]
        return out
    return struct.pack("<%d%s" % (len(values), code), *values)


def unpack(dtype, raw):
    code, size = STRUCT[dtype]
    n = len(raw) // size
    if dtype == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[2 * k:2 * k + 2])[0] for k in range(n)]
    return list(struct.unpack("<%d%s" % (n, code), raw))


def write_safetensors(path, tensors, metadata=None, order=None, pad=True):
    """tensors: {name: (dtype, shape, values)}; order: data layout order (default: by name)."""
    header, blobs, offset = {}, [], 0
    for name in order or sorted(tensors):
        dtype, shape, values = tensors[name]
        assert len(values) == numel(shape)
        blob = pack(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    if pad:
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def check(path):
    """Parses a safetensors file without any library and prints its contents."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode())
    data = raw[8 + n:]
    out = {"__metadata__": header.pop("__metadata__", None), "aligned": (8 + n) % 8 == 0, "tensors": {}}
    spans = []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        assert end - begin == numel(info["shape"]) * STRUCT[info["dtype"]][1], name
        spans.append((begin, end))
        out["tensors"][name] = {"dtype": info["dtype"], "shape": info["shape"],
                                "values": [encode_value(v) for v in unpack(info["dtype"], data[begin:end])]}
    spans.sort()
    covered = 0
    for begin, end in spans:
        assert begin == covered, "hole or overlap in the data section"
        covered = end
    assert covered == len(data), "trailing bytes after the last tensor"
    print(json.dumps(out))


def torch_reference(named_tensors):
    import torch
    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
             torch.uint8: "U8", torch.bool: "BOOL"}
    return {name: {"dtype": names[t.dtype], "shape": list(t.shape),
                   "values": [encode_value(v) for v in t.detach().reshape(-1).tolist()]}
            for name, t in named_tensors}


def flatten(obj, prefix=""):
    """The C++ loader's naming: nested dicts joined with '.', non-tensors dropped."""
    import torch
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for k, v in enumerate(obj):
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))


class RunsShell:
    """Pickles as a call to os.system. It is only ever pickled, never unpickled."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class RunsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('true')",))


def write_torch_layout(path, top, pickle_bytes, compress=zipfile.ZIP_STORED, extra_entries=()):
    """A zip laid out like torch.save's: <top>/data.pkl, <top>/version, [more]."""
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        z.writestr(f"{top}/data.pkl", pickle_bytes)
        z.writestr(f"{top}/version", "3\n")
        for name, data in extra_entries:
            z.writestr(name, data)


def repack(src, dst, compress=zipfile.ZIP_STORED, padding=0):
    """Copies a torch.save zip, optionally compressed or with `padding` extra entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compress) as zout:
        top = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        for k in range(padding):
            zout.writestr(f"{top}/pad/{k}", b"")


def make(outdir):
    try:
        import torch
    except ImportError:
        sys.exit(77)  # the C++ test skips, asking for python3-torch
    torch.manual_seed(0)
    os.makedirs(outdir, exist_ok=True)
    reference = {}

    # --- torch.save: a flat OrderedDict of several dtypes and layouts.
    sd = collections.OrderedDict()
    base = torch.randn(4, 5)
    sd["f32"] = base
    sd["f32_transposed"] = base.t()                  # non-contiguous view of f32's storage
    sd["f32_rows"] = base[1:3]                       # slice view: storage offset 5
    sd["f64"] = torch.randn(3, dtype=torch.float64)
    sd["f16"] = torch.tensor([0.5, -2.0, 65504.0, 6e-8, float("inf"), float("nan")], dtype=torch.float16)
    sd["bf16"] = torch.randn(2, 3).to(torch.bfloat16)
    sd["i64"] = torch.tensor([[0, -1], [2 ** 40 + 1, -(2 ** 62)]], dtype=torch.int64)
    sd["i32"] = torch.tensor([-(2 ** 31), 2 ** 31 - 1, 7], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.25)                # 0-dim
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))  # _rebuild_parameter
    far = torch.arange(70010, dtype=torch.float32)
    sd["far_tail"] = far[70000:]                     # offset > 65535 (BININT); storage larger than the tensor
    sd["strided"] = torch.arange(24, dtype=torch.int64).reshape(2, 3, 4).permute(2, 0, 1)[:, 1, ::2]
    torch.save(sd, os.path.join(outdir, "ref.bin"))
    reference["ref.bin"] = torch_reference(sd.items())

    # --- a module's state_dict (OrderedDict + BUILD of `_metadata`), nested in a
    # training checkpoint together with non-tensor values.
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2), torch.nn.BatchNorm1d(2))
    checkpoint = {"state_dict": module.state_dict(), "epoch": 2 ** 40, "lr": 1e-3, "step": -5,
                  "name": "run", "flags": [True, None], "history": [torch.tensor([1.0, 2.0])],
                  "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 0.1}]}}
    torch.save(checkpoint, os.path.join(outdir, "nested.pth"))
    reference["nested.pth"] = torch_reference(flatten(checkpoint))

    # timm-style {"model": ...}, written with pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL).
    timm = {"model": collections.OrderedDict(("blocks.%d.weight" % k, torch.randn(2) * k) for k in range(3))}
    torch.save(timm, os.path.join(outdir, "timm.pt"), pickle_protocol=4)
    reference["timm.pt"] = torch_reference(flatten(timm))

    # Many tensors, so the memo passes 255 entries (LONG_BINPUT / LONG_BINGET).
    many = collections.OrderedDict(("layer.%03d" % k, torch.full((2,), float(k))) for k in range(120))
    torch.save(many, os.path.join(outdir, "many.bin"))
    reference["many.bin"] = torch_reference(many.items())

    # ZIP64 end records: more than 65535 entries.
    repack(os.path.join(outdir, "ref.bin"), os.path.join(outdir, "zip64.bin"), padding=65536)

    # --- files the loader must refuse.
    sentinel = os.path.join(outdir, "pwned")
    write_torch_layout(os.path.join(outdir, "malicious_system.pth"), "archive",
                       pickle.dumps(collections.OrderedDict(w=RunsShell("touch " + sentinel)), protocol=2))
    write_torch_layout(os.path.join(outdir, "malicious_eval.pth"), "archive",
                       pickle.dumps({"w": RunsEval()}, protocol=2))
    write_torch_layout(os.path.join(outdir, "malicious_class.pth"), "checkpoint",
                       pickle.dumps({"state_dict": {}, "args": zipfile.ZipInfo("x")}, protocol=2))
    repack(os.path.join(outdir, "ref.bin"), os.path.join(outdir, "compressed.bin"), compress=zipfile.ZIP_DEFLATED)
    torch.save(sd, os.path.join(outdir, "legacy.pt"), _use_new_zipfile_serialization=False)

    # --- safetensors written by hand, every dtype, data laid out out of name order.
    hand = {
        "a.f64": ("F64", [2], [1.0 / 3.0, -1e300]),
        "b.f32": ("F32", [2, 3], [0.1, -2.5, 3.0, 1e-30, float("inf"), float("-inf")]),
        "c.f16": ("F16", [3], [0.5, -65504.0, 6e-08]),
        "d.bf16": ("BF16", [2, 2], [1.0, -0.5, 2.0 ** 100, 1.5]),
        "e.i64": ("I64", [3], [2 ** 62, -(2 ** 63), 1]),
        "f.i32": ("I32", [1, 2], [-(2 ** 31), 123456]),
        "g.i16": ("I16", [2], [-32768, 32767]),
        "h.i8": ("I8", [2], [-128, 5]),
        "i.u8": ("U8", [3], [0, 200, 255]),
        "j.bool": ("BOOL", [2, 2], [True, False, False, True]),
        "k.scalar": ("F32", [], [42.0]),
        "l.empty": ("F32", [0, 4], []),
    }
    order = ["j.bool", "e.i64", "l.empty", "a.f64", "k.scalar", "b.f32", "i.u8", "c.f16", "h.i8", "d.bf16",
             "g.i16", "f.i32"]
    write_safetensors(os.path.join(outdir, "hand.safetensors"), hand, metadata={"format": "pt", "source": "hand"},
                      order=order)
    # Values as stored (0.1 in F32 is 0.100000001...): round-tripped through the packer.
    as_reference = lambda tensors: {n: {"dtype": d, "shape": s,
                                        "values": [encode_value(v) for v in unpack(d, pack(d, vals))]}
                                    for n, (d, s, vals) in tensors.items()}
    reference["hand.safetensors"] = as_reference(hand)

    # 2-shard safetensors with an index, header not padded.
    shard_dir = os.path.join(outdir, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    shards = {"model-00001-of-00002.safetensors": {"emb.weight": ("F32", [2, 2], [1.0, 2.0, 3.0, 4.0]),
                                                   "emb.ids": ("I64", [2], [5, 6])},
              "model-00002-of-00002.safetensors": {"head.weight": ("BF16", [2], [0.25, -8.0]),
                                                   "head.bias": ("F16", [1], [0.125])}}
    weight_map = {}
    for file, tensors in shards.items():
        write_safetensors(os.path.join(shard_dir, file), tensors, pad=False)
        weight_map.update({name: file for name in tensors})
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 32}, "weight_map": weight_map}, f)
    reference["sharded"] = as_reference({n: t for tensors in shards.values() for n, t in tensors.items()})

    # 2-shard pytorch_model.bin with an index (the older transformers layout).
    bin_dir = os.path.join(outdir, "sharded_bin")
    os.makedirs(bin_dir, exist_ok=True)
    parts = [collections.OrderedDict(encoder=torch.randn(3)), collections.OrderedDict(decoder=torch.randn(2, 1))]
    weight_map = {}
    for k, part in enumerate(parts):
        file = "pytorch_model-%05d-of-00002.bin" % (k + 1)
        torch.save(part, os.path.join(bin_dir, file))
        weight_map.update({name: file for name in part})
    with open(os.path.join(bin_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    reference["sharded_bin"] = torch_reference([item for part in parts for item in part.items()])

    with open(os.path.join(outdir, "reference.json"), "w") as f:
        json.dump(reference, f)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    elif len(sys.argv) == 2:
        make(sys.argv[1])
    else:
        sys.exit(__doc__)
