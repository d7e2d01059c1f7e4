"""The bad-input corpus: each file gets a clear error from `retrain validate` and `retrain ingest`,
an exit code that says what happened (0 accepted, 1 refused, 2 unreadable), and stored data stays
untouched. Files are generated here from the demo generator, so the corpus is exact and small."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrain.cli import app
from retrain.domain.demo_data import generate_day
from tests.conftest import REPO_ROOT, reviewed_project

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 1, 3)
CONTRACT_VERSION = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["contract"]["version"]


def _clean(rows: int = 300) -> pd.DataFrame:
    return generate_day(DAY, rows, 5)


def _parquet(frame: pd.DataFrame) -> Callable[[Path], object]:
    return lambda path: frame.to_parquet(path, index=False)


def _csv_text(text: str, encoding: str = "utf-8") -> Callable[[Path], object]:
    return lambda path: path.write_bytes(text.encode(encoding))


def _truncated(path: Path) -> None:
    _clean().to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


HEADER = ",".join(_clean(1).columns)

# name -> (file name, writer, expected exit code, words the message must contain)
CORPUS: dict[str, tuple[str, Callable[[Path], object] | None, int, tuple[str, ...]]] = {
    "missing file": ("absent.parquet", None, 2, ("does not exist",)),
    "empty file": ("empty.csv", _csv_text(""), 2, ("empty (0 bytes)",)),
    "header only": ("header.csv", _csv_text(HEADER + "\n"), 1, ("expect_table_row_count_to_be_between",)),
    "missing column": (
        "nocol.parquet",
        _parquet(_clean().drop(columns=["credit_score"])),
        1,
        ("expect_table_columns_to_match_set", "missing: credit_score"),
    ),
    "wrong dtype": (
        "dtype.parquet",
        _parquet(_clean().assign(age=lambda f: f["age"].astype(str))),
        1,
        ("expect_column_values_to_be_of_type", "'age'"),
    ),
    "non-UTF-8 CSV": ("latin1.csv", _csv_text("région,montant\nÎle-de-France,12\n", "latin-1"), 2, ("not UTF-8",)),
    "duplicate header": ("dup.csv", _csv_text("a,b,a\n1,2,3\n"), 2, ("duplicate column names (a)",)),
    "all-NaN column": (
        "nan.parquet",
        _parquet(_clean().assign(purpose=np.nan)),
        1,
        ("expect_column_values_to_be_of_type", "'purpose'"),
    ),
    "NaN target": (
        "nantarget.parquet",
        _parquet(_clean().assign(defaulted=np.nan)),
        1,
        ("expect_column_values_to_not_be_null", "'defaulted'"),
    ),
    "target out of domain": (
        "target2.parquet",
        _parquet(_clean().assign(defaulted=2)),
        1,
        ("expect_column_values_to_be_in_set", "'defaulted'"),
    ),
    "corrupt Parquet": (
        "corrupt.parquet",
        lambda p: p.write_bytes(b"PAR1 this is not parquet"),
        2,
        ("not a readable Parquet file",),
    ),
    "truncated Parquet": ("truncated.parquet", _truncated, 2, ("not a readable Parquet file",)),
    "unknown file type": ("batch.xlsx", _csv_text("x"), 2, ("reads .parquet and .csv",)),
    "dated five years ahead": (
        "future.parquet",
        _parquet(_clean().assign(application_date=lambda f: f["application_date"] + pd.DateOffset(years=5))),
        1,
        ("time_not_after_now", "'application_date'"),
    ),
    "dated outside the day its name declares": (
        "loans-2026-01-04.parquet",  # DAY is 2026-01-03
        _parquet(_clean()),
        1,
        ("time_within_batch_period", "'application_date'"),
    ),
    "all-null feature": (
        "nullfeature.parquet",
        _parquet(_clean().assign(months_since_last_delinquency=np.nan)),
        1,
        ("column_not_entirely_null", "'months_since_last_delinquency'", "300 of 300 rows", "none stored"),
    ),
}


@pytest.fixture
def project(tmp_path: Path, services: Path) -> Path:
    return reviewed_project(tmp_path / "project")


def _make(case: str, directory: Path) -> Path:
    name, writer, _, _ = CORPUS[case]
    path = directory / name
    if writer is not None:
        writer(path)
    return path


def _stored(project: Path) -> list[str]:
    data = project / "data"
    return sorted(p.relative_to(project).as_posix() for p in data.rglob("*")) if data.exists() else []


@pytest.mark.parametrize("case", list(CORPUS))
def test_validate_and_ingest_explain_bad_input_and_store_nothing(case: str, project: Path, tmp_path: Path):
    path = _make(case, tmp_path)
    _, _, code, words = CORPUS[case]
    runner = CliRunner()

    validated = runner.invoke(app, ["validate", str(path), "--project", str(project)])
    assert validated.exit_code == code, validated.output
    assert all(word in validated.output for word in words), validated.output
    assert "Traceback" not in validated.output

    before = _stored(project)
    ingested = runner.invoke(app, ["ingest", str(path), "--project", str(project)])
    assert ingested.exit_code == code, ingested.output
    assert all(word in ingested.output for word in words), ingested.output
    assert _stored(project) == before  # nothing half-stored


def test_validate_json_has_the_promised_keys(project: Path, tmp_path: Path):
    frame = _clean(400)
    frame.loc[frame.index[:3], "region"] = "atlantis"
    path = tmp_path / "some-bad-rows.parquet"
    frame.to_parquet(path, index=False)
    result = CliRunner().invoke(app, ["validate", str(path), "--project", str(project), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["rows_in"], report["accepted"], report["quarantined"], report["passed"]) == (400, 397, 3, True)
    assert {"expectation": "expect_column_values_to_be_in_set", "column": "region", "count": 3}.items() <= (
        report["failures"][0].items()
    )


def test_a_file_ten_times_the_usual_size_still_validates(project: Path, tmp_path: Path):
    path = tmp_path / "big.parquet"
    generate_day(DAY, 200_000, 5).to_parquet(path, index=False)  # 10x the demo's 20,000 rows a day
    result = CliRunner().invoke(app, ["validate", str(path), "--project", str(project), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accepted"] == 200_000


def test_ingest_stores_accepted_and_quarantine_under_dvc_logs_it_and_is_idempotent(project: Path, tmp_path: Path):
    frame = _clean(500)
    frame.loc[frame.index[:4], "credit_score"] = 9_999
    path = tmp_path / "loans-2026-01-03.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()

    first = runner.invoke(app, ["ingest", str(path), "--project", str(project)])
    assert first.exit_code == 0, first.output
    assert "500 rows in, 496 accepted, 4 quarantined" in first.output
    assert len(pd.read_parquet(project / "data" / "batches" / "loans-2026-01-03.parquet")) == 496
    assert len(pd.read_parquet(project / "data" / "quarantine" / "loans-2026-01-03.parquet")) == 4
    assert (project / "data" / "batches.dvc").is_file() and (project / "data" / "quarantine.dvc").is_file()
    log = [json.loads(line) for line in (project / "data" / "batch_log.jsonl").read_text().splitlines()]
    assert (
        log[0]["accepted"] == 496 and log[0]["contract_version"] == CONTRACT_VERSION and len(log[0]["batches_md5"]) > 30
    )
    remote = Path(str(project.parent / "dvc-remote"))
    assert any((remote / "files" / "md5").rglob("*"))

    again = runner.invoke(app, ["ingest", str(path), "--project", str(project)])
    assert again.exit_code == 0 and "already ingested" in again.output
    assert len((project / "data" / "batch_log.jsonl").read_text().splitlines()) == 1


def test_an_ingested_batch_with_nothing_quarantined_is_not_judged_again_by_training(project: Path, tmp_path: Path):
    """Ingest judged the rows it stored: the training run reuses that verdict (no contract run), and
    it is the verdict a fresh validation of the stored file gives. With rows quarantined, the stored
    file is judged afresh (a batch-level expectation could judge the accepted rows differently)."""
    from retrain.adapters.environment import resolve_runtime
    from retrain.application.batches import validate_file
    from retrain.domain.settings import load_settings

    settings = load_settings(project / "params.yaml")
    cache = resolve_runtime(project_dir=project).validation_cache_dir
    clean, dirty = tmp_path / "loans-2026-01-03.csv", tmp_path / "loans-2026-01-04.csv"
    _clean(500).to_csv(clean, index=False)
    frame = _clean(500)
    frame["application_date"] = "2026-01-04"
    frame.loc[frame.index[:4], "credit_score"] = 9_999
    frame.to_csv(dirty, index=False)
    for path in (clean, dirty):
        result = CliRunner().invoke(app, ["ingest", str(path), "--project", str(project)])
        assert result.exit_code == 0, result.output

    stored = project / "data" / "batches" / "loans-2026-01-03.parquet"
    reused = validate_file(stored, settings, project, cache)
    assert reused.reused_verdict and reused.report.passed and reused.report.accepted == 500
    fresh = validate_file(stored, settings, project)
    assert fresh.report == reused.report
    pd.testing.assert_frame_equal(fresh.accepted, reused.accepted)
    judged = validate_file(project / "data" / "batches" / "loans-2026-01-04.parquet", settings, project, cache)
    assert not judged.reused_verdict and judged.report.accepted == 496


def _one_error_line(output: str) -> str:
    """What a user must see for a mistake of theirs: one line, 'error: ...', no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"gate": {"floor": 1.5}}, ("key 'gate.floor'", "outside the range of roc_auc", "[0, 1]")),
        ({"gate": {"primary_metric": "log_loss", "floor": -0.1}}, ("key 'gate.floor'", "log_loss")),
        ({"dataset": {"features": {"numeric": [], "categorical": []}}}, ("key 'dataset.features'", "at least one")),
        (
            {"dataset": {"features": {"categorical": ["home_ownership", "purpose", "salary_band"]}}},
            ("key 'dataset.features.categorical'", "'salary_band' is not declared by the contract"),
        ),
        ({"dataset": {"time_column": "applied_at"}}, ("key 'dataset.time_column'", "'applied_at'")),
    ],
    ids=["floor above ROC AUC", "negative log-loss floor", "no features", "undeclared feature", "undeclared time"],
)
def test_settings_that_cannot_work_stop_train_before_any_work(project: Path, overrides: dict, words: tuple):
    from retrain.adapters.workspace import write_params

    runner = CliRunner()
    write_params(project, {"demo": {"rows_per_day": 300, "days": 4, "first_training_days": 3}})
    assert runner.invoke(app, ["generate", "--project", str(project)]).exit_code == 0
    write_params(project, overrides)
    before = _stored(project)

    result = runner.invoke(app, ["train", "--project", str(project)])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert "params.yaml" in line and all(word in line for word in words), line
    assert _stored(project) == before  # nothing validated, stored or pushed
    assert not (project.parent / "dvc-remote").exists()


