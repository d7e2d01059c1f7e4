"""Debian packages the stack (nginx) and its browser test (chromium) install when missing.

Two installs can run at once (the stack fixture and the browser test sit on different pytest
workers; an operator may run apt by hand): apt-get then fails at once on dpkg's lock. Waiting for
the lock (``DPkg::Lock::Timeout``, apt >= 1.9) turns that race into a queue; a stale package index
gets one ``apt-get update`` and a second try.
"""

from __future__ import annotations

import os
import subprocess

LOCK_WAIT_SECONDS = 600  # a chromium install on a slow mirror takes minutes; a wedged lock must not hang CI forever


def apt_get(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``apt-get -o DPkg::Lock::Timeout=… arguments``: non-interactive, waiting for dpkg's lock."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-o", f"DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def apt_install(*packages: str) -> subprocess.CompletedProcess[str]:
    """Install ``packages``; on failure refresh the index once and retry (what a person would do)."""
    install = ("install", "-y", "-qq", *packages)
    done = apt_get(*install)
    if done.returncode != 0:
        apt_get("update", "-qq")
        done = apt_get(*install)
    return done


def main(packages: list[str]) -> int:
    """What ``.ci/run`` calls with package names: CI installs the stack's and the browser test's
    packages while lint and type checks run. Never fails the caller: a test that still misses its
    package installs it itself and reports what went wrong."""
    if not packages or os.geteuid() != 0:
        return 0
    done = apt_install(*packages)
    if done.returncode != 0:
        print(f"apt-get install {' '.join(packages)} failed (the tests will retry): {done.stderr.strip()[-300:]}")
    return 0
