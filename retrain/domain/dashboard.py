"""The monitoring dashboard as data and as one self-contained HTML page.

What ``retrain report`` gathers (retrain.application.report) is kept here as plain records, and the
page is rendered from them with its figures inlined as PNG data URIs: one file that opens anywhere,
mails as an attachment, and needs no server. Pure: figures come in as PNG bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

#: The figures a dashboard shows, in page order: (key, section title).
FIGURES: Final = (
    ("metrics", "Metrics per version: holdout and realized on labelled traffic"),
    ("drift", "Drift share per checked batch"),
    ("durations", "Run durations"),
    ("resources", "CPU and memory while each version trained"),
)


@dataclass(frozen=True)
class VersionRow:
    """One registered version: when it trained, its holdout metric, its decision and aliases."""

    version: str
    trained_at: dt.datetime | None
    holdout: float | None
    decision: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RealizedPoint:
    """A model's primary metric measured on labelled traffic: a scored batch, or a rollout's arm."""

    at: dt.datetime
    version: str
    value: float
    rows: int
    source: str  # "scoring <batch>" or "rollout (candidate arm)" ...


@dataclass(frozen=True)
class DriftPoint:
    at: dt.datetime
    batches: str
    drift_share: float
    decision: str
    signal: str
    worst: str  # the most drifted features, as the drift run tagged them


@dataclass(frozen=True)
class TimelineEvent:
    at: dt.datetime
    kind: str
    text: str


@dataclass(frozen=True)
class RunDuration:
    at: dt.datetime
    kind: str  # training, scoring, drift
    name: str
    seconds: float


@dataclass(frozen=True)
class ResourceTrace:
    """CPU and memory sampled while one version trained (seconds since the fit began)."""

    version: str
    seconds: tuple[float, ...]
    cpu_percent: tuple[float, ...]
    process_rss_mb: tuple[float, ...]

    @property
    def peak_rss_mb(self) -> float:
        return max(self.process_rss_mb, default=0.0)

    @property
    def mean_cpu_percent(self) -> float:
        return sum(self.cpu_percent) / len(self.cpu_percent) if self.cpu_percent else 0.0


@dataclass(frozen=True)
class Dashboard:
    model: str
    primary_metric: str
    generated_at: dt.datetime
    versions: tuple[VersionRow, ...] = ()
    realized: tuple[RealizedPoint, ...] = ()
    drift: tuple[DriftPoint, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    durations: tuple[RunDuration, ...] = ()
    resources: tuple[ResourceTrace, ...] = ()
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or _empty(len(headers))}</tbody></table>"


def _empty(columns: int) -> str:
    return f'<tr><td colspan="{columns}">nothing yet</td></tr>'


def _figure(key: str, title: str, png: bytes | None) -> str:
    if png is None:
        return f'<section id="{key}"><h2>{html.escape(title)}</h2><p>nothing to plot yet</p></section>'
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(title)
    return (
        f'<section id="{key}"><h2>{alt}</h2>'
        f'<img class="plot" data-plot="{key}" alt="{alt}" src="data:image/png;base64,{data}"></section>'
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}th{background:#f4f4f4}
img.plot{max-width:100%;border:1px solid #eee}
"""


def render_html(board: Dashboard, figures: Mapping[str, bytes | None]) -> str:
    """The page: headline numbers, every figure, then the tables behind them."""
    champion = next((v for v in board.versions if "champion" in v.aliases), None)
    candidate = next((v for v in board.versions if "candidate" in v.aliases), None)
    headline = [
        f"champion: {'v' + champion.version if champion else 'none'}",
        f"candidate: {'v' + candidate.version if candidate else 'none'}",
        f"{len(board.versions)} version(s), {len(board.drift)} drift check(s), "
        f"{sum(1 for e in board.timeline if e.kind in ('promotion', 'rollback', 'rollout'))} decision(s)",
    ]
    links = "".join(f'<li><a href="{html.escape(url)}">{html.escape(label)}</a></li>' for label, url in board.links)
    sections = [_figure(key, title, figures.get(key)) for key, title in FIGURES]
    metric = board.primary_metric
    tables = [
        "<h2>Versions</h2>",
        _table(
            ("version", "trained at", f"holdout {metric}", "decision", "aliases"),
            [(v.version, v.trained_at, v.holdout, v.decision, ", ".join(v.aliases)) for v in board.versions],
        ),
        f"<h2>Realized {html.escape(metric)} on labelled traffic</h2>",
        _table(
            ("at", "version", metric, "labelled rows", "from"),
            [(p.at, p.version, p.value, p.rows, p.source) for p in board.realized],
        ),
        "<h2>Drift checks</h2>",
        _table(
            ("at", "batches", "drift share", "decision", "signal", "most drifted features"),
            [(d.at, d.batches, d.drift_share, d.decision, d.signal, d.worst) for d in board.drift],
        ),
        "<h2>Timeline: decisions, promotions, rollouts and rollbacks</h2>",
        _table(("at", "kind", "what"), [(e.at, e.kind, e.text) for e in board.timeline]),
        "<h2>Training resources</h2>",
        _table(
            ("version", "seconds sampled", "mean CPU %", "peak process memory (MB)"),
            [
                (r.version, r.seconds[-1] if r.seconds else None, r.mean_cpu_percent, r.peak_rss_mb)
                for r in board.resources
            ],
        ),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Retrain: {html.escape(board.model)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Retrain: {html.escape(board.model)}</h1>"
        f"<p class='sub'>generated {_cell(board.generated_at)} UTC · {' · '.join(html.escape(h) for h in headline)}</p>"
        + (f"<ul>{links}</ul>" if links else "")
        + "".join(sections)
        + "".join(tables)
        + "</body></html>"
    )