def _options_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    batch = tmp_path / f"loans-{DAY}.parquet"
    _clean().to_parquet(batch, index=False)
    (tmp_path / "a-directory").mkdir()
    return [
        (["rollback", "--reason", "   "], "--reason needs at least 3 non-blank characters"),
        (["rollback", "--reason", " x "], "--reason needs at least 3 non-blank characters"),
        (["purge", "--reason", "  "], "--reason needs at least 3 non-blank characters"),
        (["purge"], "run again with --yes"),
        (["train", "--reason", "  "], "--reason needs at least 1 non-blank character"),
        (["generate", "--days", "0"], "--days must be at least 1 (got 0)"),
        (["demo", "--rows-per-day", "-5"], "--rows-per-day must be at least 1 (got -5)"),
        (["demo", "--drift-day", "-1"], "--drift-day must be at least 0 (got -1)"),
        (["demo", "--days", "2"], "demo options: --days:"),
        (["reproduce", "latest"], "VERSION must be a registered model version, a positive whole number"),
        (["drift", str(tmp_path / "absent.parquet")], "absent.parquet does not exist"),
        (["score", str(tmp_path / "absent.parquet")], "absent.parquet does not exist"),
        (["score", str(tmp_path / "a-directory")], "is not a file"),
        (["score", str(batch), "--output", str(tmp_path / "scores.csv")], "--output"),
        (["fit", "--metrics", str(tmp_path / "a-directory")], "is a directory; it must be a file"),
    ]


