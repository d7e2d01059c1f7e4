"""README.md and docs/*.md (and infra/, benchmarks/ READMEs) show only what works.

*Parsed* here, cheaply (no flow runs, no services): every shell line of a fenced ``bash``/``sh``/
``console`` block (or one without a language) that runs ``retrain``, ``.venv/bin/retrain`` or
``uv run retrain`` is resolved to its command in the real typer app, and its options and arguments
are parsed by click's ``make_context`` with placeholders (RUN_ID, NAME, FILE…) replaced by plausible
values; every ``make X`` names a target of the Makefile. Inline code such as ``retrain drift`` must
name a real command too. Every relative link (and image) points to an existing file and, for
``#anchor``, to a heading of it (GitHub's slugs). The README's command table lists every command and
sub-command of the app, and its first sections are the quickstart.

*Executed* elsewhere: the quickstart's own commands run for real in
``tests/integration/test_cli_lifecycle.py::test_demo_then_status_shows_champion_with_metrics_md5_and_contract``
(``demo``, then ``status``, ``history``, ``pending`` and ``report`` on what the demo left; marked slow,
in ``make test-all``), and a test here checks that it runs each of them.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from retrain.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
# The README, the docs, and the other READMEs that point into them
DOCUMENTS = [ROOT / "README.md", *DOCS, ROOT / "infra" / "README.md", ROOT / "benchmarks" / "README.md"]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
OPERATORS = {";", "&&", "||", "|", "&"}
# What a placeholder in a shown command stands for: a value the command would be given.
PLACEHOLDERS = {
    "RUN_ID": "0c2d6f1e-5b7a-4f0e-9d3c-2a1b8e7f6a5d",
    "NAME": "alice",
    "VERSION": "2",
    "FILE": "batch.csv",
    "PATH": "keys/alice.key",
    "TEXT": "a reason",
    "DIR": "my-project",
    "COLUMN": "income",
    "$f": "batch.csv",
}
RETRAIN = re.compile(r"^(?:\.venv/bin/retrain|retrain)$")
# A line that runs retrain or make somewhere (after an operator, `do`, or variable assignments); other
# lines of a block without a language may be prose (docs/layout.md) and are not read as shell.
RUNS_A_COMMAND = re.compile(
    r"(?:^|[;&|]\s*|\bdo\s+)(?:[A-Za-z_]\w*=\S*\s+)*(?:\.venv/bin/retrain|uv run retrain|retrain|make)(?:\s|$)"
)


@functools.cache
def cli() -> Any:
    """The click command behind ``retrain`` (built once: typer builds it anew on every call)."""
    return typer.main.get_command(app)


@dataclass(frozen=True)
class Shown:
    """One line of a document: where it is and what it says."""

    document: Path
    number: int
    text: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.number}: {self.text.strip()}"


def fenced_shell_lines(document: Path) -> list[Shown]:
    """Lines of the fenced shell blocks, heredoc bodies left out (they are another language)."""
    found: list[Shown] = []
    fence: str | None = None
    language = ""
    heredoc: str | None = None
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if fence is None:
            opened = re.match(r"^(```+|~~~+)\s*([\w-]*)", stripped)
            if opened:
                fence, language = opened.group(1), opened.group(2).lower()
            continue
        if stripped.startswith(fence) and stripped.strip("`~") == "":
            fence = None
            continue
        if language not in SHELL_LANGUAGES:
            continue
        if heredoc is not None:
            if stripped == heredoc:
                heredoc = None
            continue
        started = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", stripped)
        if started:
            heredoc = started.group(1)
        if RUNS_A_COMMAND.search(stripped.removeprefix("$ ")):
            found.append(Shown(document, number, line))
    return found


def commands_of(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ; && || | &), comments and assignments left out."""
    lexer = shlex.shlex(line.strip().removeprefix("$ "), posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    simple = []
    for words in commands:
        start = 0
        while start < len(words) and (
            re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[start]) or words[start] in {"do", "then", "else"}
        ):
            start += 1
        if words[start:]:
            simple.append(words[start:])
    return simple


