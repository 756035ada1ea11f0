"""AutoMM's quick-start scripts, unchanged except the import line."""
import numpy as np
import pandas as pd
import pytest

from automm import MultiModalPredictor
from conftest import QUICK


def test_tabular_classification(tabular, tmp_path):
    train_data, test_data = tabular
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "model"), eval_metric="accuracy")
    predictor.fit(train_data=train_data, hyperparameters=QUICK, time_limit=120)
    predictions = predictor.predict(test_data.drop(columns="label"))
    probabilities = predictor.predict_proba(test_data.drop(columns="label"))
    scores = predictor.evaluate(test_data, metrics=["accuracy", "roc_auc"])

    assert isinstance(predictions, pd.Series) and predictions.name == "label"
    assert list(predictions.index) == list(test_data.index)
    assert set(predictions.unique()) <= {"yes", "no"}
    assert list(probabilities.columns) == list(predictor.class_labels)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(scores) == {"accuracy", "roc_auc"}
    assert scores["accuracy"] > 0.7  # the label depends on the columns; chance is about 0.5
    assert predictor.problem_type == "binary"
    assert predictor.eval_metric == "accuracy"
    summary = predictor.fit_summary()
    assert isinstance(summary, dict) and summary

    loaded = MultiModalPredictor.load(str(tmp_path / "model"))
    pd.testing.assert_series_equal(loaded.predict(test_data), predictor.predict(test_data))
    pd.testing.assert_frame_equal(loaded.predict_proba(test_data), probabilities)
    positive = predictor.predict_proba(test_data, as_multiclass=False)
    np.testing.assert_allclose(positive.to_numpy(), probabilities.iloc[:, 1].to_numpy())

    embeddings = predictor.extract_embedding(test_data)
    assert isinstance(embeddings, np.ndarray) and embeddings.shape[0] == len(test_data)


def test_regression(regression_data, tmp_path):
    train_data, test_data = regression_data
    predictor = MultiModalPredictor(label="y", problem_type="regression", path=str(tmp_path / "reg"))
    predictor.fit(train_data, hyperparameters={"optim.max_epochs": 30})
    predictions = predictor.predict(test_data)
    assert predictions.dtype == np.float64
    assert predictor.class_labels is None
    scores = predictor.evaluate(test_data, metrics=["rmse", "r2"])
    assert scores["r2"] > 0.5, scores
    with pytest.raises(ValueError, match="predict_proba"):
        predictor.predict_proba(test_data)


def test_text_classification(reviews, tmp_path):
    train_data, test_data = reviews
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "text"))
    predictor.fit(train_data, hyperparameters={"model.hf_text.checkpoint_name": "scratch:bert-tiny",
                                              "optim.lr": 1e-3, **QUICK})
    assert predictor.column_types["review"] == "text"
    predictions = predictor.predict(test_data)
    assert len(predictions) == len(test_data)
    assert set(predictor.evaluate(test_data)) == {predictor.eval_metric}


def test_image_classification(images, tmp_path):
    train_data, test_data = images
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "img"), pretrained=False)
    predictor.fit(train_data, hyperparameters={
        "model.names": ["timm_image"], "model.timm_image.checkpoint_name": "resnet18",
        "model.timm_image.image_size": 32, "optim.max_epochs": 2, "optim.min_steps": 0})
    assert predictor.column_types["image"] == "image_path"
    probabilities = predictor.predict_proba(test_data)
    assert probabilities.shape == (len(test_data), 2)


def test_text_and_image_regression(reviews, images, tmp_path):
    train_data, test_data = reviews
    predictor = MultiModalPredictor(label="price", problem_type="regression", path=str(tmp_path / "text_reg"))
    predictor.fit(train_data.drop(columns="label"), hyperparameters=[
        "model.hf_text.checkpoint_name=scratch:bert-tiny", "optim.lr=1e-3", "optim.max_epochs=2",
        "optim.min_steps=0"])  # AutoMM's list-of-overrides form
    predictions = predictor.predict(test_data)
    assert predictions.dtype == np.float64 and len(predictions) == len(test_data)
    assert "rmse" in predictor.evaluate(test_data, metrics="rmse")

    train_images, test_images = images
    redness = {"red": 1.0, "blue": 0.0}
    train_images = train_images.assign(score=train_images["label"].map(redness)).drop(columns="label")
    predictor = MultiModalPredictor(label="score", problem_type="regression", path=str(tmp_path / "img_reg"),
                                    pretrained=False)
    predictor.fit(train_images, hyperparameters={  # nested dicts, as AutoMM accepts them
        "model": {"names": ["timm_image"], "timm_image": {"checkpoint_name": "resnet18", "image_size": 32}},
        "optim": {"max_epochs": 2, "min_steps": 0}})
    assert predictor.hyperparameters["model.timm_image.image_size"] == 32
    assert predictor.predict(test_images).shape == (len(test_images),)


def test_outputs_without_pandas_and_as_tensors(tabular, tmp_path):
    import torch
    train, test = tabular
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "m")).fit(train, hyperparameters=QUICK)
    labels = predictor.predict(test, as_pandas=False)
    assert isinstance(labels, np.ndarray) and labels.tolist() == predictor.predict(test).tolist()
    probabilities = predictor.predict_proba(test, as_pandas=False)
    assert isinstance(probabilities, np.ndarray) and probabilities.shape == (len(test), 2)
    embeddings = predictor.extract_embedding(test, as_tensor=True)
    assert isinstance(embeddings, torch.Tensor)
    np.testing.assert_array_equal(embeddings.numpy(), predictor.extract_embedding(test))
    # A dict of lists and a reindexed DataFrame: results follow the input's index.
    shuffled = test.sample(frac=1.0, random_state=0)
    pd.testing.assert_series_equal(predictor.predict(shuffled), predictor.predict(test).loc[shuffled.index])
    as_dict = predictor.predict(test.to_dict("list"))
    assert as_dict.index.equals(pd.RangeIndex(len(test))) and as_dict.tolist() == predictor.predict(test).tolist()
