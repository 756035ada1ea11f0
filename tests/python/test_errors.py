"""Bad input raises the Python exception AutoMM raises, carrying the C++ message."""
import pytest

from automm import MultiModalPredictor
from conftest import QUICK


def test_missing_label_column(tabular, tmp_path):
    train, _ = tabular
    predictor = MultiModalPredictor(label="target", path=str(tmp_path / "m"))
    with pytest.raises(ValueError, match="target"):
        predictor.fit(train, hyperparameters=QUICK)


def test_unknown_key_is_a_key_error(tabular, tmp_path):
    with pytest.raises(KeyError, match="unknown hyperparameter key 'optim.learning_rat'.*optim.learning_rate"):
        MultiModalPredictor(label="label", hyperparameters={"optim.learning_rat": 0.1})
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "m"))
    with pytest.raises(KeyError, match="model.hf_txt"):
        predictor.fit(tabular[0], hyperparameters={"model.hf_txt.checkpoint_name": "x"})


def test_bad_values_and_types(tabular, tmp_path):
    with pytest.raises(ValueError, match="optim.lr"):
        MultiModalPredictor(label="label", hyperparameters={"optim.lr": "fast"})
    predictor = MultiModalPredictor(label="label", path=str(tmp_path / "m"))
    with pytest.raises(TypeError, match="train_data must be a pandas DataFrame"):
        predictor.fit([1, 2, 3])
    with pytest.raises(TypeError, match="hyperparameters must be a dict"):
        predictor.fit(tabular[0], hyperparameters=42)
    with pytest.raises(ValueError, match="time_limit"):
        predictor.fit(tabular[0], time_limit="soon")
    with pytest.raises(ValueError, match="unknown eval metric|eval_metric|metric"):
        MultiModalPredictor(label="label", eval_metric="accuracyy")


def test_unsupported_features_say_so(tabular, tmp_path):
    with pytest.raises(ValueError, match="ner.*not supported yet"):
        MultiModalPredictor(problem_type="ner")
    with pytest.raises(ValueError, match="query column 'q'"):
        MultiModalPredictor(query="q", response="r", path=str(tmp_path / "m"), verbosity=0).fit(tabular[0])
    with pytest.raises(ValueError, match="pretrained backbones"):
        MultiModalPredictor(label="label", hyperparameters={"optim.peft": "lora"}).fit(tabular[0])


def test_teacher_predictor(tabular, tmp_path):
    quick = {"optim.max_epochs": 1}
    teacher = MultiModalPredictor(label="label", path=str(tmp_path / "teacher"), verbosity=0)
    teacher.fit(tabular[0], hyperparameters=quick)
    for given in (teacher, str(tmp_path / "teacher")):
        student = MultiModalPredictor(label="label", path=str(tmp_path / "student"), verbosity=0)
        student.fit(tabular[0], hyperparameters=quick, teacher_predictor=given)
        assert "distillation" in student.fit_summary()
    with pytest.raises(TypeError, match="teacher_predictor"):
        student.fit(tabular[0], teacher_predictor=42)
    with pytest.raises(RuntimeError, match="nowhere"):
        student.fit(tabular[0], teacher_predictor=str(tmp_path / "nowhere"))


def test_unfitted_predictor(tabular):
    predictor = MultiModalPredictor(label="label")
    with pytest.raises(RuntimeError, match="fitted"):
        predictor.predict(tabular[1])


def test_load_of_a_folder_that_is_no_predictor(tmp_path):
    with pytest.raises(RuntimeError, match="not a folder"):
        MultiModalPredictor.load(str(tmp_path / "nothing"))
