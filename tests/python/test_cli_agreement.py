"""A fit in Python and a predict from the automm command on the same folder agree."""
import subprocess

import numpy as np
import pandas as pd

from automm import MultiModalPredictor
from conftest import CLI, QUICK


def test_python_fit_cli_predict(tabular, tmp_path):
    train, test = tabular
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "model"))
    predictor.fit(train, hyperparameters=QUICK)
    test.to_csv(tmp_path / "test.csv", index=False)
    subprocess.run([CLI, "predict", "--path", str(tmp_path / "model"), "--data", str(tmp_path / "test.csv"),
                    "--out", str(tmp_path / "labels.csv")], check=True, capture_output=True)
    subprocess.run([CLI, "predict", "--path", str(tmp_path / "model"), "--data", str(tmp_path / "test.csv"),
                    "--out", str(tmp_path / "proba.csv"), "--proba"], check=True, capture_output=True)
    cli_labels = pd.read_csv(tmp_path / "labels.csv")["label"]
    assert cli_labels.tolist() == predictor.predict(test).tolist()
    cli_proba = pd.read_csv(tmp_path / "proba.csv")
    python_proba = predictor.predict_proba(test)
    assert list(cli_proba.columns) == [str(c) for c in python_proba.columns]
    np.testing.assert_allclose(cli_proba.to_numpy(), python_proba.to_numpy(), rtol=1e-8, atol=1e-9)  # %.9g text


def test_cli_fit_python_predict(tabular, tmp_path):
    train, test = tabular
    train.to_csv(tmp_path / "train.csv", index=False)
    subprocess.run([CLI, "fit", "--train", str(tmp_path / "train.csv"), "--label", "label", "--path",
                    str(tmp_path / "model"), "--hp", "optim.max_epochs=3", "--hp", "optim.min_steps=0"],
                   check=True, capture_output=True)
    test.to_csv(tmp_path / "test.csv", index=False)
    subprocess.run([CLI, "predict", "--path", str(tmp_path / "model"), "--data", str(tmp_path / "test.csv"),
                    "--out", str(tmp_path / "labels.csv")], check=True, capture_output=True)
    predictor = MultiModalPredictor.load(str(tmp_path / "model"))
    # The DataFrame and the CSV written from it are the same table.
    assert predictor.predict(test).tolist() == pd.read_csv(tmp_path / "labels.csv")["label"].tolist()
    assert predictor.predict(str(tmp_path / "test.csv")).tolist() == predictor.predict(test).tolist()
