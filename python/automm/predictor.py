"""MultiModalPredictor with AutoGluon MultiModal's constructor and methods, running
automm.cpp's C++ library: no Python training loop, the GIL released while it works."""
import json
import numbers
import os

import numpy as np
import pandas as pd

from . import _automm, _logging
from ._data import index_of, to_table, typed_labels


def _hyperparameters_json(hyperparameters):
    """AutoMM's forms: a dict of dotted keys (or nested dicts) with Python values,
    a "key=value key=value" string, or a list of "key=value" strings."""
    if hyperparameters is None:
        return "{}"
    if isinstance(hyperparameters, str):
        hyperparameters = hyperparameters.split()
    if isinstance(hyperparameters, (list, tuple)):
        pairs = {}
        for item in hyperparameters:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"hyperparameter override {item!r} must be written key=value")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
        hyperparameters = pairs
    if not isinstance(hyperparameters, dict):
        raise TypeError(f"hyperparameters must be a dict, a 'key=value' string or a list of them, "
                        f"got {type(hyperparameters).__name__}")

    def plain(value):  # numpy scalars and arrays, tuples, sets: as JSON values
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, (np.ndarray, set, frozenset)):
            return list(value)
        raise TypeError(f"hyperparameter value {value!r} of type {type(value).__name__} is not a number, "
                        f"a string, a boolean, None or a list of them")

    return json.dumps(hyperparameters, default=plain)


def _seconds(value, name):
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")
    return float(value)


def _column_name(value, what):
    """A matching column name: AutoMM also takes a one-element list."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{what}: one column is supported, got {list(value)!r}")
        value = value[0]
    return str(value)


def _candidate_names(candidate_data):
    """Class names from a list, a Series, or AutoMM's {"text": [...]} (one column)."""
    if isinstance(candidate_data, dict):
        if len(candidate_data) != 1:
            raise ValueError("candidate_data: give one column of class names, e.g. {'text': ['cat', 'dog']}")
        candidate_data = next(iter(candidate_data.values()))
    if isinstance(candidate_data, pd.DataFrame):
        if candidate_data.shape[1] != 1:
            raise ValueError("candidate_data: give one column of class names")
        candidate_data = candidate_data.iloc[:, 0]
    if isinstance(candidate_data, str):
        raise ValueError("candidate_data: give a list of class names, not one string")
    return [str(name) for name in candidate_data]


