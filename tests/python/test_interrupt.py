"""Ctrl-C during fit: KeyboardInterrupt, and the predictor already saved at the
path is unchanged (same files, same predictions)."""
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time

from automm import MultiModalPredictor
from conftest import EXAMPLES, QUICK

SCRIPT = """
import logging, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job inherits SIGINT ignored
import pandas as pd
from automm import MultiModalPredictor

class Started(logging.Handler):
    def emit(self, record):
        if "problem," in record.getMessage():
            print("training", flush=True)

logging.getLogger("automm").addHandler(Started())
train = pd.read_csv(sys.argv[2])
MultiModalPredictor(label="label", path=sys.argv[1]).fit(
    train, hyperparameters={"optim.max_epochs": 100000, "optim.patience": 100000, "optim.min_steps": 0})
print("finished", flush=True)
"""


def digest(folder):
    files = sorted(p for p in pathlib.Path(folder).rglob("*") if p.is_file() and "resume" not in p.parts)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_ctrl_c_stops_the_fit_and_keeps_the_saved_predictor(tabular, tmp_path):
    train, test = tabular
    path = tmp_path / "model"
    saved = MultiModalPredictor(label="label", path=str(path)).fit(train, hyperparameters=QUICK)
    before_files = digest(path)
    before = saved.predict_proba(test)

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), str(EXAMPLES / "train.csv")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "training"
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr[-2000:]
    assert "finished" not in stderr
    assert digest(path) == before_files
    after = MultiModalPredictor.load(str(path)).predict_proba(test)
    assert after.equals(before)
