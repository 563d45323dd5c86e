"""The traffic report: what live traffic did in a window of time, from the store's query log.

>>> report = traffic_report(store, since="7d")          # doctest: +SKIP
>>> report.rates.tail(3)                                # per day (per hour within 2 days)
>>> report.to_html("report.html")                       # one self-contained page

:func:`traffic_report` reads the logged queries asked in the window
(:meth:`Store.queries <walletfaq.store.Store.queries>`) and their feedback, and returns a
:class:`TrafficReport` of pandas DataFrames (the ``eval`` extra) for notebooks:

- ``rates``: per period, how many queries were answered, asked back (clarify), handed off or
  refused, and each as a share of the period's queries (NaN for a period without queries).
- ``entries``: per entry, how often it was the answer and what users said about those answers
  (helpful / not helpful, the helpfulness rate with its 95 % Wilson interval, flagged
  ``few_ratings`` under :data:`MIN_RATINGS`), and how often users named it as the right entry
  of a query it did not answer.
- ``latency``: p50 / p95 / p99 / max answering time per period, and one ``overall`` row.
- ``top_questions``: the most frequent handed-off questions (masked, as the store holds them).
- ``gaps``: the top clusters of a gap report, when one is given (anything with ``to_frame()``).
- ``summary``: the headline numbers (a JSON-ready dict).

Periods are hours when the window is at most
:data:`~walletfaq.quality.traffic_window.HOURLY_WINDOW` long, else days, in UTC
(:mod:`walletfaq.quality.traffic_window`); the first and last periods may be partial. Feedback
counts for the entry that answered: on an answered query, ``helpful`` is about its top hit;
feedback on a clarify or a hand-off is counted in the summary only. An ``entry_id`` named in
feedback, other than the entry that answered, counts as that entry's ``named_instead``.
:meth:`TrafficReport.to_html` writes the same report as one HTML page
(:mod:`walletfaq.quality.traffic_html`).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from walletfaq.data.atomic import write_text_atomic
from walletfaq.errors import WalletFAQError
from walletfaq.quality.evaluation.stats import wilson_interval
from walletfaq.quality.traffic_html import render_html
from walletfaq.quality.traffic_window import ReportWindow, report_window
from walletfaq.store.engine import redact
from walletfaq.store.traffic_records import DECISIONS

if TYPE_CHECKING:
    import pandas as pd

    from walletfaq.store import Feedback, LoggedQuery, Store

__all__ = [
    "MIN_RATINGS",
    "TOP_QUESTIONS",
    "GapReportLike",
    "ReportWindow",
    "TrafficReport",
    "build_report",
    "report_window",
    "traffic_report",
]

MIN_RATINGS = 5
"""An entry with fewer ratings than this is flagged ``few_ratings``: its helpfulness rate says
little (one "not helpful" out of three is 67 %)."""

TOP_QUESTIONS = 20
"""How many handed-off questions (and gap clusters) the report lists by default."""


class GapReportLike(Protocol):
    """What the report needs of a gap report: its clusters as a DataFrame, ranked first."""

    def to_frame(self) -> pd.DataFrame: ...


@dataclass(frozen=True, eq=False)
class TrafficReport:
    """What traffic did in one window (see the module's description of each table).

    Attributes:
        window: the window and its periods.
        store: the store's URL, password hidden.
        rates: one row per period: ``period`` (UTC), ``queries``, a count per decision and
            ``<decision>_rate``.
        entries: one row per entry answered or named in feedback, most answered first.
        latency: one row per period and a last ``overall`` row (``scope``), in milliseconds.
        top_questions: the most frequent handed-off questions: ``question``, ``asked``,
            ``last_asked``, ``nearest_entry`` and its ``top_score`` (the best of its asks).
        gaps: the top gap clusters (``None``: no gap report was given).
        summary: the headline numbers.
        min_ratings: the fewest ratings whose helpfulness rate is not flagged ``few_ratings``.
    """

    window: ReportWindow
    store: str
    rates: pd.DataFrame
    entries: pd.DataFrame
    latency: pd.DataFrame
    top_questions: pd.DataFrame
    gaps: pd.DataFrame | None
    summary: dict[str, Any]
    min_ratings: int = MIN_RATINGS

    @property
    def empty(self) -> bool:
        """Whether no query was asked in the window."""
        return int(self.summary["queries"]) == 0

    def to_dict(self) -> dict[str, Any]:
        """The summary and every table as JSON-ready records (times in ISO 8601, NaN as
        ``None``); ``gaps`` is ``None`` when no gap report was given."""
        return {
            "summary": dict(self.summary),
            "rates": _records(self.rates),
            "entries": _records(self.entries),
            "latency": _records(self.latency),
            "top_questions": _records(self.top_questions),
            "gaps": None if self.gaps is None else _records(self.gaps),
        }

    def html(self) -> str:
        """The report as one self-contained HTML page (see :meth:`to_html`)."""
        return render_html(self)

    def to_html(self, path: str | Path) -> Path:
        """Write the report to ``path`` as one HTML page that needs nothing else: the plots
        are inline PNG images, the tables HTML, no script, no external style or font. Every
        logged text is escaped. Written atomically; returns the path.

        Raises:
            WalletFAQError: the file cannot be written (the message says why).
        """
        page = self.html()
        try:
            return write_text_atomic(Path(path), page)
        except OSError as exc:
            raise WalletFAQError(
                f"cannot write the report to {path}: {exc.strerror or exc}; pass a file path "
                "in a folder you can write to"
            ) from None


def traffic_report(
    store: Store,
    since: datetime | timedelta | str,
    until: datetime | timedelta | str | None = None,
    *,
    gaps: GapReportLike | None = None,
    top: int = TOP_QUESTIONS,
    min_ratings: int = MIN_RATINGS,
) -> TrafficReport:
    """The traffic report of ``store`` for queries asked from ``since`` until ``until``.

    Args:
        store: an open store (:func:`walletfaq.open_store`).
        since: the window's start (see :func:`report_window`: ``"7d"``, ``"24h"``, a date, an
            aware datetime, a timedelta).
        until: its end (default: now).
        gaps: a gap report to show the top clusters of (``None``: the report has no gaps).
        top: how many handed-off questions and gap clusters to list.
        min_ratings: entries with fewer ratings are flagged ``few_ratings``.

    Raises:
        WalletFAQError: a bad window, ``top`` or ``min_ratings``, pandas missing (the
            ``eval`` extra), or a ``gaps`` without ``to_frame()``; StoreError: the store
            cannot be read.
    """
    window = report_window(since, until)
    queries = store.queries(since=window.since, until=window.until)
    feedback = store.feedback(since=window.since) if queries else ()
    return build_report(
        queries, feedback, window, store=store.url, gaps=gaps, top=top, min_ratings=min_ratings
    )


def build_report(
    queries: Sequence[LoggedQuery],
    feedback: Iterable[Feedback],
    window: ReportWindow,
    *,
    store: str = "",
    gaps: GapReportLike | None = None,
    top: int = TOP_QUESTIONS,
    min_ratings: int = MIN_RATINGS,
) -> TrafficReport:
    """The report of logged ``queries`` (those outside ``window`` are left out) and their
    ``feedback`` (feedback on other queries is left out); :func:`traffic_report` reads both
    from a store. ``store`` names the store in the report (any password in it is hidden)."""
    pd = _pandas()
    for name, value in (("top", top), ("min_ratings", min_ratings)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WalletFAQError(f"{name} must be a positive whole number, got {value!r}")
    store = redact(store) if store else ""
    inside = [q for q in queries if window.since <= q.created_at < window.until]
    asked = {q.request_id: q for q in inside}
    rated = {f.request_id: f for f in feedback if f.request_id in asked}
    rates = _rates(pd, inside, window)
    entries = _entries(pd, inside, rated, min_ratings)
    latency = _latency(pd, inside, window)
    questions = _top_questions(pd, inside, top)
    clusters = None if gaps is None else _gap_frame(pd, gaps)
    summary = _summary(inside, rated, entries, latency, window, store)
    summary["gap_clusters"] = None if clusters is None else len(clusters)
    shown = None if clusters is None else clusters.head(top).reset_index(drop=True)
    return TrafficReport(
        window, store, rates, entries, latency, questions, shown, summary, min_ratings
    )


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise WalletFAQError(
            "the traffic report needs pandas; install it with pip install 'walletfaq[eval]'"
        ) from None
    return pd


def _rates(pd: Any, queries: list[LoggedQuery], window: ReportWindow) -> pd.DataFrame:
    counts: dict[datetime, Counter[str]] = defaultdict(Counter)
    for q in queries:
        counts[window.bucket(q.created_at)][q.decision] += 1
    rows = []
    for start in window.starts():
        period = counts.get(start, Counter())
        total = sum(period.values())
        row: dict[str, Any] = {"period": start, "queries": total}
        row.update({d: period[d] for d in DECISIONS})
        row.update({f"{d}_rate": period[d] / total if total else math.nan for d in DECISIONS})
        rows.append(row)
    columns = ["period", "queries", *DECISIONS, *(f"{d}_rate" for d in DECISIONS)]
    frame = pd.DataFrame(rows, columns=columns)
    frame["period"] = pd.to_datetime(frame["period"], utc=True)
    return frame


def _entries(
    pd: Any, queries: list[LoggedQuery], rated: dict[str, Feedback], min_ratings: int
) -> pd.DataFrame:
    answered: Counter[str] = Counter()
    helpful: Counter[str] = Counter()
    unhelpful: Counter[str] = Counter()
    named: Counter[str] = Counter()
    for q in queries:
        entry = q.hits[0].entry_id if q.decision == "answer" and q.hits else None
        if entry is not None:
            answered[entry] += 1
        f = rated.get(q.request_id)
        if f is None:
            continue
        if entry is not None:
            (helpful if f.helpful else unhelpful)[entry] += 1
        if f.entry_id is not None and f.entry_id != entry:
            named[f.entry_id] += 1
    rows = []
    for entry in sorted(set(answered) | set(named), key=lambda e: (-answered[e], e)):
        n = helpful[entry] + unhelpful[entry]
        low, high = wilson_interval(helpful[entry], n) if n else (math.nan, math.nan)
        rows.append(
            {
                "entry_id": entry,
                "answered": answered[entry],
                "rated": n,
                "helpful": helpful[entry],
                "not_helpful": unhelpful[entry],
                "helpfulness": helpful[entry] / n if n else math.nan,
                "helpfulness_low": low,
                "helpfulness_high": high,
                "few_ratings": n < min_ratings,
                "named_instead": named[entry],
            }
        )
    columns = ["entry_id", "answered", "rated", "helpful", "not_helpful", "helpfulness"]
    columns += ["helpfulness_low", "helpfulness_high", "few_ratings", "named_instead"]
    return pd.DataFrame(rows, columns=columns)


def _latency(pd: Any, queries: list[LoggedQuery], window: ReportWindow) -> pd.DataFrame:
    times: dict[datetime, list[float]] = defaultdict(list)
    for q in queries:
        times[window.bucket(q.created_at)].append(q.latency_ms)
    rows = [_percentiles("period", start, times.get(start, [])) for start in window.starts()]
    rows.append(_percentiles("overall", None, [q.latency_ms for q in queries]))
    frame = pd.DataFrame(rows)
    frame["period"] = pd.to_datetime(frame["period"], utc=True)
    return frame


def _percentiles(scope: str, start: datetime | None, values: list[float]) -> dict[str, Any]:
    if values:
        p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
        top = max(values)
    else:
        p50 = p95 = p99 = top = math.nan
    return {
        "scope": scope,
        "period": start,
        "queries": len(values),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": top,
    }


def _top_questions(pd: Any, queries: list[LoggedQuery], top: int) -> pd.DataFrame:
    asked: Counter[str] = Counter()
    last: dict[str, datetime] = {}
    best: dict[str, tuple[float, str]] = {}
    for q in queries:
        if q.decision != "handoff":
            continue
        asked[q.question] += 1
        last[q.question] = max(last.get(q.question, q.created_at), q.created_at)
        if q.hits and q.hits[0].score > best.get(q.question, (-math.inf, ""))[0]:
            best[q.question] = (q.hits[0].score, q.hits[0].entry_id)
    ranked = sorted(asked, key=lambda t: (-asked[t], -last[t].timestamp(), t))[:top]
    rows = [
        {
            "question": text,
            "asked": asked[text],
            "last_asked": last[text],
            "nearest_entry": best[text][1] if text in best else None,
            "top_score": best[text][0] if text in best else math.nan,
        }
        for text in ranked
    ]
    columns = ["question", "asked", "last_asked", "nearest_entry", "top_score"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["last_asked"] = pd.to_datetime(frame["last_asked"], utc=True)
    return frame


def _gap_frame(pd: Any, gaps: object) -> pd.DataFrame:
    to_frame = getattr(gaps, "to_frame", None)
    if not callable(to_frame):
        raise WalletFAQError(
            f"gaps must be a gap report (an object with to_frame()), got {type(gaps).__name__}"
        )
    frame = to_frame()
    if not isinstance(frame, pd.DataFrame):
        raise WalletFAQError(
            f"gaps.to_frame() must return a pandas DataFrame, got {type(frame).__name__}"
        )
    return frame


def _summary(
    queries: list[LoggedQuery],
    rated: dict[str, Feedback],
    entries: pd.DataFrame,
    latency: pd.DataFrame,
    window: ReportWindow,
    store: str,
) -> dict[str, Any]:
    total = len(queries)
    decided = Counter(q.decision for q in queries)
    overall = latency.iloc[-1]
    helpful = int(entries["helpful"].sum())
    ratings = helpful + int(entries["not_helpful"].sum())
    summary: dict[str, Any] = {
        "store": store,
        "since": window.since.isoformat(),
        "until": window.until.isoformat(),
        "period": window.period,
        "queries": total,
    }
    summary.update({d: decided[d] for d in DECISIONS})
    summary.update({f"{d}_rate": decided[d] / total if total else None for d in DECISIONS})
    summary.update(
        {
            "feedback": len(rated),
            "answers_rated": ratings,
            "helpful": helpful,
            "not_helpful": ratings - helpful,
            "helpfulness": helpful / ratings if ratings else None,
            "entries_answered": int((entries["answered"] > 0).sum()),
            "handoff_questions": len({q.question for q in queries if q.decision == "handoff"}),
        }
    )
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        value = float(overall[name])
        summary[f"latency_{name}"] = None if math.isnan(value) else value
    return summary


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rows as JSON-ready dicts (NaN → ``None``, times in ISO 8601)."""
    records = json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))
    return list(records)
