"""The reviewer's path in a real browser (Playwright driving Debian's chromium, headless, background
networking off): Prefect UI login through the people's proxy with the reviewer's own NAME:PASSWORD
→ the paused training run → its gate report → the approval form → submitted; then the MLflow UI
shows alias ``champion`` on the new version. Screenshots are kept under
``.retrain/test-outputs/browser/``."""

from __future__ import annotations

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

    person = _mlflow_as(live_stack, "demo-reviewer", live_stack.keys["mlflow_people"]["demo-reviewer"], monkeypatch)
    champion = person.get_model_version_by_alias(MODEL, "champion")
    assert champion.tags["retrain.flow_run_id"] == run_id
    mlflow = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        http_credentials={"username": "demo-reviewer", "password": live_stack.keys["mlflow_people"]["demo-reviewer"]},
    ).new_page()
    mlflow.goto(f"{live_stack.mlflow_url}/#/models/{MODEL}")
    row = mlflow.get_by_role("row").filter(has_text=f"Version {champion.version}")
    row.get_by_text("champion").first.wait_for()
    mlflow.screenshot(path=str(SCREENSHOTS / "4-mlflow-champion.png"), full_page=True)
    assert httpx.get(f"{live_stack.mlflow_url}/health", timeout=10).status_code == 200


def _board() -> Any:
    """A dashboard with every section filled: three versions, traffic, drift, decisions, resources."""
    import datetime as dt

    from retrain.domain import dashboard as d

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def at(hours: float) -> dt.datetime:
        return start + dt.timedelta(hours=hours)

    return d.Dashboard(
        model="retrain-loans",
        primary_metric="roc_auc",
        generated_at=at(300),
        versions=(
            d.VersionRow("1", at(0), 0.73, "promoted", ("previous-champion",)),
            d.VersionRow("2", at(200), 0.77, "promoted", ("champion",)),
            d.VersionRow("3", at(260), 0.76, "candidate", ("candidate",)),
        ),
        realized=(d.RealizedPoint(at(100), "1", 0.71, 20000, "scoring-day-7"),),
        drift=tuple(
            d.DriftPoint(at(24 * i), f"day-{i}", 0.1 * i, "retrain" if i == 3 else "none", "-", "") for i in range(5)
        ),
        timeline=(d.TimelineEvent(at(0), "promotion", "#1: first champion"),),
        durations=tuple(d.RunDuration(at(24 * i), "scoring", f"run-{i}", 3.0 + i) for i in range(4)),
        resources=(d.ResourceTrace("2", (0.0, 1.0, 2.0), (90.0, 95.0, 60.0), (500.0, 620.0, 610.0)),),
    )


def test_the_dashboard_page_shows_every_plot_in_chromium(browser: Any, tmp_path: Path):
    from retrain.adapters.plots import dashboard_figures
    from retrain.domain.dashboard import FIGURES, render_html

    board = _board()
    path = tmp_path / "dashboard.html"
    path.write_text(render_html(board, dashboard_figures(board)), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(path.as_uri())
        shown = page.eval_on_selector_all(
            "img.plot", "images => images.map(i => [i.dataset.plot, i.complete && i.naturalWidth > 0])"
        )
        assert shown == [[key, True] for key, _ in FIGURES]
        assert page.locator("h1").inner_text() == "Retrain: retrain-loans"
        assert "champion: v2" in page.locator("p.sub").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    finally:
        page.close()
