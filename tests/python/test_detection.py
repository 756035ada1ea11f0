"""Object detection through the Python API: COCO json paths and DataFrames of rois as
data, AutoMM's output forms (a DataFrame of image and bboxes, or per image arrays), COCO's
statistics from evaluate, save / load."""
import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from automm import MultiModalPredictor
from conftest import REPO


def _coco(folder):
    subprocess.run(["/usr/bin/python3", str(REPO / "examples" / "make_detection_data.py"), str(folder),
                    "--train", "16", "--test", "4", "--size", "64"], check=True, capture_output=True)
    return str(folder / "annotations" / "train.json"), str(folder / "annotations" / "test.json")


def _predictor(path, **extra):
    hyperparameters = {"model.mmdet_image.checkpoint_name": "yolox_nano", "model.mmdet_image.image_size": 64,
                       "optim.max_epochs": 1, "env.per_gpu_batch_size": 8, "env.batch_size": 8}
    hyperparameters.update(extra)
    return MultiModalPredictor(problem_type="object_detection", path=str(path), verbosity=0, pretrained=False,
                               hyperparameters=hyperparameters)


def test_coco_files_in_autogluons_output_forms(tmp_path):
    train, test = _coco(tmp_path / "data")
    predictor = _predictor(tmp_path / "m", **{"model.mmdet_image.score_thr": 0.0})
    predictor.fit(train, tuning_data=test)
    frame = predictor.predict(test)
    assert list(frame.columns) == ["image", "bboxes"] and len(frame) == 4
    names = [c["name"] for c in json.load(open(test))["categories"]]
    boxes = [box for row in frame["bboxes"] for box in row]
    assert boxes, "a score threshold of 0 keeps boxes"
    assert set(boxes[0]) == {"class", "class_id", "bbox", "score"}
    assert all(b["class"] == names[b["class_id"]] and len(b["bbox"]) == 4 for b in boxes)
    arrays = predictor.predict(test, as_pandas=False)
    assert len(arrays) == 4 and arrays[0]["bboxes"].shape[1] == 4
    assert arrays[0]["bboxes"].shape[0] == arrays[0]["scores"].shape[0] == arrays[0]["labels"].shape[0]
    scores = predictor.evaluate(test)
    assert {"map", "map_50", "mar_100", "mar_large"} <= set(scores) and all(-1 <= v <= 1 for v in scores.values())
    assert set(predictor.evaluate(test, metrics=["map_50"])) == {"map_50"}
    loaded = MultiModalPredictor.load(str(tmp_path / "m"))
    again = loaded.predict(test, as_pandas=False)
    assert np.allclose(again[0]["bboxes"], arrays[0]["bboxes"], atol=1e-4)
    with pytest.raises(Exception, match="predict_proba is not available"):
        predictor.predict_proba(test)


def test_a_dataframe_of_rois(tmp_path):
    train, _ = _coco(tmp_path / "data")
    document = json.load(open(train))
    root = tmp_path / "data"
    ids = [c["id"] for c in document["categories"]]
    rows = []
    for image in document["images"]:
        rois = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3],
                 ids.index(a["category_id"])] for a in document["annotations"] if a["image_id"] == image["id"]]
        rows.append({"image": str(root / image["file_name"]), "rois": rois})
    frame = pd.DataFrame(rows)
    predictor = _predictor(tmp_path / "m", **{"model.mmdet_image.output_bbox_format": "xywh"})
    predictor.fit(frame)
    assert len(predictor.predict(frame)) == len(frame)
