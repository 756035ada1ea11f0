#!/usr/bin/env python3
"""The Python package's overhead on a one-row predict, all in one process and one run:

  C++       predict_proba called in a loop inside the library (automm._automm.time_predict_proba)
  binding   the extension module's call on a table built once (pybind11 crossing + numpy out)
  python    MultiModalPredictor.predict_proba on a one-row DataFrame (conversion in, pandas out)

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/python_binding.py [PREDICTOR_DIR]
(without a folder it fits a small tabular predictor on examples/data/train.csv first).
"""
import pathlib
import statistics
import sys
import tempfile
import time

import pandas as pd

from automm import MultiModalPredictor, _automm
from automm._data import to_table

REPO = pathlib.Path(__file__).resolve().parents[1]


def interleaved(candidates, repeats=500, rounds=15):
    """Median over rounds of the mean seconds per call; the candidates take turns
    within each round, so that the machine's drift touches them alike."""
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, function in candidates.items():
            start = time.perf_counter()
            function(repeats)
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(values) for name, values in times.items()}


def repeat(function):
    def run(n):
        for _ in range(n):
            function()
    return run


def main():
    test = pd.read_csv(REPO / "examples" / "data" / "test.csv")
    if len(sys.argv) > 1:
        predictor = MultiModalPredictor.load(sys.argv[1], verbosity=0)
    else:
        folder = tempfile.mkdtemp(prefix="automm-bench-")
        train = pd.read_csv(REPO / "examples" / "data" / "train.csv")
        predictor = MultiModalPredictor(label="label", path=folder, verbosity=0).fit(train, seed=0)
    row = test.drop(columns="label").iloc[:1]
    table = to_table(row)
    raw = predictor._predictor
    for _ in range(200):  # warm up: thread pools, allocator
        predictor.predict_proba(row)
    t = interleaved({
        "cpp": lambda n: _automm.time_predict_proba(raw, table, n),  # the n calls loop inside C++
        "binding": repeat(lambda: raw.predict_proba(table, True)),
        "python": repeat(lambda: predictor.predict_proba(row)),
    })
    cpp, binding, python = t["cpp"], t["binding"], t["python"]
    print(f"one-row predict_proba, {predictor.problem_type}, columns: {', '.join(row.columns)}")
    print(f"  C++ in-process   {cpp * 1e6:8.1f} us   1.00x")
    print(f"  binding call     {binding * 1e6:8.1f} us   {binding / cpp:.2f}x  (+{(binding - cpp) * 1e6:.1f} us)")
    print(f"  Python API       {python * 1e6:8.1f} us   {python / cpp:.2f}x  (+{(python - cpp) * 1e6:.1f} us: "
          f"DataFrame -> table, numpy -> DataFrame)")


if __name__ == "__main__":
    main()
