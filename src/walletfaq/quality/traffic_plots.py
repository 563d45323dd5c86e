"""The plots of the traffic report's page (:mod:`walletfaq.quality.traffic_html`), and the font
that draws Chinese in them.

Each plot is a matplotlib :class:`~matplotlib.figure.Figure` drawn on the Agg canvas
(off-screen, whatever pyplot's backend; no pyplot, no global settings changed) and returned as
PNG bytes by :func:`png`. The chart of hand-off questions labels its bars with the questions: it
needs a font with Chinese glyphs, which :func:`find_cjk_font` looks for among the installed
fonts (Debian: ``apt-get install fonts-noto-cjk``), passing it to those labels only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletfaq.quality.traffic_window import ReportWindow
from walletfaq.store.traffic_records import DECISIONS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "CHART_QUESTIONS",
    "find_cjk_font",
    "latency_figure",
    "png",
    "questions_figure",
    "rates_figure",
]

CHART_QUESTIONS = 10
"""How many hand-off questions the chart shows (the page's table lists more)."""

COLOURS = {"answer": "#2e7d32", "clarify": "#f9a825", "handoff": "#c62828", "refuse": "#757575"}
"""The colour of each decision in the plots."""

_CJK_NAMES = ("cjk", "source han sans", "wenquanyi", "droid sans fallback", "yahei", "simhei")
_CJK_FILES = re.compile(r"cjk|sourcehan|wqy|droidsansfallback|msyh|simhei|pingfang|uming", re.I)
_SAMPLE = "中文问题"
_LABEL_CHARS = 30


def find_cjk_font() -> Path | None:
    """The file of an installed font that draws Chinese (sans-serif and regular preferred), or
    ``None``. Looks at matplotlib's font list, then at the font files on the system (the list
    may predate a font's installation), and checks that the font has the glyphs."""
    from matplotlib import font_manager, ft2font

    named = [
        Path(f.fname)
        for f in font_manager.fontManager.ttflist
        if any(name in f.name.lower() for name in _CJK_NAMES)
    ]
    files = [Path(p) for p in font_manager.findSystemFonts() if _CJK_FILES.search(Path(p).name)]
    for path in sorted(dict.fromkeys(named + files), key=_font_preference):
        try:
            font = ft2font.FT2Font(str(path))
        except (OSError, RuntimeError):
            continue
        if all(font.get_char_index(ord(char)) for char in _SAMPLE):
            return path
    return None


def _font_preference(path: Path) -> tuple[bool, bool, str]:
    name = path.name.lower()
    return ("serif" in name or "ming" in name, "bold" in name, name)


def rates_figure(rates: pd.DataFrame, window: ReportWindow) -> Figure:
    """Above: each decision's share of the queries per period; below: the queries per period,
    stacked by decision (from the report's ``rates``)."""
    from matplotlib.ticker import PercentFormatter

    figure, (shares, counts) = _figure(2, height=5.2)
    periods = [p.to_pydatetime() for p in rates["period"]]
    width = window.step.total_seconds() / 86_400 * 0.85  # in days, matplotlib's date unit
    bottom = [0] * len(rates)
    for decision in DECISIONS:
        colour = COLOURS[decision]
        shares.plot(periods, rates[f"{decision}_rate"], marker=".", color=colour, label=decision)
        counts.bar(periods, rates[decision], width, bottom=bottom, color=colour, label=decision)
        bottom = [b + int(v) for b, v in zip(bottom, rates[decision], strict=True)]
    shares.set(ylabel="share of queries", ylim=(-0.02, 1.02))
    shares.yaxis.set_major_formatter(PercentFormatter(1.0))
    shares.legend(loc="best", fontsize="small", ncols=4)
    counts.set(ylabel=f"queries per {window.period}")
    _date_axis(counts)
    return figure


def latency_figure(latency: pd.DataFrame) -> Figure:
    """p50, p95 and p99 latency per period (from the report's ``latency``)."""
    figure, (axes,) = _figure(1, height=3.2)
    frame = latency[latency["scope"] == "period"]
    periods = [p.to_pydatetime() for p in frame["period"]]
    for name, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
        axes.plot(periods, frame[name], style, marker=".", label=name.removesuffix("_ms"))
    axes.set(ylabel="milliseconds", ylim=(0, None))
    axes.legend(loc="best", fontsize="small", ncols=3)
    _date_axis(axes)
    return figure


def questions_figure(questions: pd.DataFrame, font: Path) -> Figure:
    """The :data:`CHART_QUESTIONS` most frequent hand-off questions as bars, labelled with the
    questions in ``font`` (shortened; taken literally: ``$`` starts no formula)."""
    from matplotlib.font_manager import FontProperties

    shown = questions.head(CHART_QUESTIONS)
    figure, (axes,) = _figure(1, height=0.45 * len(shown) + 1.0)
    positions = list(range(len(shown)))[::-1]
    axes.barh(positions, shown["asked"], color=COLOURS["handoff"])
    labels = [_shorten(str(text)) for text in shown["question"]]
    axes.set_yticks(positions, labels, fontproperties=FontProperties(fname=font), parse_math=False)
    axes.set(xlabel="times asked and handed off")
    axes.xaxis.get_major_locator().set_params(integer=True)
    return figure


def png(figure: Figure) -> bytes:
    """``figure`` drawn on the Agg canvas, as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figure(rows: int, *, height: float) -> tuple[Figure, Sequence[Any]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, height), layout="constrained")
    axes = list(figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0])
    for each in axes:
        each.grid(alpha=0.3)
    return figure, axes


def _date_axis(axes: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_xlabel("UTC")


def _shorten(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"