def retrain_arguments(words: list[str]) -> list[str] | None:
    """The arguments after the ``retrain`` executable, or None when the command is not retrain."""
    if words and RETRAIN.match(words[0]):
        return words[1:]
    if words[:3] == ["uv", "run", "retrain"]:
        return words[3:]
    return None


def check_retrain(arguments: list[str]) -> str | None:
    """None when ``retrain ARGUMENTS`` names a command whose options and arguments parse, else why not."""
    command: Any = cli()
    path = ["retrain"]
    # a placeholder becomes a value; an optional part shown in brackets ([--json]) is given
    rest = [PLACEHOLDERS.get(word, word) for word in (re.sub(r"^\[(.*)\]$", r"\1", word) for word in arguments)]
    while hasattr(command, "commands"):
        group_options = {"--help", *(opt for param in command.params for opt in param.opts)}
        while rest and rest[0].startswith("-"):
            if rest[0] not in group_options:
                return f"{' '.join(path)} has no option {rest[0]} (options go after the command)"
            rest = rest[1:]
        if not rest:
            return f"{' '.join(path)} needs a command"
        name, rest = rest[0], rest[1:]
        if name not in command.commands:
            return f"{' '.join(path)} has no command {name!r}"
        command = command.commands[name]
        path.append(name)
    if "--help" in rest:
        return None
    try:
        command.make_context(" ".join(path), list(rest), resilient_parsing=False)
    except Exception as error:  # click's usage errors: a missing, unknown or badly typed parameter
        return f"{' '.join(path)}: {error}"
    return None


def check_command_path(words: list[str]) -> str | None:
    """For inline code: the words name real commands as far as they go (arguments are not checked)."""
    command: Any = cli()
    path = ["retrain"]
    for word in words:
        if not hasattr(command, "commands"):
            return None
        if word.startswith("-"):
            if word not in {"--help", *(opt for param in command.params for opt in param.opts)}:
                return f"{' '.join(path)} has no option {word}"
            continue
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            return None  # a placeholder (COMMAND) or not a command at all (`retrain train: …`, a message)
        if word not in command.commands:
            return f"{' '.join(path)} has no command {word!r}"
        command = command.commands[word]
        path.append(word)
    return None


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.MULTILINE))


def check_make(words: list[str], targets: set[str]) -> str | None:
    goals = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
    missing = [goal for goal in goals if goal not in targets]
    return f"no Makefile target {', '.join(missing)}" if missing else None


def all_command_paths() -> list[str]:
    """Every leaf command of the app, as typed: ``status``, ``stack up``, ``contract release``…"""
    paths = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            paths.append(" ".join(path))

    walk(cli(), [])
    return paths


def prose_lines(document: Path) -> list[tuple[int, str]]:
    """The lines outside fenced blocks, numbered (a link or a heading inside a code block is neither)."""
    found = []
    fence: str | None = None
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        marker = re.match(r"^(```+|~~~+)", stripped)
        if fence is None and marker:
            fence = marker.group(1)
        elif fence is not None:
            if stripped.startswith(fence) and stripped.strip("`~") == "":
                fence = None
        else:
            found.append((number, line))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: a link's text kept, lowercase, punctuation but '-' and '_' dropped
    (backticks too), spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2… as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(document):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def check_link(document: Path, target: str) -> str | None:
    """None when a relative link from ``document`` resolves (file, and heading for ``#anchor``)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return None
    path, _, anchor = target.partition("#")
    linked = (document.parent / path).resolve() if path else document
    if not linked.exists():
        return f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}"
    if anchor and linked.suffix == ".md" and anchor not in anchors(linked):
        return f"{target}: no heading with anchor #{anchor} in {linked.relative_to(ROOT)}"
    return None


def links_of(document: Path) -> list[tuple[int, str]]:
    """Markdown links and images outside code, with their line numbers."""
    found = []
    for number, line in prose_lines(document):
        for match in re.finditer(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", re.sub(r"`[^`]*`", "``", line)):
            found.append((number, match.group(1)))
    return found


def inline_commands(document: Path) -> list[tuple[int, str]]:
    """Inline code spans outside fenced blocks, with their line numbers."""
    return [(number, span) for number, line in prose_lines(document) for span in re.findall(r"`([^`]+)`", line)]


# --- the documents -------------------------------------------------------------------------------


DEMO_TEST = ROOT / "tests" / "integration" / "test_cli_lifecycle.py"
DEMO_TEST_NAME = "test_demo_then_status_shows_champion_with_metrics_md5_and_contract"


def quickstart_commands() -> list[list[str]]:
    """The shell commands of the README's Quickstart and What to look at."""
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Quickstart")
    end = lines.index("## Commands")
    return [
        words
        for shown in fenced_shell_lines(readme)
        if start < shown.number <= end
        for words in commands_of(shown.text)
    ]


