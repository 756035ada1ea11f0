"""Semantic segmentation through the Python API, with AutoMM's output forms: a (1, H, W)
mask per image and (1, 1, H, W) / (1, K, H, W) probabilities, each at its image's size."""
import subprocess
import sys

import numpy as np
import pandas as pd

from automm import MultiModalPredictor
from conftest import REPO


def _data(folder, classes):
    subprocess.run(["/usr/bin/python3", str(REPO / "examples" / "make_segmentation_data.py"), str(folder),
                    "--train", "24", "--test", "4", "--size", "48", "--classes", str(classes)],
                   check=True, capture_output=True)
    frames = []
    for split in ("train", "test"):
        frame = pd.read_csv(folder / f"{split}.csv")
        for column in ("image", "mask"):
            frame[column] = [str(folder / p) for p in frame[column]]
        frames.append(frame)
    return frames


def _predictor(path, **extra):
    hyperparameters = {"model.sam.checkpoint_name": "scratch:sam-tiny", "model.sam.image_size": 32,
                       "optim.peft": None, "optim.max_epochs": 2, "env.per_gpu_batch_size": 4, "env.batch_size": 4}
    hyperparameters.update(extra)
    return MultiModalPredictor(label="mask", problem_type="semantic_segmentation", path=str(path), verbosity=0,
                               hyperparameters=hyperparameters)


def test_binary_masks_and_probabilities_per_image(tmp_path):
    train, test = _data(tmp_path / "data", 1)
    predictor = _predictor(tmp_path / "m")
    predictor.fit(train)
    masks = predictor.predict(test)
    probabilities = predictor.predict_proba(test, as_multiclass=False)
    assert len(masks) == len(probabilities) == 4
    from PIL import Image
    for path, mask, proba in zip(test["image"], masks, probabilities):
        width, height = Image.open(path).size
        assert mask.shape == (1, height, width) and mask.dtype == np.bool_
        assert proba.shape == (1, 1, height, width)
        # predict ran the rows as one batch and predict_proba one by one: bf16 rounding may differ at the edge.
        assert np.mean((proba[0] > 0.5) == mask) > 0.98
    scores = predictor.evaluate(test, metrics=["iou", "ber"])
    assert set(scores) == {"iou", "ber"} and 0 <= scores["iou"] <= 1
    loaded = MultiModalPredictor.load(str(tmp_path / "m"))
    assert np.allclose(loaded.predict_proba(test.iloc[:1], as_multiclass=False)[0], probabilities[0], atol=1e-5)


def test_multiclass_masks_are_class_indices(tmp_path):
    train, test = _data(tmp_path / "data", 3)
    predictor = _predictor(tmp_path / "m", **{"model.sam.num_mask_tokens": 4})
    predictor.fit(train)
    assert predictor.fit_summary()["loss"] == "mask2former_loss"
    masks = predictor.predict(test)
    probabilities = predictor.predict_proba(test)
    for mask, proba in zip(masks, probabilities):
        assert mask.dtype == np.int64 and mask.min() >= 0 and mask.max() <= 2
        assert proba.shape == (1, 3) + mask.shape[1:]
        assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
