from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from retrain.domain.settings import SettingsError, load_settings, parse_settings

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def _raw() -> dict:
    return yaml.safe_load(PARAMS.read_text())


def test_project_params_load_into_frozen_settings():
    settings = load_settings(PARAMS)
    assert settings.contract.relative_path == "data_contracts/loans/v3.json"
    assert settings.dataset.target not in settings.dataset.features.all
    with pytest.raises(ValidationError):  # frozen: settings cannot change after loading
        settings.gate.floor = 0.1  # type: ignore[misc]


def test_unknown_key_names_key_and_file():
    raw = _raw()
    raw["gate"]["flor"] = 0.7
    with pytest.raises(SettingsError, match=r"params\.yaml: key 'gate\.flor' is not a known setting"):
        parse_settings(raw, "params.yaml")


def test_missing_key_names_key_and_file():
    raw = _raw()
    del raw["model"]["xgboost"]["max_depth"]
    with pytest.raises(SettingsError, match=r"p\.yaml: key 'model\.xgboost\.max_depth' is missing"):
        parse_settings(raw, "p.yaml")


def test_wrong_type_names_key_value_and_file():
    raw = _raw()
    raw["split"]["holdout_days"] = "two"
    with pytest.raises(SettingsError, match=r"key 'split\.holdout_days'.*'two'"):
        parse_settings(raw, "params.yaml")


def test_target_listed_as_feature_is_refused():
    raw = _raw()
    raw["dataset"]["features"]["numeric"].append(raw["dataset"]["target"])
    with pytest.raises(SettingsError, match="must not include target"):
        parse_settings(raw, "params.yaml")


def test_unreadable_files_are_reported_with_path(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(scalar)


@pytest.mark.parametrize(
    ("metric", "floor", "range_text"),
    [
        ("roc_auc", 1.5, r"\[0, 1\]"),
        ("pr_auc", -0.1, r"\[0, 1\]"),
        ("brier", 2.0, r"\[0, 1\]"),
        ("log_loss", -0.2, "inf"),
    ],
)
def test_a_floor_outside_the_metrics_range_names_the_key(metric: str, floor: float, range_text: str):
    raw = _raw()
    raw["gate"].update(primary_metric=metric, floor=floor)
    with pytest.raises(SettingsError, match=rf"params\.yaml: key 'gate\.floor': {floor} is outside .*{range_text}"):
        parse_settings(raw, "params.yaml")


_LABELS = {"binary": None, "multiclass": {"classes": ["a", "b", "c"]}, "regression": None}


def test_a_floor_within_range_is_accepted_for_every_metric():
    from retrain.domain.metrics import METRICS, TASK_METRICS

    assert {metric for names in TASK_METRICS.values() for metric in names} == set(METRICS)
    for task, names in TASK_METRICS.items():
        for metric in names:
            spec = METRICS[metric]
            raw = _raw()
            raw["dataset"].update(task=task, labels=_LABELS[task])
            raw["gate"].update(primary_metric=metric, floor=spec.lowest)
            assert parse_settings(raw, "params.yaml").gate.floor == spec.lowest
    raw = _raw()
    raw["gate"].update(primary_metric="log_loss", floor=3.0)  # a loss has no upper bound
    assert parse_settings(raw, "params.yaml").gate.floor == 3.0


def test_a_margin_wider_than_the_metric_is_refused():
    raw = _raw()
    raw["gate"]["max_drop"] = 2.0
    with pytest.raises(SettingsError, match=r"key 'gate\.max_drop': 2\.0 is wider than the whole range of roc_auc"):
        parse_settings(raw, "params.yaml")


def test_empty_feature_lists_are_refused_in_one_line():
    raw = _raw()
    raw["dataset"]["features"] = {"numeric": [], "categorical": []}
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, "params.yaml")
    assert str(caught.value) == (
        "params.yaml: key 'dataset.features': list at least one feature (numeric or categorical)"
    )


