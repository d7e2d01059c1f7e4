"""`retrain contract release` records the hash the checks compare; the check says how it is computed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.adapters.contracts import ContractError, check_released, contract_hash, release_contract
from retrain.adapters.workspace import render_params, template_dir

SUITE = {
    "name": "toy",
    "meta": {"contract_version": 1},
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}, "meta": {"tier": "row"}}
    ],
}


def _contracts(tmp_path: Path, suite: dict[str, Any] = SUITE) -> Path:
    (tmp_path / "toy").mkdir(exist_ok=True)
    (tmp_path / "toy" / "v1.json").write_text(json.dumps(suite, indent=4))
    return tmp_path


def test_release_records_the_hash_the_check_compares(tmp_path: Path):
    contracts = _contracts(tmp_path)
    digest = release_contract(contracts, "toy", 1)
    assert digest == contract_hash(contracts / "toy" / "v1.json")
    assert json.loads((contracts / "RELEASED.json").read_text()) == {"toy/v1.json": digest}
    check_released(contracts, "toy", 1)
    assert release_contract(contracts, "toy", 1) == digest  # releasing the same content again: no change


def test_a_project_without_released_json_is_not_checked(tmp_path: Path):
    check_released(_contracts(tmp_path), "toy", 1)


def test_an_unreleased_version_is_refused_naming_the_command(tmp_path: Path):
    contracts = _contracts(tmp_path)
    (contracts / "RELEASED.json").write_text("{}")
    with pytest.raises(ContractError, match=r"not released.*`retrain contract release toy 1`"):
        check_released(contracts, "toy", 1)


def test_a_hash_computed_from_the_file_bytes_is_refused_with_the_rule(tmp_path: Path):
    contracts = _contracts(tmp_path)
    by_hand = hashlib.sha256((contracts / "toy" / "v1.json").read_bytes()).hexdigest()
    (contracts / "RELEASED.json").write_text(json.dumps({"toy/v1.json": by_hand}))
    with pytest.raises(ContractError) as refused:
        check_released(contracts, "toy", 1)
    message = str(refused.value)
    assert "canonical JSON" in message and "sha256sum" in message
    assert "`retrain contract release toy 1 --replace`" in message
    with pytest.raises(ContractError, match="never edited"):
        release_contract(contracts, "toy", 1)
    release_contract(contracts, "toy", 1, replace=True)
    check_released(contracts, "toy", 1)


def test_an_edited_release_is_refused(tmp_path: Path):
    contracts = _contracts(tmp_path)
    release_contract(contracts, "toy", 1)
    _contracts(tmp_path, {**SUITE, "expectations": []})
    with pytest.raises(ContractError, match="does not match its release"):
        check_released(contracts, "toy", 1)


def test_params_keep_the_template_comments_and_values():
    template = (template_dir() / "params.yaml").read_text()
    params = yaml.safe_load(template)
    params["drift"]["min_rows"] = 168
    rendered = render_params(params, template, {("drift", "min_rows"): "# set from the sample"})
    assert yaml.safe_load(rendered) == params
    assert "  min_rows: 168  # set from the sample" in rendered
    assert "# newest days: never used for training nor early stopping" in rendered  # the template's own
    assert rendered.startswith("# Every knob of Retrain.")
