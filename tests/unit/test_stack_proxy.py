"""The people's Prefect allowlist (nginx ``map``: first matching regex wins), decided as nginx does.

The live proof is tests/stack/test_least_privilege.py; this one runs in milliseconds and names the
routes of the installed Prefect that people must reach (the UI's) and must not."""

from __future__ import annotations

import re

import pytest

from retrain.stack import PEOPLE_ALLOWLIST, proxy_config_text

RUN = "0b6c1f5e-8a1b-4c2d-9e3f-1a2b3c4d5e6f"


def _people_may(method: str, path: str) -> bool:
    for pattern, allowed in PEOPLE_ALLOWLIST:
        if re.search(pattern, f"{method} {path}"):
            return allowed
    return False


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/version"),  # the UI's login check
        ("GET", "/api/admin/settings"),  # the UI reads it; Prefect masks secret settings
        ("GET", "/api/csrf-token"),
        ("GET", f"/api/flow_runs/{RUN}"),
        ("POST", "/api/flow_runs/filter"),
        ("POST", "/api/flow_runs/paginate"),
        ("POST", "/api/artifacts/filter"),
        ("POST", "/api/logs/filter"),
        ("POST", "/api/events/filter"),
        ("POST", "/api/ui/schemas/validate"),
        ("POST", "/api/ui/flow_runs/history"),
        ("GET", "/api/deployments/name/training/nightly"),
        ("GET", f"/api/flow_runs/{RUN}/input/paused-1-schema"),  # the gate's form
        ("GET", f"/api/flow_runs/{RUN}/input/paused-1-description"),
        ("GET", f"/api/flow_runs/{RUN}/input/retrain-receipt-paused-1"),
        ("GET", f"/api/flow_runs/{RUN}/input/retrain-approval-subject"),  # what `retrain approve/sign` sign
        ("GET", f"/api/flow_runs/{RUN}/input/retrain-pending-review"),  # the inbox's line (`retrain pending`)
        ("POST", f"/api/deployments/{RUN}/create_flow_run"),
        ("POST", f"/api/flow_runs/{RUN}/resume"),
    ],
)
def test_people_may_watch_start_runs_and_answer_a_gate(method: str, path: str):
    assert _people_may(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/block_documents/filter"),
        ("GET", f"/api/block_documents/{RUN}"),
        ("GET", "/api/block_types/slug/secret/block_documents/name/x"),
        ("POST", "/api/variables/filter"),
        ("GET", "/api/variables/name/x"),
        ("POST", f"/api/flow_runs/{RUN}/input/filter"),
        ("GET", f"/api/flow_runs/{RUN}/input/paused-1-response"),
        ("POST", f"/api/flow_runs/{RUN}/input"),
        ("POST", "/api/deployments/"),
        ("PATCH", f"/api/deployments/{RUN}"),
        ("DELETE", f"/api/deployments/{RUN}"),
        ("POST", f"/api/deployments/{RUN}/create_flow_run/bulk"),
        ("POST", "/api/deployments/get_scheduled_flow_runs"),
        ("POST", "/api/work_pools/"),
        ("PATCH", "/api/work_pools/retrain-process"),
        ("POST", "/api/work_pools/retrain-process/get_scheduled_flow_runs"),
        ("POST", "/api/work_pools/retrain-process/workers/heartbeat"),
        ("POST", "/api/automations/"),
        ("POST", "/api/variables/"),
        ("POST", f"/api/flow_runs/{RUN}/set_state"),
        ("POST", "/api/flow_runs/"),
        ("POST", "/api/logs/"),
        ("POST", "/api/events"),
        ("DELETE", "/api/admin/storage"),
        ("PUT", "/api/admin/storage"),
    ],
)
def test_people_may_not_read_secrets_or_change_anything_else(method: str, path: str):
    assert not _people_may(method, path)


def test_the_proxy_sends_the_server_auth_upstream_only_after_the_person_logged_in():
    text = proxy_config_text("127.0.0.1:1", "http://127.0.0.1:2", "U0VSVkVS", "/x/people.map", "/x")
    assert "include /x/people.map;" in text.split("map $http_authorization $person {", 1)[1].split("}", 1)[0]
    api = text.split("location /api/ {", 1)[1].split("location = /api/health", 1)[0]
    assert api.index('if ($person = "")') < api.index("proxy_set_header Authorization")
    assert "WWW-Authenticate" not in text and "auth_basic" not in text  # a browser must not be challenged
    assert 'proxy_set_header Authorization "Basic U0VSVkVS";' in api
    assert text.count("U0VSVkVS") == 1  # never on the UI's public paths
    assert "listen 127.0.0.1:1;" in text
