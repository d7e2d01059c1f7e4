"""A released contract is never edited in place: a change needs a new version (and a CHANGELOG entry)."""

from __future__ import annotations

import json

import pytest

from retrain.adapters.contracts import contract_hash
from tests.conftest import REPO_ROOT

CONTRACTS = REPO_ROOT / "data_contracts"
RELEASED = json.loads((CONTRACTS / "RELEASED.json").read_text())
FILES = sorted(p.relative_to(CONTRACTS).as_posix() for p in CONTRACTS.glob("*/v*.json"))


@pytest.mark.parametrize("name", FILES)
def test_every_contract_version_is_released_and_unchanged(name):
    assert name in RELEASED, (
        f"{name} is not listed in data_contracts/RELEASED.json: release it deliberately (retrain contract release)"
    )
    assert contract_hash(CONTRACTS / name) == RELEASED[name], (
        f"{name} was edited after its release: copy it to a new version instead and add a CHANGELOG entry"
    )


@pytest.mark.parametrize("dataset", sorted({name.split("/")[0] for name in FILES}))
def test_every_version_has_a_changelog_entry(dataset):
    changelog = (CONTRACTS / dataset / "CHANGELOG.md").read_text()
    versions = [name.split("/")[1].removesuffix(".json") for name in FILES if name.startswith(f"{dataset}/")]
    assert all(f"## {version} " in changelog for version in versions)


def test_every_expectation_declares_its_tier_from_v2_on():
    for name in FILES:
        suite = json.loads((CONTRACTS / name).read_text())
        if suite["meta"]["contract_version"] >= 2:
            assert {e["meta"]["tier"] for e in suite["expectations"]} <= {"batch", "row"}