def test_every_command_refuses_bad_options_in_one_line(project: Path, tmp_path: Path):
    failures = []
    for args, words in _options_cases(tmp_path):
        result = CliRunner().invoke(app, [*args, "--project", str(project)])
        lines = [line for line in result.output.splitlines() if line.strip()]
        one_line = len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
        if result.exit_code != 2 or not one_line or words not in result.output:
            failures.append(f"{' '.join(args)} -> exit {result.exit_code}: {result.output[-300:]!r}")
    assert not failures, "\n".join(failures)


def _command_paths(group: object, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every command the CLI has, sub-commands of ``stack``, ``reviewer``, ``contract`` included."""
    commands = getattr(group, "commands", {})
    found: set[str] = set()
    for name, command in commands.items():
        path = (*prefix, name)
        found |= _command_paths(command, path) if getattr(command, "commands", None) else {" ".join(path)}
    return found


def _wrong_arguments(tmp_path: Path, project: Path) -> dict[str, tuple[list[str], str]]:
    """One wrong argument per command, and words its answer must hold. A missing params.yaml is what
    a wrong --project gives; the others are each command's own mistake."""
    nowhere = ["--project", str(tmp_path / "no-project")]
    absent = str(tmp_path / "absent.parquet")
    here = ["--project", str(project)]
    return {
        "train": (["--reason", "  ", *here], "--reason needs"),
        "status": (nowhere, "settings file not found"),
        "generate": (["--days", "0", *here], "--days must be at least 1"),
        "snapshot": (nowhere, "settings file not found"),
        "fit": (["--metrics", str(tmp_path), *here], "it must be a file"),
        "validate": ([absent, *here], "absent.parquet does not exist"),
        "ingest": ([absent, *here], "absent.parquet does not exist"),
        "purge": (["--reason", " x ", *here], "--reason needs at least 3"),
        "reproduce": (["99", *nowhere], "settings file not found"),
        "history": (nowhere, "settings file not found"),
        "doctor": (nowhere, "settings file not found"),
        "rollback": (["--reason", " x ", *here], "--reason needs at least 3"),
        "drift": ([absent, *here], "absent.parquet does not exist"),
        "score": ([absent, *here], "absent.parquet does not exist"),
        "feedback": ([absent, *here], "absent.parquet does not exist"),
        "report": (nowhere, "settings file not found"),
        "decisions": (nowhere, "settings file not found"),
        "deploy": (nowhere, "settings file not found"),
        "serve": (nowhere, "settings file not found"),
        "approve": (["0000", "--reviewer", "nobody", *here], "'nobody' is not listed in approval.reviewers"),
        "reject": (["0000", "--reviewer", "nobody", "--reason", "no", *here], "not listed in approval.reviewers"),
        "sign": (["0000", "--reviewer", "nobody", "--decision", "approve", *here], "not listed"),
        "pending": (nowhere, "settings file not found"),
        "demo": (["--days", "2"], "--days"),
        "init": ([str(tmp_path / "new"), "--data", absent, "--target", "y"], "absent.parquet"),
        "reviewer keygen": (["bad name!", *here], "a reviewer name is letters, digits"),
        "contract release": (["loans", "99", *here], "v99.json does not exist"),
        "stack up": (["--bogus"], "No such option: --bogus"),
        "stack setup": (["--bogus"], "No such option: --bogus"),
        "stack down": (["--bogus"], "No such option: --bogus"),
        "stack reset": ([], "Run again with --yes"),
        "stack status": (["--bogus"], "No such option: --bogus"),
    }


def test_every_command_answers_a_wrong_argument_in_a_few_lines_without_a_traceback(project: Path, tmp_path: Path):
    """Every command of the CLI (a new one without a case here fails this test), given a wrong
    argument: exit 1 or 2, an ``error:`` line (click's ``Error:`` for an unknown option) that says
    what was wrong, at most four lines, and no exception escaping."""
    import typer.main

    cases = _wrong_arguments(tmp_path, project)
    assert _command_paths(typer.main.get_command(app)) == set(cases)
    failures = []
    for path, (args, words) in cases.items():
        result = CliRunner().invoke(app, [*path.split(), *args])
        lines = [line for line in result.output.splitlines() if line.strip()]
        escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
        said = any(line.startswith(("error: ", "Error: ")) for line in lines) and words in result.output
        if result.exit_code not in (1, 2) or escaped or not said or len(lines) > 4 or "Traceback" in result.output:
            failures.append(f"retrain {path} {' '.join(args)} -> exit {result.exit_code}: {result.output[-400:]!r}")
    assert not failures, "\n".join(failures)
