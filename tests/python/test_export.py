"""export_torchscript / export_onnx from Python: the files run in PyTorch (and the
ONNX file's test vector is what the predictor computes)."""
import json
import struct

import numpy as np
import pytest

from automm import MultiModalPredictor
from conftest import QUICK


def read_safetensors(path):
    import torch
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": torch.float32, "I64": torch.int64}
    return {name: torch.frombuffer(bytearray(raw[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]]),
                                   dtype=dtypes[e["dtype"]]).reshape(e["shape"])
            for name, e in header.items() if name != "__metadata__"}


def test_exported_torchscript_gives_predict_proba(tabular, tmp_path):
    torch = pytest.importorskip("torch")
    train, test = tabular
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "model"))
    predictor.fit(train, hyperparameters={**QUICK, "env.precision": "32"})
    rows = test.drop(columns=["label"]).iloc[:8]
    path = predictor.export_torchscript(rows)
    assert path == str(tmp_path / "model" / "model.ts")
    sidecar = json.load(open(path + ".json"))
    example = read_safetensors(path + ".example.safetensors")
    module = torch.jit.load(path)
    logits, _ = module(*[example[i["name"]] for i in sidecar["inputs"]])
    expected = predictor.predict_proba(rows).to_numpy()
    np.testing.assert_allclose(torch.softmax(logits.double(), 1).numpy(), expected, atol=1e-5)
    assert sidecar["classes"] == [str(c) for c in predictor.class_labels]
    onnx = predictor.export_onnx(rows, path=str(tmp_path / "m.onnx"), batch_size=4)
    assert json.load(open(onnx + ".json"))["inputs"][0]["shape"][0] == 4
    with pytest.raises(ValueError, match="truncate_long_and_double"):
        predictor.export_onnx(rows, truncate_long_and_double=True)
    with pytest.raises(ValueError, match="batch_size"):
        predictor.export_torchscript(rows, batch_size=0)
