"""Reviewers' key files: committed public keys checked at start-up, private keys 0600 outside the project."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from retrain.adapters.reviewer_keys import (
    generate_key_pair,
    load_private_key,
    load_reviewer_keys,
    public_bytes,
)
from retrain.domain.errors import ApprovalConfigError, ApprovalInputError
from retrain.domain.settings import ApprovalSettings

POLICY = ApprovalSettings(reviewers=("ada", "grace"), quorum=1, timeout_minutes=1, poll_seconds=1, keys_dir="reviewers")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


def test_keygen_writes_a_private_key_for_its_owner_only_and_a_public_key_into_the_project(tmp_path: Path):
    project = _project(tmp_path)
    private = tmp_path / "home" / "keys" / "ada.key"
    files = generate_key_pair(project, POLICY, "ada", private)
    public = files.public_path

    assert files.private_created
    assert public == project / "reviewers" / "ada.pub" and public.read_text().startswith("ssh-ed25519 ")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    key = load_private_key(private)
    generate_key_pair(project, POLICY, "grace", tmp_path / "home" / "keys" / "grace.key")
    assert load_reviewer_keys(project, POLICY)["ada"] == public_bytes(key)
    assert "PRIVATE" not in public.read_text()


@pytest.mark.faults
def test_keygen_refuses_a_private_key_inside_the_project_and_never_overwrites_one(tmp_path: Path):
    project = _project(tmp_path)
    with pytest.raises(ApprovalConfigError, match="inside the project"):
        generate_key_pair(project, POLICY, "ada", project / "ada.key")
    private = tmp_path / "ada.key"
    generate_key_pair(project, POLICY, "ada", private)
    before = private.read_bytes()
    again = generate_key_pair(project, POLICY, "ada", private)
    assert not again.private_created and private.read_bytes() == before


def test_keygen_reuses_a_reviewers_existing_key_for_a_second_project(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _project(tmp_path / "a"), _project(tmp_path / "b")
    private = tmp_path / "home" / "ada.key"
    generate_key_pair(first, POLICY, "ada", private)
    files = generate_key_pair(second, POLICY, "ada", private)
    assert not files.private_created
    assert files.public_path.read_text() == (first / "reviewers" / "ada.pub").read_text()
    generate_key_pair(second, POLICY, "grace", tmp_path / "home" / "grace.key")
    assert load_reviewer_keys(second, POLICY)["ada"] == public_bytes(load_private_key(private))


@pytest.mark.faults
def test_keygen_refuses_a_public_file_holding_another_key_and_a_readable_private_key(tmp_path: Path):
    project = _project(tmp_path)
    generate_key_pair(project, POLICY, "ada", tmp_path / "ada.key")
    public = project / "reviewers" / "ada.pub"
    committed = public.read_text()
    with pytest.raises(ApprovalConfigError, match="holds another key"):
        generate_key_pair(project, POLICY, "ada", tmp_path / "other" / "ada.key")
    assert public.read_text() == committed
    loose = tmp_path / "loose.key"
    loose.write_bytes((tmp_path / "ada.key").read_bytes())
    loose.chmod(0o644)
    with pytest.raises(ApprovalConfigError, match="readable by others"):
        generate_key_pair(project, POLICY, "grace", loose)


@pytest.mark.faults
def test_a_listed_reviewer_without_a_public_key_is_one_line_naming_who_and_where(tmp_path: Path):
    project = _project(tmp_path)
    generate_key_pair(project, POLICY, "ada", tmp_path / "ada.key")
    with pytest.raises(ApprovalConfigError) as raised:
        load_reviewer_keys(project, POLICY)
    message = str(raised.value)
    assert "\n" not in message and "grace" in message and str(project / "reviewers" / "grace.pub") in message
    assert "retrain reviewer keygen" in message


@pytest.mark.faults
@pytest.mark.parametrize(
    "content", ["", "not a key", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"]
)
def test_an_unparseable_public_key_stops_the_start_up_check(tmp_path: Path, content: str):
    project = _project(tmp_path)
    generate_key_pair(project, POLICY, "ada", tmp_path / "ada.key")
    (project / "reviewers" / "grace.pub").write_text(content)
    with pytest.raises(ApprovalConfigError, match=r"reviewer 'grace': .*grace\.pub: .*Ed25519 public key"):
        load_reviewer_keys(project, POLICY)


@pytest.mark.faults
def test_keys_from_outside_the_project_are_never_trusted(tmp_path: Path):
    project = _project(tmp_path)
    outside = tmp_path / "elsewhere"
    generate_key_pair(outside, POLICY, "ada", tmp_path / "ada.key")
    generate_key_pair(outside, POLICY, "grace", tmp_path / "grace.key")
    (project / "reviewers").symlink_to(outside / "reviewers")  # the whole directory elsewhere
    with pytest.raises(ApprovalConfigError, match="leads outside the project"):
        load_reviewer_keys(project, POLICY)
    (project / "reviewers").unlink()
    (project / "reviewers").mkdir()
    (project / "reviewers" / "ada.pub").symlink_to(outside / "reviewers" / "ada.pub")  # one file elsewhere
    (project / "reviewers" / "grace.pub").write_text((outside / "reviewers" / "grace.pub").read_text())
    with pytest.raises(ApprovalConfigError, match="leads outside"):
        load_reviewer_keys(project, POLICY)


@pytest.mark.faults
def test_a_private_key_others_can_read_is_refused_and_errors_never_show_key_material(tmp_path: Path):
    project = _project(tmp_path)
    private = tmp_path / "ada.key"
    generate_key_pair(project, POLICY, "ada", private)
    secret_text = private.read_text()
    private.chmod(0o644)
    with pytest.raises(ApprovalInputError, match="readable by others") as raised:
        load_private_key(private)
    assert secret_text.splitlines()[1] not in str(raised.value)
    broken = tmp_path / "broken.key"
    broken.write_text(secret_text.replace("A", "B", 5))
    broken.chmod(0o600)
    with pytest.raises(ApprovalInputError, match="not an unencrypted Ed25519 private key") as raised:
        load_private_key(broken)
    assert secret_text.splitlines()[1] not in str(raised.value)
    with pytest.raises(ApprovalInputError, match="no private key at"):
        load_private_key(tmp_path / "missing.key")
