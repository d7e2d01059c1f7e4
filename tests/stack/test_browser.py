"""The reviewer's path in a real browser (Playwright driving Debian's chromium, headless, background
networking off): Prefect UI login through the people's proxy with the reviewer's own NAME:PASSWORD
→ the paused training run → its gate report → the approval form → submitted; then the MLflow UI
shows alias ``champion`` on the new version. Screenshots are kept under
``.retrain/test-outputs/browser/``; with ``RETRAIN_SCREENSHOTS_DIR`` set, the README's three (the runs
list with the run's named state, the gate report, the champion's version page in MLflow) are written
there too, at 1280x800: ``RETRAIN_SCREENSHOTS_DIR=$PWD/docs/images pytest tests/stack/test_browser.py``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain.cli.demo_run import write_demo_batches
from retrain.domain.settings import load_settings
from retrain.stack.packages import apt_install
from tests.conftest import REPO_ROOT, reviewed_project
from tests.stack.conftest import LiveStack
from tests.stack.test_live_stack import SMALL, _api, _mlflow_as, _wait_state, signature_for, start_training

pytestmark = pytest.mark.stack

MODEL = "retrain-loans-browser"
SCREENSHOTS = REPO_ROOT / ".retrain" / "test-outputs" / "browser"
# The README's screenshots: written only when this names a directory (docs/images), each at one size.
DOC_SCREENSHOTS = "RETRAIN_SCREENSHOTS_DIR"
DOC_VIEWPORT = {"width": 1280, "height": 800}
# No outside connections exist here: Chromium must not try any (the machine refuses them, many at a time).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (never a browser Playwright downloads)."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("no chromium and no apt-get to install Debian's chromium")
    done = apt_install("chromium")
    assert done.returncode == 0, f"apt-get install chromium failed: {done.stderr[-2000:]}"
    found = shutil.which("chromium")
    assert found, "chromium is not on PATH after apt-get install"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def _doc_screenshot(page: Any, name: str) -> None:
    """``NAME.png`` in ``$RETRAIN_SCREENSHOTS_DIR`` when it is set: what the page shows in a 1280x800
    window (not the whole page), the page's own size restored afterwards."""
    target = os.environ.get(DOC_SCREENSHOTS)
    if not target:
        return
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    page.set_viewport_size(DOC_VIEWPORT)
    try:
        page.screenshot(path=str(directory / f"{name}.png"), animations="disabled")
    finally:
        if before:
            page.set_viewport_size(before)


def _choose(page: Any, select: Any, value: str) -> None:
    """Prefect's select opens on ArrowDown (a click alone does not open it in headless chromium)."""
    select.locator("button").first.focus()
    page.keyboard.press("ArrowDown")
    page.get_by_role("option", name=value, exact=True).click()


