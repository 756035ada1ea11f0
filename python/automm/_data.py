"""Data in and out: pandas DataFrames, dicts of lists and table files become the
C++ library's tables; its results become pandas objects indexed like the input."""
import base64
import json
import os

import numpy as np
import pandas as pd

from . import _automm


def to_table(data, what="data"):
    """A C++ table from a DataFrame, a dict of lists or a CSV / TSV / JSON Lines path."""
    if isinstance(data, _automm.Table):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.isfile(path) and not os.path.isdir(path):  # a folder: a VOC detection root
            raise FileNotFoundError(f"{what}: no such file or folder: {path}")
        return _automm.Table.read(path)
    if isinstance(data, dict):
        data = pd.DataFrame(data)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, a dict of lists or the path of a CSV / TSV / "
                        f"JSON Lines file, got {type(data).__name__}")
    names = [str(name) for name in data.columns]
    if len(set(names)) != len(names):
        duplicated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"{what} has duplicated column names: {', '.join(duplicated)}")
    table = _automm.Table()
    table.source = "<DataFrame>"
    for label, name in zip(data.columns, names):
        _add_column(table, name, data[label])
    return table


def _is_nested_sequence(value):
    """A list of lists (a detection table's rois), as opposed to a list of image paths."""
    return (isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0
            and all(isinstance(v, (list, tuple, np.ndarray)) for v in value))


def _plain(value):
    """Nested lists, tuples, arrays and numpy scalars as plain Python values (for json.dumps)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _add_column(table, name, series):
    dtype = series.dtype
    plain_numpy = isinstance(dtype, np.dtype)
    if plain_numpy and dtype.kind == "f":
        # Straight from the array's buffer: NaN is missing, numbers written as repr().
        table.add_float_column(name, series.to_numpy(dtype=np.float64, copy=False))
    elif plain_numpy and dtype.kind in "iu" and dtype != np.uint64:
        table.add_int_column(name, series.to_numpy(dtype=np.int64, copy=False))
    else:
        values = series.to_numpy(dtype=object)
        missing = pd.isna(values)
        values = values.tolist()
        if any(_is_nested_sequence(v) for v in values):  # boxes [[x1, y1, x2, y2, class], ...] travel as JSON
            values = [json.dumps(_plain(v)) if _is_nested_sequence(v) else v for v in values]
        if any(isinstance(v, (bytes, bytearray)) for v in values):  # image bytes travel as base64 text
            values = [base64.b64encode(v).decode("ascii") if isinstance(v, (bytes, bytearray)) else v
                      for v in values]
        table.add_object_column(name, values, missing)


def typed_labels(classes):
    """Class labels (text in the C++ library) typed as pandas' read_csv types them:
    all integers -> int, all True/False -> bool, all numbers -> float, else str."""
    if not classes:
        return np.asarray([], dtype=object)
    try:
        if all(c.lstrip("+-").isdigit() for c in classes):
            return np.asarray([int(c) for c in classes], dtype=np.int64)
    except ValueError:
        pass
    if all(c.lower() in ("true", "false") for c in classes):
        return np.asarray([c.lower() == "true" for c in classes], dtype=bool)
    try:
        return np.asarray([float(c) for c in classes], dtype=np.float64)
    except ValueError:
        return np.asarray(classes, dtype=object)


def index_of(data, rows):
    """The input's index when it was a DataFrame, else 0..rows-1."""
    if isinstance(data, pd.DataFrame):
        return data.index
    return pd.RangeIndex(rows)