def commands_invoked_by(path: Path, function: str) -> set[str]:
    """The retrain commands a test function runs: the first word of each list literal of strings given
    to ``runner.invoke(app, [...])``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (test,) = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == function]
    invoked = set()
    for node in ast.walk(test):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "invoke":
            arguments = [arg for arg in node.args if isinstance(arg, ast.List) and arg.elts]
            for listed in arguments:
                first = listed.elts[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    invoked.add(first.value)
    return invoked


def test_the_documents_show_commands_and_links():
    """Guards the tests below against a parser that finds nothing (and so passes on anything)."""
    lines = [shown for document in DOCUMENTS for shown in fenced_shell_lines(document)]
    shown = [args for s in lines for words in commands_of(s.text) if (args := retrain_arguments(words)) is not None]
    assert len(shown) >= 40, len(shown)
    assert {"demo", "status", "history", "pending", "report", "approve", "init"} <= {args[0] for args in shown}
    assert len([link for document in DOCUMENTS for link in links_of(document)]) >= 40


def test_the_quickstarts_commands_are_run_for_real_by_the_demo_test():
    """`make demo` runs `retrain demo`; each `retrain` command of What to look at must be run after it,
    through the CLI, by the demo test (slow, in make test-all)."""
    commands = quickstart_commands()
    assert ["make", "demo"] in commands
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:.*\n\t\$\(UV\) run --frozen retrain demo$", makefile, flags=re.MULTILINE)
    wanted = {"demo"} | {args[0] for words in commands if (args := retrain_arguments(words))}
    assert {"status", "history", "pending", "report"} <= wanted
    invoked = commands_invoked_by(DEMO_TEST, DEMO_TEST_NAME)
    assert wanted <= invoked, f"quickstart commands the demo test does not run: {sorted(wanted - invoked)}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_retrain_command_shown_parses_against_the_cli(document: Path):
    wrong = []
    for shown in fenced_shell_lines(document):
        for words in commands_of(shown.text):
            arguments = retrain_arguments(words)
            if arguments is not None and (why := check_retrain(arguments)):
                wrong.append(f"{shown}\n    -> {why}")
    assert not wrong, "commands the CLI does not accept:\n" + "\n".join(wrong)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_make_target_shown_exists(document: Path):
    targets = make_targets()
    wrong = []
    for shown in fenced_shell_lines(document):
        for words in commands_of(shown.text):
            if words[0] == "make" and (why := check_make(words, targets)):
                wrong.append(f"{shown}\n    -> {why}")
    for number, span in inline_commands(document):
        words = shlex.split(span) if span.startswith("make ") else []
        if len(words) > 1 and (why := check_make(words, targets)):
            wrong.append(f"{document.relative_to(ROOT)}:{number}: `{span}`\n    -> {why}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_inline_retrain_command_names_a_real_command(document: Path):
    wrong = []
    for number, span in inline_commands(document):
        words = span.split()
        arguments = retrain_arguments(words)
        if arguments is not None and (why := check_command_path(arguments)):
            wrong.append(f"{document.relative_to(ROOT)}:{number}: `{span}`\n    -> {why}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(document: Path):
    wrong = [
        f"{document.relative_to(ROOT)}:{number}: ({target}) -> {why}"
        for number, target in links_of(document)
        if (why := check_link(document, target))
    ]
    assert not wrong, "\n".join(wrong)


def test_the_readme_command_table_lists_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    missing = [path for path in all_command_paths() if f"`retrain {path}" not in table]
    assert not missing, f"commands missing from the README's command table: {missing}"


def test_the_readme_starts_with_the_quickstart_and_links_every_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = [line[3:] for _, line in prose_lines(ROOT / "README.md") if line.startswith("## ")]
    assert headings[:4] == ["Quickstart", "What to look at", "Commands", "Concepts"], headings
    assert len(readme.splitlines()) <= 350
    linked = {target.partition("#")[0] for _, target in links_of(ROOT / "README.md")}
    unlinked = [doc.name for doc in DOCS if f"docs/{doc.name}" not in linked]
    assert not unlinked, f"docs the README does not link: {unlinked}"


# --- the checkers themselves: each refuses what is wrong ---------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "retrain statuss",  # no such command
        "retrain status --bogus",  # no such option
        "retrain approve RUN_ID",  # --reviewer is required
        "retrain demo --rows-per-day many",  # not a number
        "retrain stack",  # a group without its command
        "retrain status --verbose",  # the global flag goes before the command
        ".venv/bin/retrain rollback",  # --reason is required
    ],
)
def test_a_command_the_cli_refuses_is_reported(line: str):
    (words,) = commands_of(line)
    arguments = retrain_arguments(words)
    assert arguments is not None and check_retrain(arguments) is not None


@pytest.mark.parametrize(
    "line",
    [
        "retrain --verbose demo --rows-per-day 1500",
        "uv run retrain status --json",
        "retrain approve RUN_ID --reviewer NAME --comment 'fine'",
        "retrain drift a.csv b.csv --act",
        "retrain stack down --purge",
    ],
)
def test_a_command_the_cli_accepts_passes(line: str):
    (words,) = commands_of(line)
    arguments = retrain_arguments(words)
    assert arguments is not None and check_retrain(arguments) is None


def test_a_shell_line_splits_into_its_commands():
    line = "for f in a b; do retrain ingest $f; done && X=1 make lint  # retrain nothing"
    assert commands_of(line) == [["for", "f", "in", "a", "b"], ["retrain", "ingest", "$f"], ["done"], ["make", "lint"]]
    assert check_make(["make", "lint"], make_targets()) is None
    assert check_make(["make", "lint", "nosuch"], make_targets()) == "no Makefile target nosuch"


def test_a_broken_link_or_anchor_is_reported():
    readme = ROOT / "README.md"
    assert check_link(readme, "docs/lifecycle.md#the-lifecycle") is None
    assert check_link(readme, "#what-to-look-at") is None
    assert check_link(readme, "https://example.com/nowhere") is None
    assert check_link(readme, "docs/lifecycle.md#no-such-heading") is not None
    assert check_link(readme, "docs/no-such-file.md") is not None
    assert check_link(readme, "#no-such-heading") is not None


def test_slugs_follow_githubs_rules():
    assert slug("What `make demo` shows") == "what-make-demo-shows"
    assert slug("Monitoring: scoring, drift, retraining, schedules") == "monitoring-scoring-drift-retraining-schedules"
    assert slug("Attacks and faults: what Retrain promises, and the test that shows it") == (
        "attacks-and-faults-what-retrain-promises-and-the-test-that-shows-it"
    )
    assert slug("The dashboard: `retrain report`") == "the-dashboard-retrain-report"
    assert slug("Past one machine: Dask") == "past-one-machine-dask"
