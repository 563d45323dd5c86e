"""The traffic report as one self-contained HTML page (:meth:`TrafficReport.to_html
<walletfaq.quality.traffic_report.TrafficReport.to_html>`).

The page needs nothing else: plots are PNG images inline (``data:`` URIs, drawn by matplotlib's
Agg canvas, no pyplot and no global settings changed), tables are HTML, the style is inline,
there is no script, and a Content-Security-Policy forbids loading anything (a script, a font, an
image from the network) should a text ever get through. Every text that came from users or the
store (questions, entry ids, gap clusters, the store URL) is escaped.

The chart of hand-off questions draws Chinese: it uses the first installed font that has the
glyphs (:func:`~walletfaq.quality.traffic_plots.find_cjk_font`; Debian: ``apt-get install
fonts-noto-cjk``). Without one the chart is left out and the page says so; the table of those
questions is there either way (the browser draws it with its own fonts).
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from walletfaq._version import __version__
from walletfaq.quality import traffic_plots
from walletfaq.quality.traffic_plots import latency_figure, png, questions_figure, rates_figure
from walletfaq.quality.traffic_window import ReportWindow

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["MAX_TABLE_ROWS", "ReportPage", "render_html"]

logger = logging.getLogger(__name__)

MAX_TABLE_ROWS = 50
"""The most rows a table of the page shows (the DataFrames hold them all)."""

_NUMBER = ' class="num"'

_STYLE = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
  "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; margin: 2em auto; max-width: 72em;
  padding: 0 1em; color: #212121; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.window, .store { color: #555; margin: 0.2em 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin-top: 1.2em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 8em; }
.card .value { display: block; font-size: 1.6em; font-weight: bold; }
.card .label { color: #555; font-size: 0.9em; }
.empty { font-size: 1.3em; background: #fff8e1; padding: 1em; border-radius: 6px; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 0.3em 0.7em; text-align: left;
  vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 3em; color: #777; font-size: 0.85em; }
"""


class ReportPage(Protocol):
    """What the page shows: a :class:`~walletfaq.quality.traffic_report.TrafficReport`."""

    @property
    def window(self) -> ReportWindow: ...
    @property
    def store(self) -> str: ...
    @property
    def rates(self) -> pd.DataFrame: ...
    @property
    def entries(self) -> pd.DataFrame: ...
    @property
    def latency(self) -> pd.DataFrame: ...
    @property
    def top_questions(self) -> pd.DataFrame: ...
    @property
    def gaps(self) -> pd.DataFrame | None: ...
    @property
    def summary(self) -> dict[str, Any]: ...
    @property
    def min_ratings(self) -> int: ...
    @property
    def empty(self) -> bool: ...


@dataclass(frozen=True)
class _Column:
    """A column of a page table: its header, its text for a row, whether it is a number."""

    header: str
    show: Callable[[Any], str]
    numeric: bool = False


def render_html(report: ReportPage) -> str:
    """The page of ``report`` (see the module's description)."""
    s = report.summary
    title = f"walletfaq traffic report: {report.window.describe()}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        "<header><h1>Traffic report</h1>",
        f'<p class="window" id="window">{_e(report.window.describe())}</p>',
        f'<p class="store" id="store">store: <code>{_e(report.store or "(not named)")}</code>'
        "</p></header>",
        _headline(s),
    ]
    if report.empty:
        parts.append(
            '<p class="empty" id="no-traffic">No traffic in this window: no query was logged '
            f"between {_e(_when(report.window.since))} and {_e(_when(report.window.until))}.</p>"
        )
    else:
        parts += [_rates_section(report), _latency_section(report), _entries_section(report)]
        parts += [_gaps_section(report), _handoff_section(report)]
    parts.append(
        f"<footer>Made by walletfaq {_e(__version__)} at {_e(_when(datetime.now(timezone.utc)))}."
        " Times and periods in UTC; the first and last periods may be partial. Questions are "
        "shown as the store holds them (personal details masked).</footer></body></html>"
    )
    return "\n".join(parts)