def _project(tmp_path: Path, change) -> Path:
    """A project directory with the repository's contracts and a params.yaml changed by ``change``."""
    import shutil

    shutil.copytree(PARAMS.parent / "data_contracts", tmp_path / "data_contracts")
    raw = _raw()
    change(raw)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "params.yaml"


@pytest.mark.parametrize(
    ("change", "key", "column"),
    [
        (
            lambda raw: raw["dataset"]["features"]["numeric"].append("salary_band"),
            "dataset.features.numeric",
            "salary_band",
        ),
        (
            lambda raw: raw["dataset"]["features"]["categorical"].append("colour"),
            "dataset.features.categorical",
            "colour",
        ),
        (lambda raw: raw["dataset"].update(target="default_flag"), "dataset.target", "default_flag"),
        (lambda raw: raw["dataset"].update(time_column="applied_at"), "dataset.time_column", "applied_at"),
        (lambda raw: raw["dataset"].update(id_column="application_id"), "dataset.id_column", "application_id"),
        (lambda raw: raw["gate"]["slices"]["categorical"].append("state"), "gate.slices.categorical", "state"),
    ],
)
def test_every_column_the_settings_name_must_be_declared_by_the_contract(tmp_path: Path, change, key, column):
    params = _project(tmp_path, change)
    with pytest.raises(SettingsError) as caught:
        load_settings(params)
    message = str(caught.value)
    assert f"key '{key}': column '{column}' is not declared by the contract data_contracts/loans/" in message
    assert "\n" not in message


def test_a_contract_version_that_does_not_exist_names_the_key(tmp_path: Path):
    params = _project(tmp_path, lambda raw: raw["contract"].update(version=99))
    with pytest.raises(SettingsError, match=r"key 'contract\.version': the contract data_contracts/loans/v99\.json"):
        load_settings(params)


@pytest.mark.parametrize(
    ("task", "metric"), [("regression", "roc_auc"), ("binary", "rmse"), ("multiclass", "roc_auc"), ("binary", "r2")]
)
def test_the_primary_metric_must_fit_the_task(task, metric):
    raw = _raw()
    raw["dataset"].update(task=task, labels=_LABELS[task])
    raw["gate"].update(primary_metric=metric, floor=0.5)
    with pytest.raises(SettingsError, match=rf"key 'gate\.primary_metric': {metric} does not fit dataset\.task {task}"):
        parse_settings(raw, "params.yaml")


def test_old_params_are_binary_with_classes_0_and_1():
    from retrain.domain.task import task_for

    settings = parse_settings(_raw(), "params.yaml")
    assert settings.dataset.task == "binary" and settings.dataset.labels is None
    assert settings.gate.guardrails.max_bias == 0.1
    task = task_for(settings.dataset)
    assert (task.classes, task.positive) == ((0, 1), 1)


@pytest.mark.parametrize(
    ("task", "labels", "message"),
    [
        ("regression", {"classes": [0, 1]}, "a regression target has no classes"),
        ("binary", {"classes": [0, 1, 2], "positive": 1}, "a binary target has two classes"),
        ("binary", {"classes": ["no", "yes"]}, "labels.positive: name the class"),
        ("binary", {"classes": ["no", "yes"], "positive": "maybe"}, "'maybe' is not one of the classes"),
        ("multiclass", None, "a multiclass target needs dataset.labels.classes"),
        ("multiclass", {"classes": [1, 2, 3], "positive": 1}, "only a binary target has a positive class"),
        ("multiclass", {"classes": [1, "1.0", 3]}, "classes must be distinct"),
    ],
)
def test_labels_must_fit_the_task_and_the_message_names_the_key(task, labels, message):
    raw = _raw()
    raw["dataset"].update(task=task, labels=labels)
    raw["gate"].update(primary_metric={"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[task])
    with pytest.raises(SettingsError, match=r"key 'dataset(\.labels)?'") as error:
        parse_settings(raw, "params.yaml")
    assert message in str(error.value)
