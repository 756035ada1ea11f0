"""Shared data for the Python package's tests. CTest runs them with
PYTHONPATH=build/python (the package as built, not an installed copy) and
AUTOMM_CLI pointing at the automm command."""
import os
import pathlib

import numpy as np
import pandas as pd
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "data"
CLI = os.environ.get("AUTOMM_CLI", str(REPO / "build" / "automm"))

# Small fits: a few epochs are enough to check that the API works end to end.
QUICK = {"optim.max_epochs": 3, "optim.min_steps": 0}


@pytest.fixture(scope="session")
def tabular():
    train = pd.read_csv(EXAMPLES / "train.csv").iloc[:600]
    test = pd.read_csv(EXAMPLES / "test.csv").iloc[:200]
    return train, test


@pytest.fixture(scope="session")
def reviews():
    train = pd.read_csv(EXAMPLES / "reviews_train.csv").iloc[:300]
    test = pd.read_csv(EXAMPLES / "reviews_test.csv").iloc[:100]
    return train, test


@pytest.fixture(scope="session")
def regression_data():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "group": rng.choice(["a", "b", "c"], size=n)})
    frame["y"] = 2.0 * frame["x1"] - frame["x2"] + frame["group"].map({"a": 0.0, "b": 1.0, "c": -1.0})
    return frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Red and blue squares on noise, as PNG files, with a table of paths."""
    from PIL import Image
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(48):
        label = "red" if i % 2 == 0 else "blue"
        pixels = rng.integers(0, 80, size=(24, 24, 3), dtype=np.uint8)
        channel = 0 if label == "red" else 2
        pixels[4:20, 4:20, channel] = 230
        path = folder / f"img_{i}.png"
        Image.fromarray(pixels).save(path)
        rows.append({"image": str(path), "label": label})
    frame = pd.DataFrame(rows)
    return frame.iloc[:36].reset_index(drop=True), frame.iloc[36:].reset_index(drop=True)
