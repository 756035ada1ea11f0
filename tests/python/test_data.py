"""DataFrames, dicts and files become the same tables the automm command reads."""
import base64
import numpy as np
import pandas as pd
import pytest

from automm import _automm
from automm._data import to_table, typed_labels


@pytest.mark.parametrize("value", [0.0, -0.0, 1.0, 0.1, 1.5e-7, 1e-5, 0.0001, 123456789.0, 1e15, 1e16, 1.7976931348623157e308,
                                   5e-324, 2.5e-4, 1 / 3, -12.75, 100.0, 9007199254740993.0, 1e22, 6.02214076e23])
def test_float_text_is_python_repr(value):
    assert _automm.python_float_repr(value) == repr(value)


def test_float_repr_random_doubles():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=2000), rng.normal(size=2000) * 10.0 ** rng.integers(-30, 30, 2000),
                             rng.integers(-10**6, 10**6, 500).astype(float)])
    for value in values:
        assert _automm.python_float_repr(float(value)) == repr(float(value))


def test_dataframe_matches_csv_written_by_pandas(tmp_path):
    frame = pd.DataFrame({
        "f": [1.0, np.nan, 2.5, 1e-7],
        "i": [1, 2, 3, 4],
        "b": [True, False, True, False],
        "s": ["a", None, "c, with comma", "d"],
        "n": pd.array([1, None, 3, 4], dtype="Int64"),
        "c": pd.Categorical(["x", "y", None, "x"]),
    })
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    from_frame = to_table(frame)
    from_file = to_table(str(path))
    assert from_frame.column_names == from_file.column_names == list(frame.columns)
    for name in frame.columns:
        assert from_frame.column(name) == from_file.column(name), name
    assert from_frame.column("f") == ["1.0", None, "2.5", "1e-07"]
    assert from_frame.column("b") == ["True", "False", "True", "False"]


def test_dict_of_lists_and_lists_and_bytes():
    table = to_table({"images": [["a.png", "b.png"], "c.png"], "raw": [b"\x89PNG", None]})
    assert table.column("images") == ["a.png;b.png", "c.png"]
    assert table.column("raw") == [base64.b64encode(b"\x89PNG").decode(), None]


def test_bad_data_types():
    with pytest.raises(TypeError, match="train_data must be a pandas DataFrame"):
        to_table(42, "train_data")
    with pytest.raises(ValueError, match="duplicated column names: a"):
        to_table(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        to_table("missing.csv")


def test_typed_labels_follow_read_csv():
    assert typed_labels(["0", "1"]).dtype == np.int64
    assert typed_labels(["False", "True"]).tolist() == [False, True]
    assert typed_labels(["0.5", "1.5"]).dtype == np.float64
    assert typed_labels(["no", "yes"]).tolist() == ["no", "yes"]