class MultiModalPredictor:
    """AutoMM's MultiModalPredictor: fit on a table of text, image, numerical and
    categorical columns; predict, predict_proba, evaluate, extract_embedding, save, load."""

    def __init__(self, label=None, problem_type=None, query=None, response=None, match_label=None,
                 presets=None, eval_metric=None, hyperparameters=None, path=None, verbosity=2,
                 pretrained=True):
        _logging.configure(verbosity)
        self._verbosity = verbosity
        if (query, response) != (None, None):
            problem_type = problem_type or "text_similarity"  # AutoMM's matcher default
        self._class_index = None
        self._predictor = _automm.Predictor(
            label=label or "", problem_type=problem_type or "", presets=presets or "",
            eval_metric=eval_metric or "", hyperparameters=_hyperparameters_json(hyperparameters),
            path=path or "", verbose=verbosity >= 1, pretrained=bool(pretrained),
            query=_column_name(query, "query"), response=_column_name(response, "response"),
            match_label="" if match_label is None else str(match_label))

    @classmethod
    def _wrap(cls, predictor, verbosity):
        self = cls.__new__(cls)
        self._class_index = None
        self._predictor = predictor
        self._verbosity = verbosity
        return self

    # ---- training ----

    def fit(self, train_data, tuning_data=None, time_limit=None, presets=None, hyperparameters=None,
            column_types=None, holdout_frac=None, teacher_predictor=None, seed=0):
        """Fits, then saves to `path`. Returns the predictor. Ctrl-C stops the fit with
        KeyboardInterrupt and leaves any predictor already saved at `path` unchanged.

        teacher_predictor: a fitted MultiModalPredictor, or the folder of a saved one, to
        distill from (the distiller.* hyperparameters); read from its saved folder."""
        if teacher_predictor is None:
            teacher = ""
        elif isinstance(teacher_predictor, (str, os.PathLike)):
            teacher = os.fspath(teacher_predictor)
        elif isinstance(teacher_predictor, MultiModalPredictor):
            teacher = teacher_predictor.path
        else:
            raise TypeError("teacher_predictor must be a MultiModalPredictor or the path of a saved one, got "
                            f"{type(teacher_predictor).__name__}")
        if column_types is not None and not isinstance(column_types, dict):
            raise TypeError(f"column_types must be a dict of column name -> type, got {type(column_types).__name__}")
        if holdout_frac is not None and not (isinstance(holdout_frac, numbers.Real) and 0 < holdout_frac < 1):
            raise ValueError(f"holdout_frac must be a fraction in (0, 1), got {holdout_frac!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        train = to_table(train_data, "train_data")
        tuning = None if tuning_data is None else to_table(tuning_data, "tuning_data")
        with _logging.progress_shown(self._verbosity >= 2):
            self._predictor.fit(train=train, tuning=tuning, time_limit=_seconds(time_limit, "time_limit"),
                                presets=presets or "", hyperparameters=_hyperparameters_json(hyperparameters),
                                column_types={str(k): str(v) for k, v in (column_types or {}).items()},
                                holdout_frac=float(holdout_frac or 0.0), seed=int(seed), teacher=teacher)
        self._class_index = None
        return self

    # ---- inference ----

    def predict(self, data, candidate_data=None, as_pandas=True):
        """One prediction per row: class labels or numbers, a Series indexed like `data`.
        Semantic segmentation: a list with each image's mask, a (1, H, W) array at the image's
        own size (bool for binary masks, class indices for multi-class ones).
        Object detection: a DataFrame with columns image and bboxes (per image a list of
        {"class", "class_id", "bbox", "score"}, boxes in model.mmdet_image.output_bbox_format);
        as_pandas=False: per image {"bboxes": (N, 4), "scores": (N,), "labels": (N,)} arrays.
        Zero-shot image classification: the most probable of the `candidate_data` names."""
        if candidate_data is not None:
            probabilities = self.predict_proba(data, candidate_data, as_pandas=False)
            names = _candidate_names(candidate_data)
            values = pd.Series(names).to_numpy()[probabilities.argmax(axis=1)]
            return pd.Series(values, index=index_of(data, len(values))) if as_pandas else values
        table = to_table(data)
        kind, values, classes = self._predictor.predict(table)
        if kind == "masks":  # semantic segmentation: per image a (1, H, W) array at its own size, as AutoMM
            return [mask[None] for mask in values]
        if kind == "detections":  # object detection, as AutoMM returns it
            if not as_pandas:
                return [{"bboxes": boxes, "scores": scores, "labels": labels} for _, boxes, scores, labels in values]
            rows = []
            for image, boxes, scores, labels in values:
                rows.append([{"class": classes[int(label)], "class_id": int(label), "bbox": [float(v) for v in box],
                              "score": float(score)} for box, score, label in zip(boxes, scores, labels)])
            return pd.DataFrame({"image": [image for image, *_ in values], "bboxes": rows},
                                index=index_of(data, table.num_rows))
        if kind == "classes" and values.ndim == 1:
            values = self._classes().to_numpy()[values]
        if not as_pandas:
            return values
        index = index_of(data, table.num_rows)
        if values.ndim == 2:  # a set of classes per row: one 0/1 column per class
            return pd.DataFrame(values, index=index, columns=self._classes())
        return pd.Series(values, index=index, name=self.label)

    def predict_proba(self, data, candidate_data=None, as_pandas=True, as_multiclass=True):
        """Class probabilities: a DataFrame (one column per class) indexed like `data`;
        for a binary problem with as_multiclass=False, the positive class's Series.
        Zero-shot image classification: `candidate_data` names the classes (a list, or
        AutoMM's {"text": [...]}), one column each."""
        if candidate_data is not None:
            names = _candidate_names(candidate_data)
            table = to_table(data)
            probabilities = self._predictor.predict_proba_candidates(table, names)
            if not as_pandas:
                return probabilities
            return pd.DataFrame(probabilities, index=index_of(data, table.num_rows), columns=names)
        table = to_table(data)
        if self.problem_type == "semantic_segmentation":
            # Per image, at its own size, as AutoMM: (1, 1, H, W) foreground probabilities of a
            # binary predictor with as_multiclass=False, else (1, classes, H, W).
            rows = self._predictor.predict_proba_rows(table, as_multiclass)
            return [p[:, None] if p.ndim == 3 else p for p in rows]  # a row's [1, H, W] -> (1, 1, H, W)
        probabilities = self._predictor.predict_proba(table, as_multiclass)
        if not as_pandas:
            return probabilities
        index = index_of(data, table.num_rows)
        classes = self._classes()
        if probabilities.ndim == 1:
            return pd.Series(probabilities, index=index, name=classes[-1])
        return pd.DataFrame(probabilities, index=index, columns=classes, copy=False)

    def evaluate(self, data, metrics=None):
        """Metric name -> score on the rows of `data` that have a label (default: the eval metric)."""
        if isinstance(metrics, str):
            metrics = [metrics]
        if metrics is not None and not all(isinstance(m, str) for m in metrics):
            raise TypeError(f"metrics must be a metric name or a list of names, got {metrics!r}")
        return dict(self._predictor.evaluate(to_table(data), list(metrics or [])))

    def extract_embedding(self, data, as_tensor=False, as_pandas=False):
        """[rows, dim]: the fused features the head reads (numpy, or a torch tensor)."""
        table = to_table(data)
        embeddings = self._predictor.extract_embedding(table)
        if as_tensor:
            try:
                import torch
            except ImportError as error:
                raise ImportError("extract_embedding(as_tensor=True) needs torch to be importable") from error
            return torch.from_numpy(embeddings)
        if as_pandas:
            return pd.DataFrame(embeddings, index=index_of(data, table.num_rows))
        return embeddings

    def export_onnx(self, data, path=None, batch_size=None, opset_version=16, truncate_long_and_double=False):
        """The network's fp32 forward pass as an ONNX file, traced on `data`'s first rows (AutoMM's
        export_onnx). Its shapes are fixed: batch_size rows (default: all rows of `data`), text padded to
        the processor's longest. Beside it, <path>.json describes inputs and outputs and
        <path>.example.safetensors holds a test vector. Needs torch in /usr/bin/python3 (or
        $AUTOMM_PYTHON), which runs torch.onnx.export. Returns the path (default <predictor path>/model.onnx)."""
        if truncate_long_and_double:
            raise ValueError("truncate_long_and_double (int32 inputs for TensorRT) is not supported: the exported "
                             "inputs stay int64 and float32")
        return self._export(data, path, batch_size, "onnx", "model.onnx", opset_version)

    def export_torchscript(self, data, path=None, batch_size=None):
        """As export_onnx, as a frozen TorchScript file that torch.jit.load runs (no Python torch needed to
        write it). Returns the path (default <predictor path>/model.ts)."""
        return self._export(data, path, batch_size, "torchscript", "model.ts", 16)

    def _export(self, data, path, batch_size, format, default_name, opset_version):
        table = to_table(data)
        if path is None:
            path = os.path.join(self._predictor.path, default_name)
        rows = table.num_rows if batch_size is None else batch_size
        if not isinstance(rows, (int, np.integer)) or isinstance(rows, bool) or rows < 1:
            raise ValueError(f"batch_size must be a positive number of rows, got {batch_size!r}")
        self._predictor.export_model(table, str(path), format, int(rows), 0, int(opset_version))
        return str(path)

    def _classes(self):
        """The typed class labels as a pandas Index, made once per fitted model."""
        if self._class_index is None:
            self._class_index = pd.Index(typed_labels(self._predictor.classes))
        return self._class_index

    # ---- folders ----

    def save(self, path, standalone=True):
        """A self-contained folder, written through a temporary folder and a rename."""
        self._predictor.save(str(path), bool(standalone))

    @classmethod
    def load(cls, path, resume=False, verbosity=2):
        """A predictor saved by save() or fit() (by this package or the automm command)."""
        _logging.configure(verbosity)
        return cls._wrap(_automm.Predictor.load(str(path), bool(resume)), verbosity)

    def fit_summary(self):
        """What the fit did: steps, stop reason, validation scores, the training budget (a dict)."""
        return json.loads(self._predictor.fit_summary())

    # ---- properties ----

    @property
    def path(self):
        return self._predictor.path

    @property
    def label(self):
        return self._predictor.label

    @property
    def problem_type(self):
        return self._predictor.problem_type

    @property
    def eval_metric(self):
        return self._predictor.eval_metric

    @property
    def class_labels(self):
        """The classes in probability-column order (numpy), None for regression."""
        classes = self._predictor.classes
        return typed_labels(classes) if classes else None

    @property
    def column_types(self):
        return dict(self._predictor.column_types)

    @property
    def hyperparameters(self):
        """Every key's resolved value (flat dotted names)."""
        return json.loads(self._predictor.config())

    def __repr__(self):
        return f"MultiModalPredictor(label={self.label!r}, problem_type={self.problem_type!r}, path={self.path!r})"
