"""AutoMM's quick start, run on automm.cpp: only the import line differs from
AutoGluon's tutorial (`from autogluon.multimodal import MultiModalPredictor`)."""
import sys

import pandas as pd

from automm import MultiModalPredictor

data, out = sys.argv[1], sys.argv[2]
train_data = pd.read_csv(f"{data}/train.csv")
test_data = pd.read_csv(f"{data}/test.csv")

predictor = MultiModalPredictor(label="label", eval_metric="accuracy", path=out)
predictor.fit(train_data=train_data, seed=0)
predictions = predictor.predict(test_data.drop(columns="label"))
probabilities = predictor.predict_proba(test_data.drop(columns="label"))
scores = predictor.evaluate(test_data, metrics=["accuracy", "roc_auc"])
print(pd.concat([predictions, probabilities], axis=1).head(3))
print("scores:", scores)
