"""apt-get waits for dpkg's lock and retries once after an index refresh (a fake apt-get on PATH)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from retrain.stack.packages import LOCK_WAIT_SECONDS, apt_install

FAKE_APT_GET = """#!/bin/sh
echo "$@" >> "{log}"
case " $* " in
  *" update "*) touch "{refreshed}"; exit 0 ;;
esac
if [ -e "{refreshed}" ] || [ "{needs_refresh}" = no ]; then exit 0; fi
echo "E: Unable to locate package $6" >&2
exit 100
"""


def _fake_apt_get(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, needs_refresh: bool) -> Path:
    log = tmp_path / "calls.log"
    script = tmp_path / "bin" / "apt-get"
    script.parent.mkdir()
    script.write_text(
        FAKE_APT_GET.format(log=log, refreshed=tmp_path / "refreshed", needs_refresh="yes" if needs_refresh else "no")
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def test_every_apt_get_call_waits_for_the_dpkg_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_apt_get(tmp_path, monkeypatch, needs_refresh=False)
    assert apt_install("nginx-light").returncode == 0
    calls = log.read_text().splitlines()
    assert calls == [f"-o DPkg::Lock::Timeout={LOCK_WAIT_SECONDS} install -y -qq nginx-light"]


def test_a_stale_index_is_refreshed_once_then_the_install_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _fake_apt_get(tmp_path, monkeypatch, needs_refresh=True)
    assert apt_install("chromium").returncode == 0
    verbs = [line.split()[2] for line in log.read_text().splitlines()]
    assert verbs == ["install", "update", "install"]
    assert all(line.startswith(f"-o DPkg::Lock::Timeout={LOCK_WAIT_SECONDS} ") for line in log.read_text().splitlines())
