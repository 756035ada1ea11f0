"""safetensors without the safetensors package, for the encoder reference scripts
(deberta_v2_reference.py, distilbert_reference.py, mpnet_reference.py, through
reference_common.py), which /usr/bin/python3 runs with only Debian's torch and numpy."""
import json

import numpy as np
import torch

_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """{name: CPU tensor} of a safetensors file with F32 / F64 / I64 / I32 tensors."""
    with open(path, "rb") as f:
        data = f.read()
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


def write_safetensors(path, tensors):
    """Writes {name: tensor} as safetensors: int64 tensors (BatchNorm's
    num_batches_tracked) as I64, everything else as float32."""
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        dtype, numpy_dtype = ("I64", "<i8") if tensor.dtype == torch.int64 else ("F32", "<f4")
        raw = tensor.detach().contiguous().cpu().numpy().astype(numpy_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(chunks))