def test_a_reviewer_approves_in_the_prefect_ui_and_sees_the_champion_in_mlflow(
    live_stack: LiveStack, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    project = reviewed_project(tmp_path / "project", {**SMALL, **live_stack.onboard_model(MODEL)})
    settings = load_settings(project / "params.yaml")
    write_demo_batches(project / settings.dataset.batches, settings, 7)
    run_id = start_training(live_stack, project, triggered_by="ada")
    comment = "read the gate report in the browser: slices and guardrails fine"
    with _api(live_stack) as api:
        _wait_state(api, run_id, {"PAUSED"})
        signature = signature_for(api, run_id, "approve", comment)  # what `retrain sign` prints the reviewer
    ui = live_stack.people_url.removesuffix("/api")  # people's entrance: the proxy, with their own login

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{ui}/login")
    page.locator("input").first.fill(live_stack.person("demo-reviewer")["PREFECT_API_AUTH_STRING"])
    page.get_by_role("button", name="Login").click()
    page.wait_for_url(lambda url: "/login" not in url)

    page.goto(f"{ui}/runs/flow-run/{run_id}")
    page.get_by_text("Paused", exact=True).first.wait_for()
    page.get_by_text("Waiting for reviewers").first.wait_for()  # the run's own log says what it waits for
    page.screenshot(path=str(SCREENSHOTS / "1-paused-run.png"))

    page.get_by_text("Artifacts", exact=True).click()
    page.get_by_text("gate-report").first.click()
    page.get_by_text("AWAITING REVIEW").first.wait_for()
    assert page.get_by_text("Slices", exact=True).count() >= 1
    page.get_by_text(f"retrain sign {run_id}").first.wait_for()  # the one command that makes the signature
    page.screenshot(path=str(SCREENSHOTS / "2-gate-report.png"), full_page=True)
    _doc_screenshot(page, "gate-report")

    page.goto(f"{ui}/runs/flow-run/{run_id}")
    page.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("AWAITING REVIEW").first.wait_for()  # the report is shown above the form
    selects = dialog.locator(".p-select")
    _choose(page, selects.nth(0), "approve")
    _choose(page, selects.nth(1), "demo-reviewer")
    fields = dialog.locator("textarea")
    fields.nth(0).fill(comment)
    fields.nth(1).fill(signature)
    page.screenshot(path=str(SCREENSHOTS / "3-approval-form.png"))
    dialog.get_by_role("button", name="Submit").click()
    with _api(live_stack) as api:
        _wait_state(api, run_id, {"COMPLETED"})
        ballots = api.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["approval-ballots"]}}},
        ).raise_for_status()
        assert "approve by 'demo-reviewer' recorded" in ballots.json()[-1]["data"]
    # the runs list names how the run ended (a state named for its decision; its type stays Completed)
    page.goto(f"{ui}/runs")
    page.get_by_text("Promoted", exact=True).first.wait_for()
    page.screenshot(path=str(SCREENSHOTS / "4-runs-promoted.png"))
    _doc_screenshot(page, "prefect-runs")

    person = _mlflow_as(live_stack, "demo-reviewer", live_stack.keys["mlflow_people"]["demo-reviewer"], monkeypatch)
    champion = person.get_model_version_by_alias(MODEL, "champion")
    assert person.get_run(str(champion.run_id)).data.tags["retrain.flow_run_id"] == run_id
    assert champion.tags["retrain.gate.decision"] == "promoted" and len(champion.tags) <= 5
    mlflow = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        http_credentials={"username": "demo-reviewer", "password": live_stack.keys["mlflow_people"]["demo-reviewer"]},
    ).new_page()
    mlflow.goto(f"{live_stack.mlflow_url}/#/models/{MODEL}")
    row = mlflow.get_by_role("row").filter(has_text=f"Version {champion.version}")
    row.get_by_text("champion").first.wait_for()
    mlflow.screenshot(path=str(SCREENSHOTS / "5-mlflow-champion.png"), full_page=True)
    if os.environ.get(DOC_SCREENSHOTS):  # the version's own page: its alias, tags and the decision's description
        assistant = mlflow.get_by_role("button", name="Close", exact=True)  # the panel MLflow opens on a first visit
        if assistant.count():
            assistant.first.click()
        mlflow.goto(f"{live_stack.mlflow_url}/#/models/{MODEL}/versions/{champion.version}")
        mlflow.get_by_text("champion").first.wait_for()
        _doc_screenshot(mlflow, "mlflow-version")
    assert httpx.get(f"{live_stack.mlflow_url}/health", timeout=10).status_code == 200

    # the dashboard of this very project, built by `retrain report` with the worker's access (it logs
    # the page to MLflow), read by the reviewer in the same browser: the real run, not a made-up page
    dashboard = _report_as_the_worker(live_stack, project, tmp_path / "dashboard.html")
    board = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        board.goto(dashboard.as_uri())
        shown = board.eval_on_selector_all(
            "img.plot", "images => images.map(i => [i.dataset.plot, i.complete && i.naturalWidth > 0])"
        )
        assert ["metrics", True] in shown and ["resources", True] in shown and all(ok for _, ok in shown), shown
        assert board.locator("h1").inner_text() == f"Retrain: {MODEL}"
        assert f"champion: v{champion.version}" in board.locator("p.sub").inner_text()
        assert board.get_by_text("promotion", exact=True).count() >= 1  # the approval above, on the timeline
        board.screenshot(path=str(SCREENSHOTS / "6-dashboard.png"), full_page=True)
    finally:
        board.close()


def _report_as_the_worker(live_stack: LiveStack, project: Path, output: Path) -> Path:
    """`retrain report --output OUTPUT` in the worker's environment (MLflow EDIT on the monitoring run)."""
    import json
    import os
    import subprocess
    import sys

    from retrain.stack import StackSecrets, stack_config_at, worker_env

    config = stack_config_at(live_stack.home.parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(worker_env(config, StackSecrets.model_validate(live_stack.keys)))
    done = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "report", "--project", str(project), "--output", str(output), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    written = json.loads(done.stdout)
    assert written["versions"] >= 1 and "metrics" in written["figures"]
    return output
