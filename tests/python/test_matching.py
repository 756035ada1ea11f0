"""Matching and candidate classes through the Python API, as AutoMM's MultiModalPredictor takes them."""
import random

import numpy as np
import pandas as pd
import pytest

from automm import MultiModalPredictor


def _pairs(n, seed):
    # Concept k is "qk<k>" in queries and "rk<k>" in responses: only a learned mapping matches them.
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        i, j = rng.sample(range(12), 2)
        rows.append({"question": f"find qk{i} qk{j}", "answer": f"rk{j} and rk{i}"})
    return pd.DataFrame(rows)


def test_text_similarity_fit_evaluate_embed(tmp_path):
    train, test = _pairs(160, 1), _pairs(30, 2)
    predictor = MultiModalPredictor(query="question", response="answer", path=str(tmp_path / "m"), verbosity=0,
                                    hyperparameters={"model.hf_text.checkpoint_name": "scratch:bert-tiny",
                                                     "model.hf_text.text_trivial_aug_maxscale": 0.0,
                                                     "optim.lr": 1e-3, "optim.max_epochs": 10,
                                                     "env.per_gpu_batch_size": 32, "env.batch_size": 32})
    assert predictor.problem_type == "text_similarity"
    predictor.fit(train)
    scores = predictor.evaluate(test, metrics=["recall@1", "mrr"])
    assert set(scores) == {"recall@1", "mrr"}
    assert 0.0 <= scores["recall@1"] <= 1.0
    probabilities = predictor.predict_proba(test)
    assert probabilities.shape == (30, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    queries = predictor.extract_embedding(test[["question"]])
    answers = predictor.extract_embedding(test[["answer"]])
    assert queries.shape[0] == answers.shape[0] == 30
    loaded = MultiModalPredictor.load(str(tmp_path / "m"))
    assert np.allclose(loaded.extract_embedding(test[["question"]]), queries, atol=1e-5)


def test_candidate_classes_need_a_zero_shot_predictor(tabular, tmp_path):
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "t"), verbosity=0)
    predictor.fit(tabular[0], hyperparameters={"optim.max_epochs": 1})
    with pytest.raises(ValueError, match="zero_shot_image_classification"):
        predictor.predict_proba(tabular[1], {"text": ["a", "b"]})
    with pytest.raises(ValueError, match="one column of class names"):
        predictor.predict_proba(tabular[1], {"text": ["a"], "other": ["b"]})
