"""automm.cpp for Python: AutoGluon MultiModal's MultiModalPredictor, backed by the C++ library.

    from automm import MultiModalPredictor
    predictor = MultiModalPredictor(label="label").fit(train_data)
    predictor.predict(test_data)
"""
from . import _logging  # routes the library's messages into the `automm` logger
from .predictor import MultiModalPredictor

__all__ = ["MultiModalPredictor"]
__version__ = "0.1.0"