# --- sections ------------------------------------------------------------------------------


def _headline(s: dict[str, Any]) -> str:
    ratings = s["answers_rated"]
    cards = [
        ("queries", f"{s['queries']:,}", "queries"),
        ("answer_rate", _percent(s["answer_rate"]), "answered"),
        ("clarify_rate", _percent(s["clarify_rate"]), "asked back (clarify)"),
        ("handoff_rate", _percent(s["handoff_rate"]), "handed off"),
        ("refuse_rate", _percent(s["refuse_rate"]), "refused"),
        ("helpfulness", _percent(s["helpfulness"]), f"helpful ({ratings:,} answers rated)"),
        ("latency_p50_ms", _ms(s["latency_p50_ms"]), "latency p50"),
        ("latency_p95_ms", _ms(s["latency_p95_ms"]), "latency p95"),
    ]
    if s["gap_clusters"] is not None:
        cards.append(("gap_clusters", f"{s['gap_clusters']:,}", "gap clusters"))
    body = "".join(
        f'<div class="card" data-key="{key}"><span class="value">{_e(value)}</span>'
        f'<span class="label">{_e(label)}</span></div>'
        for key, value, label in cards
    )
    return f'<section class="cards" id="headline">{body}</section>'


def _rates_section(report: ReportPage) -> str:
    figure = rates_figure(report.rates, report.window)
    plot = _image("rates-plot", "answer, clarify, hand-off and refuse rates", figure)
    title = f"<h2>Answered, asked back, handed off, refused: per {report.window.period}</h2>"
    return f'<section id="rates">{title}{plot}</section>'


def _latency_section(report: ReportPage) -> str:
    overall = report.latency.iloc[[-1]]
    columns = [_Column("queries", _field("queries", _count), numeric=True)]
    columns += [
        _Column(label, _field(f"{label}_ms", _ms), numeric=True)
        for label in ("p50", "p95", "p99", "max")
    ]
    figure = latency_figure(report.latency)
    plot = _image("latency-plot", "latency percentiles per period", figure)
    table = _table(overall, columns, "latency-table")
    return f'<section id="latency"><h2>Latency</h2>{plot}<p>Whole window:</p>{table}</section>'


def _entries_section(report: ReportPage) -> str:
    frame = report.entries
    if frame.empty:
        body = "<p>No entry answered.</p>"
    else:
        note = (
            "Helpfulness: the share of rated answers users found helpful (95 % Wilson "
            f"interval); * marks an entry with fewer than {report.min_ratings} ratings, whose "
            'rate says little. "Named instead": feedback said this entry was the right one '
            "for a question it did not answer."
        )
        columns = [
            _Column("entry", _field("entry_id", str)),
            _Column("answered", _field("answered", _count), numeric=True),
            _Column("helpful", _field("helpful", _count), numeric=True),
            _Column("not helpful", _field("not_helpful", _count), numeric=True),
            _Column("helpfulness", _helpfulness, numeric=True),
            _Column("95 % interval", _interval, numeric=True),
            _Column("named instead", _field("named_instead", _count), numeric=True),
        ]
        table = _table(frame, columns, "entries-table")
        body = f'<p class="note">{_e(note)}</p>{table}{_more(frame, "entries")}'
    return f'<section id="entries"><h2>Per-entry helpfulness</h2>{body}</section>'


def _gaps_section(report: ReportPage) -> str:
    if report.gaps is None:
        body = (
            '<p class="note">Gap clusters are not part of this report (pass a gap report: '
            "traffic_report(store, since, gaps=...)).</p>"
        )
    elif report.gaps.empty:
        body = "<p>No gap clusters.</p>"
    else:
        columns = [_Column(str(name), _field(name, _cell)) for name in report.gaps.columns]
        body = _table(report.gaps, columns, "gaps-table")
    return f'<section id="gaps"><h2>Top gap clusters</h2>{body}</section>'


