"""The contract hash identifies a contract's rules, not its formatting: it keys trainings and evidence."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.adapters.contracts import ContractError, contract_hash, load_contract_json
from tests.conftest import REPO_ROOT

SUITE = {
    "name": "toy",
    "meta": {"contract_version": 1, "dataset": "toy"},
    "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 18, "max_value": 100}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "region", "value_set": ["north", "south"]}},
    ],
}


def _write(path: Path, data: object, **dump: object) -> Path:
    path.write_text(json.dumps(data, **dump))  # type: ignore[arg-type]
    return path


def _reversed_keys(value: object) -> object:
    """The same JSON with every object's keys in the opposite order (lists keep their order)."""
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_hash_is_sha256_of_canonical_json(tmp_path: Path):
    canonical = json.dumps(SUITE, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert contract_hash(_write(tmp_path / "a.json", SUITE)) == expected


def test_hash_is_stable_under_key_order_and_formatting(tmp_path: Path):
    plain = contract_hash(_write(tmp_path / "a.json", SUITE))
    assert contract_hash(_write(tmp_path / "b.json", _reversed_keys(SUITE), indent=4)) == plain
    assert contract_hash(_write(tmp_path / "c.json", SUITE, separators=(" , ", " : "))) == plain


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["expectations"][0]["kwargs"].update(max_value=101),
        lambda s: s["expectations"][1]["kwargs"]["value_set"].append("east"),
        lambda s: s["expectations"].reverse(),
        lambda s: s["meta"].update(contract_version=2),
    ],
)
def test_hash_changes_when_a_value_changes(tmp_path: Path, change):
    changed = json.loads(json.dumps(SUITE))
    change(changed)
    assert contract_hash(_write(tmp_path / "b.json", changed)) != contract_hash(_write(tmp_path / "a.json", SUITE))


def test_loading_a_missing_or_broken_contract_names_the_path(tmp_path: Path):
    with pytest.raises(ContractError, match=r"absent\.json does not exist"):
        load_contract_json(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ContractError, match=r"broken\.json is not valid JSON"):
        contract_hash(broken)
    with pytest.raises(ContractError, match=r"list\.json is not a great-expectations suite"):
        load_contract_json(_write(tmp_path / "list.json", [SUITE]))


def test_the_contract_helpers_never_import_great_expectations():
    """Hashing a contract (done by every training) must not pay the seconds GX takes to import."""
    code = (
        "import sys; from pathlib import Path; from retrain.adapters import contracts; "
        f"contracts.contract_hash(Path({str(REPO_ROOT / 'data_contracts/loans/v1.json')!r})); "
        "assert 'great_expectations' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
