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
    assert settings.contract.relative_path == "data_contracts/loans/v2.json"
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