def _handoff_section(report: ReportPage) -> str:
    frame = report.top_questions
    title = "<h2>Most frequent hand-off questions</h2>"
    if frame.empty:
        return f'<section id="handoffs">{title}<p>No question was handed off.</p></section>'
    font = traffic_plots.find_cjk_font()
    if font is None:
        logger.warning(
            "no font with Chinese glyphs found (Debian: apt-get install fonts-noto-cjk); the "
            "traffic report leaves out the chart of hand-off questions"
        )
        chart = (
            '<p class="note" id="no-cjk-font">No font with Chinese glyphs is installed here '
            "(Debian: apt-get install fonts-noto-cjk), so the chart of these questions is left "
            "out; the table lists them.</p>"
        )
    else:
        figure = questions_figure(frame, font)
        chart = _image("handoff-plot", "most frequent hand-off questions", figure)
    columns = [
        _Column("question (masked)", _field("question", str)),
        _Column("asked", _field("asked", _count), numeric=True),
        _Column("last asked", _field("last_asked", _when)),
        _Column("nearest entry", _field("nearest_entry", _cell)),
        _Column("its score", _field("top_score", _score), numeric=True),
    ]
    table = _table(frame, columns, "handoff-table")
    return f'<section id="handoffs">{title}{chart}{table}</section>'


def _image(element_id: str, alt: str, figure: Figure) -> str:
    data = base64.b64encode(png(figure)).decode("ascii")
    return f'<img id="{element_id}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


# --- tables and cells ----------------------------------------------------------------------


def _table(frame: pd.DataFrame, columns: Sequence[_Column], element_id: str) -> str:
    """An HTML table of ``frame``'s first :data:`MAX_TABLE_ROWS` rows, every header and cell
    escaped."""
    head = "".join(f"<th>{_e(column.header)}</th>" for column in columns)
    rows = []
    for _, row in frame.head(MAX_TABLE_ROWS).iterrows():
        cells = (
            f"<td{_NUMBER if column.numeric else ''}>{_e(column.show(row))}</td>"
            for column in columns
        )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table id="{element_id}"><tr>{head}</tr>{"".join(rows)}</table>'


def _field(name: str, show: Callable[[Any], str]) -> Callable[[Any], str]:
    """A row's text: ``show`` of its ``name`` field."""
    return lambda row: show(row[name])


def _more(frame: pd.DataFrame, name: str) -> str:
    if len(frame) <= MAX_TABLE_ROWS:
        return ""
    return (
        f'<p class="note">{len(frame) - MAX_TABLE_ROWS:,} more rows in the report\'s '
        f"{_e(name)} DataFrame.</p>"
    )


def _helpfulness(row: Any) -> str:
    if not row["rated"]:
        return "no ratings"
    text = f"{_percent(row['helpfulness'])} of {int(row['rated']):,}"
    return f"{text} *" if row["few_ratings"] else text


def _interval(row: Any) -> str:
    low, high = row["helpfulness_low"], row["helpfulness_high"]
    return "–" if _missing(low) else f"{low * 100:.0f}–{high * 100:.0f} %"


def _cell(value: Any) -> str:
    """A cell of a table whose columns are not known here (a gap report's)."""
    if isinstance(value, (list, tuple)):
        return _shorten("; ".join(_cell(v) for v in value), 400)
    if isinstance(value, dict):
        return _shorten(json.dumps(value, ensure_ascii=False, default=str), 400)
    if _missing(value):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _shorten(str(value), 400)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def _percent(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value) * 100:.1f} %"


def _ms(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):,.1f} ms"


def _count(value: Any) -> str:
    return f"{int(value):,}"


def _score(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):.3f}"


def _when(value: Any) -> str:
    if _missing(value):
        return "–"
    moment = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
