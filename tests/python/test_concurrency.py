"""Several Python threads predicting with one loaded predictor get the answers a
single thread gets (the GIL is released while the library works)."""
import concurrent.futures
import logging

import numpy as np

from automm import MultiModalPredictor
from conftest import QUICK


def test_concurrent_predict(tabular, tmp_path):
    train, test = tabular
    MultiModalPredictor(label="label", path=str(tmp_path / "model")).fit(train, hyperparameters=QUICK)
    predictor = MultiModalPredictor.load(str(tmp_path / "model"))
    chunks = [test.iloc[i::8] for i in range(8)]
    expected = [predictor.predict_proba(chunk).to_numpy() for chunk in chunks]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            results = list(pool.map(lambda c: predictor.predict_proba(c).to_numpy(), chunks))
            for got, want in zip(results, expected):
                np.testing.assert_array_equal(got, want)
            labels = list(pool.map(lambda c: predictor.predict(c).tolist(), chunks))
            assert labels == [predictor.predict(c).tolist() for c in chunks]


def test_messages_reach_python_logging(tabular, tmp_path, caplog):
    train, _ = tabular
    with caplog.at_level(logging.INFO, logger="automm"):
        MultiModalPredictor(label="label", path=str(tmp_path / "model")).fit(train, hyperparameters=QUICK)
    messages = [r.getMessage() for r in caplog.records if r.name == "automm"]
    assert any("binary problem" in m for m in messages), messages
    assert any(m.startswith("stopped:") for m in messages), messages


def test_verbosity_zero_is_silent(tabular, tmp_path, caplog):
    train, _ = tabular
    with caplog.at_level(logging.DEBUG, logger="automm"):
        MultiModalPredictor(label="label", path=str(tmp_path / "model"), verbosity=0).fit(
            train, hyperparameters=QUICK)
    assert not [r for r in caplog.records if r.name == "automm"]


def test_fit_releases_the_gil(tabular, tmp_path):
    """Python code keeps running beside a fit in another thread."""
    import threading
    import time
    train, _ = tabular
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "model"), verbosity=0)
    worker = threading.Thread(target=predictor.fit, args=(train,),
                              kwargs={"hyperparameters": {"optim.max_epochs": 20, "optim.min_steps": 0}})
    ticks = 0
    start = time.monotonic()
    worker.start()
    while worker.is_alive():
        ticks += 1
        sum(range(1000))  # pure Python work: needs the GIL
        time.sleep(0.001)
    seconds = time.monotonic() - start
    assert seconds > 0.3, "the fit was too short to tell"
    assert ticks > seconds * 100, (ticks, seconds)  # about 1000 per second unless the GIL is held


def test_progress_bar_on_a_terminal(monkeypatch):
    """Without tqdm, progress is one line rewritten in place on a terminal, closed at the end."""
    import io
    import sys
    from automm import _logging

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(_logging, "_tqdm", None)
    sink = _logging.PythonSink()
    with _logging.progress_shown(True):
        for batch in range(4):
            sink.progress(0, 3, batch, 4, batch, 0.5)
        sink.progress_end()
    text = terminal.getvalue()
    assert "\rEpoch 1/3 [" in text and "4/4 loss 0.5000" in text
    assert text.endswith("\r\033[K")
    terminal.truncate(0)
    with _logging.progress_shown(False):  # verbosity < 2
        sink.progress(0, 3, 0, 4, 0, 0.5)
    assert terminal.getvalue() == ""
