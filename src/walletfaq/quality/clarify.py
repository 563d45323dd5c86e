"""The clarify margin: when two entries are close, ask the user to choose instead of guessing.

:meth:`FAQRetriever.answer <walletfaq.FAQRetriever.answer>` answers with its top entry, asks the
user to choose among the entries close to it (``decision="clarify"``: two or more entries above
the threshold, less than the clarify margin below the top one), or hands off
(:func:`~walletfaq.index.search.close_positions`). :func:`calibrate_margin` replays that rule on
labelled queries (the bundled evaluation set by default) at one threshold for a grid of margins
and chooses one by a :class:`MarginRule`. Each margin's :class:`MarginPoint`:

- ``precision``: among the queries answered (decision ``"answer"``), the share whose entry is a
  gold one; an answered out-of-domain query counts as wrong (as in
  :func:`~walletfaq.quality.calibration.calibrate`), with its Wilson interval.
- ``coverage``: share of in-domain queries answered.
- ``clarify_rate``: share of all queries asked back (decision ``"clarify"``).
- ``clarify_useful``: among the queries asked back, the share whose options hold a gold entry
  (an out-of-domain one never does).
- ``resolved``: share of in-domain queries that reach a gold entry at once or after one choice.

Like :func:`~walletfaq.quality.calibration.calibrate`, this reads rankings (:meth:`ask`): the
safety gate of ``answer()`` is not replayed.

:data:`MARGIN_RULE` is the rule the presets' default margins were chosen by
(``benchmarks/clarify.py`` recomputes them; ``walletfaq calibrate`` applies it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from walletfaq.errors import WalletFAQError
from walletfaq.index.search import MAX_CLARIFY_MARGIN, close_positions, margin_problem
from walletfaq.quality.calibration import (
    CalibrationQueries,
    CalibrationWarning,
    check_report_matches,
)
from walletfaq.quality.evaluation.report import EvalReport
from walletfaq.quality.evaluation.runner import evaluate
from walletfaq.quality.evaluation.stats import wilson_interval
from walletfaq.retrieval.questions import check_threshold

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from walletfaq.quality.evaluation.results import QueryResult
    from walletfaq.retrieval.retriever import FAQRetriever

__all__ = [
    "ANSWER_K",
    "MARGIN_GRID",
    "MARGIN_RULE",
    "MarginCalibration",
    "MarginPoint",
    "MarginRule",
    "calibrate_margin",
    "choose_margin",
    "margin_curves",
    "margin_point",
]

ANSWER_K = 3
"""Hits an answer decides among (the default ``k`` of :meth:`FAQRetriever.answer`)."""

MARGIN_GRID: tuple[float, ...] = tuple(round(step * 0.0025, 4) for step in range(41))
"""The margins tried by default: 0 (never clarify) to 0.1 in steps of 0.0025 (the default
model's close entries differ by thousandths of a cosine; past 0.05 most questions are asked
back)."""


@dataclass(frozen=True)
class MarginPoint:
    """What answering with one clarify margin at one threshold does on labelled queries.

    Attributes:
        margin: the clarify margin.
        threshold: the no-answer threshold.
        answered_correct: queries answered with a gold entry.
        answered_wrong: queries answered with another entry (out-of-domain ones included).
        clarified: queries asked back (decision ``"clarify"``).
        clarified_useful: of those, the in-domain ones whose options hold a gold entry.
        handed_off: queries handed off (top score below the threshold).
        n_in_domain: in-domain queries.
        n_out_of_domain: out-of-domain queries (``gold: []``).
        in_domain_answered: in-domain queries answered (correctly or not).
        confidence: level of the precision interval.
    """

    margin: float
    threshold: float
    answered_correct: int
    answered_wrong: int
    clarified: int
    clarified_useful: int
    handed_off: int
    n_in_domain: int
    n_out_of_domain: int
    in_domain_answered: int
    confidence: float = 0.95

    @property
    def answered(self) -> int:
        """Queries answered."""
        return self.answered_correct + self.answered_wrong

    @property
    def n_queries(self) -> int:
        """Queries replayed."""
        return self.n_in_domain + self.n_out_of_domain

    @property
    def precision(self) -> float:
        """Share of answers with a gold entry (NaN when nothing is answered)."""
        return self.answered_correct / self.answered if self.answered else math.nan

    @property
    def precision_interval(self) -> tuple[float, float]:
        """Wilson score interval of :attr:`precision` (level :attr:`confidence`)."""
        return wilson_interval(self.answered_correct, self.answered, self.confidence)

    @property
    def coverage(self) -> float:
        """Share of in-domain queries answered."""
        return self.in_domain_answered / self.n_in_domain if self.n_in_domain else math.nan

    @property
    def clarify_rate(self) -> float:
        """Share of all queries asked back."""
        return self.clarified / self.n_queries if self.n_queries else math.nan

    @property
    def clarify_useful(self) -> float:
        """Among the queries asked back, the share whose options hold a gold entry (NaN when
        none is asked back)."""
        return self.clarified_useful / self.clarified if self.clarified else math.nan

    @property
    def handoff_rate(self) -> float:
        """Share of all queries handed off."""
        return self.handed_off / self.n_queries if self.n_queries else math.nan

    @property
    def resolved(self) -> float:
        """Share of in-domain queries that reach a gold entry at once or after one choice."""
        reached = self.answered_correct + self.clarified_useful
        return reached / self.n_in_domain if self.n_in_domain else math.nan

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready counts and shares (one row of :attr:`MarginCalibration.curves`)."""
        low, high = self.precision_interval
        return {
            "margin": self.margin,
            "threshold": self.threshold,
            "precision": self.precision,
            "precision_low": low,
            "precision_high": high,
            "coverage": self.coverage,
            "clarify_rate": self.clarify_rate,
            "clarify_useful": self.clarify_useful,
            "handoff_rate": self.handoff_rate,
            "resolved": self.resolved,
            "answered": self.answered,
            "answered_wrong": self.answered_wrong,
            "clarified": self.clarified,
            "clarified_useful": self.clarified_useful,
            "handed_off": self.handed_off,
            "n_queries": self.n_queries,
        }

    def summary(self) -> str:
        """One line: the margin and what it does."""
        return (
            f"margin {self.margin:.4f}: answered precision {self.precision:.3f} "
            f"({self.answered_correct}/{self.answered}), coverage {self.coverage:.3f}, "
            f"clarify rate {self.clarify_rate:.3f} ({self.clarified}/{self.n_queries}), "
            f"clarify useful {self.clarify_useful:.3f}, resolved {self.resolved:.3f}"
        )


def margin_point(
    results: Sequence[QueryResult],
    threshold: float,
    margin: float,
    *,
    k: int = ANSWER_K,
    confidence: float = 0.95,
) -> MarginPoint:
    """Replay the answer rule (:func:`~walletfaq.index.search.close_positions`) on the top
    ``k`` of each ranking in ``results`` at ``threshold`` and clarify ``margin``."""
    correct = wrong = clarified = useful = handed_off = answered_in_domain = 0
    for result in results:
        ranked, scores = result.ranked[:k], result.scores[:k]
        close = close_positions(scores, threshold, margin)
        if not close:
            handed_off += 1
        elif len(close) > 1:
            clarified += 1
            useful += any(ranked[i] in result.gold for i in close)
        else:
            answered_in_domain += result.in_domain
            if result.in_domain and ranked[0] in result.gold:
                correct += 1
            else:
                wrong += 1
    n_in_domain = sum(r.in_domain for r in results)
    return MarginPoint(
        margin=margin,
        threshold=threshold,
        answered_correct=correct,
        answered_wrong=wrong,
        clarified=clarified,
        clarified_useful=useful,
        handed_off=handed_off,
        n_in_domain=n_in_domain,
        n_out_of_domain=len(results) - n_in_domain,
        in_domain_answered=answered_in_domain,
        confidence=confidence,
    )


@dataclass(frozen=True)
class MarginRule:
    """A rule for choosing the clarify margin: the smallest margin (the fewest questions
    asked back) whose answered precision reaches ``target_precision`` while at most
    ``max_clarify_rate`` of all questions are asked back.

    Attributes:
        target_precision: the precision of answers to reach, in (0, 1].
        max_clarify_rate: the largest share of questions that may be asked back, in [0, 1].
    """

    target_precision: float
    max_clarify_rate: float

    def __post_init__(self) -> None:
        for name, value, low_open in (
            ("target_precision", self.target_precision, True),
            ("max_clarify_rate", self.max_clarify_rate, False),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (0 < value <= 1 if low_open else 0 <= value <= 1)
            ):
                span = "(0, 1]" if low_open else "[0, 1]"
                raise WalletFAQError(f"{name} must be a number in {span}, got {value!r}")

    def __str__(self) -> str:
        return (
            f"the smallest margin with answered precision >= {self.target_precision:g} and "
            f"clarify rate <= {self.max_clarify_rate:g}"
        )


MARGIN_RULE = MarginRule(target_precision=0.97, max_clarify_rate=0.10)
"""The rule the presets' clarify margins follow on the bundled evaluation set: ask back as few
questions as possible while lifting the precision of answers to 97 % (e5-small answers 94.1 %
right at its threshold alone: 39 wrong answers of 666), and never ask back more than one
question in ten (a clarify costs the user a click; past that the assistant feels like a quiz).
e5-small: margin 0.0075 — precision 0.941 → 0.972, coverage 0.994 → 0.907, 8.2 % of questions
asked back, the right entry among the options of 89.8 % of them. use-m3 cannot reach 0.97 within
the cap: its best there is 0.04 (precision 0.900 → 0.951, 9.4 % asked back)
(``benchmarks/clarify.py``)."""


@dataclass(frozen=True)
class MarginCalibration:
    """The chosen clarify margin and the curves it was chosen from.

    Attributes:
        chosen: the chosen point.
        rule: the rule applied.
        points: one point per margin tried, ascending.
        reached: whether some margin met the rule (if not, ``chosen`` is the best precision
            within the clarify cap and a :class:`CalibrationWarning` was issued).
    """

    chosen: MarginPoint
    rule: MarginRule
    points: tuple[MarginPoint, ...] = field(repr=False)
    reached: bool = True

    @property
    def margin(self) -> float:
        """The chosen clarify margin."""
        return self.chosen.margin

    @property
    def threshold(self) -> float:
        """The threshold the margins were replayed at."""
        return self.chosen.threshold

    @property
    def before(self) -> MarginPoint:
        """The point of margin 0 (never clarify), when it was tried, else the smallest."""
        return next((p for p in self.points if p.margin == 0), self.points[0])

    @property
    def curves(self) -> pd.DataFrame:
        """One row per margin (:meth:`MarginPoint.to_dict`), plus ``chosen`` (bool). Needs
        pandas (the ``eval`` extra)."""
        return margin_frame(self.points, chosen=self.margin)

    def plot(self) -> Figure:
        """Answered precision, coverage, clarify rate and clarify usefulness against the
        margin, the chosen margin marked (a matplotlib Figure; nothing is shown)."""
        import matplotlib

        matplotlib.use(matplotlib.get_backend())
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7, 4.2), layout="constrained")
        axes = figure.subplots()
        margins = [p.margin for p in self.points]
        for name, label in (
            ("precision", "answered precision"),
            ("coverage", "coverage (in-domain answered)"),
            ("clarify_rate", "clarify rate"),
            ("clarify_useful", "clarify useful (gold among options)"),
            ("resolved", "resolved (at once or after one choice)"),
        ):
            axes.plot(margins, [getattr(p, name) for p in self.points], marker=".", label=label)
        axes.axvline(self.margin, color="grey", linestyle="--", label=f"chosen {self.margin:g}")
        axes.axhline(self.rule.target_precision, color="grey", linestyle=":", linewidth=0.8)
        axes.set(
            xlabel="clarify margin (top1 - top2 cosine)",
            ylabel="share",
            ylim=(0, 1.02),
            title=f"Clarify margin at threshold {self.threshold:.4f} "
            f"({self.chosen.n_queries} queries)",
        )
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="center right")
        return figure

    def table(self, every: int = 1) -> str:
        """The curves as a text table (every ``every``-th margin, the chosen one always)."""
        header = (
            f"{'margin':>8} {'precision':>9} {'coverage':>8} {'clarify':>8} {'useful':>7} "
            f"{'resolved':>8}"
        )
        lines = [header]
        for position, p in enumerate(self.points):
            if position % max(1, every) and p.margin != self.margin:
                continue
            mark = "  <- chosen" if p.margin == self.margin else ""
            lines.append(
                f"{p.margin:>8.4f} {p.precision:>9.3f} {p.coverage:>8.3f} "
                f"{p.clarify_rate:>8.3f} {p.clarify_useful:>7.3f} {p.resolved:>8.3f}{mark}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """The rule, the margin chosen, and what it does compared with never clarifying."""
        status = "reached" if self.reached else "NOT reached (best precision within the cap)"
        return "\n".join(
            [
                f"clarify margin {self.margin:.4f} at threshold {self.threshold:.4f}: "
                f"{self.rule} {status}",
                f"  before: {self.before.summary()}",
                f"  chosen: {self.chosen.summary()}",
            ]
        )


def margin_frame(points: Sequence[MarginPoint], chosen: float | None = None) -> pd.DataFrame:
    """``points`` as a DataFrame, one row each (with a ``chosen`` column when given)."""
    import pandas as pd

    rows: list[dict[str, Any]] = [point.to_dict() for point in points]
    if chosen is not None:
        for row in rows:
            row["chosen"] = row["margin"] == chosen
    return pd.DataFrame(rows)


def checked_margins(margins: Iterable[float]) -> tuple[float, ...]:
    """``margins`` sorted, each a clarify margin (:func:`~walletfaq.index.search.margin_problem`).

    Raises:
        WalletFAQError: none given, or one is not a number in [0, 2].
    """
    if isinstance(margins, (str, bytes)) or not isinstance(margins, Iterable):
        raise WalletFAQError(f"margins must be a list of numbers, got {margins!r:.80}")
    values = list(margins)
    if not values:
        raise WalletFAQError("margins must name at least one margin, got none")
    for value in values:
        problem = margin_problem(value)
        if problem is not None:
            raise WalletFAQError(f"margins: {problem} (each is in [0, {MAX_CLARIFY_MARGIN:g}])")
    return tuple(sorted({float(value) for value in values}))


def _report(retriever: FAQRetriever, queries: CalibrationQueries) -> EvalReport:
    if isinstance(queries, EvalReport):
        check_report_matches(retriever, queries)
        return queries
    return evaluate(retriever, queries)


def margin_curves(
    retriever: FAQRetriever,
    queries: CalibrationQueries = None,
    *,
    threshold: float | None = None,
    margins: Sequence[float] = MARGIN_GRID,
) -> pd.DataFrame:
    """Per margin of ``margins``, what ``retriever.answer`` decides on labelled ``queries``
    (``None``: the bundled evaluation set; an :class:`~walletfaq.EvalReport` of
    ``retriever`` is reused) at ``threshold`` (default: the retriever's): one row per margin
    with ``precision`` (of answers), ``coverage``, ``clarify_rate``, ``clarify_useful``,
    ``handoff_rate``, ``resolved`` and the counts (:meth:`MarginPoint.to_dict`)."""
    cutoff = retriever.threshold if threshold is None else check_threshold(threshold)
    results = _report(retriever, queries).results
    return margin_frame([margin_point(results, cutoff, m) for m in checked_margins(margins)])


def calibrate_margin(
    retriever: FAQRetriever,
    queries: CalibrationQueries = None,
    rule: MarginRule | None = None,
    *,
    threshold: float | None = None,
    margins: Sequence[float] = MARGIN_GRID,
) -> MarginCalibration:
    """Choose the clarify margin of ``retriever`` by ``rule`` (default :data:`MARGIN_RULE`).

    Args:
        retriever: the retriever whose margin is chosen.
        queries: labelled queries as for :func:`~walletfaq.evaluate` (``None``: the bundled
            evaluation set), or an :class:`~walletfaq.EvalReport` of ``retriever`` (reused:
            nothing is encoded again).
        rule: the :class:`MarginRule`.
        threshold: the threshold the margins are replayed at (default: the retriever's; pass
            the one :func:`~walletfaq.calibrate` chose to calibrate both together).
        margins: the margins tried (each in [0, 2]).

    Returns:
        A :class:`MarginCalibration`; apply it with ``retriever.clarify_margin =
        result.margin``. When no margin meets the rule, the one with the best precision among
        those within the clarify cap (the smallest such) is chosen, ``reached`` is False and a
        :class:`CalibrationWarning` is issued.

    Raises:
        WalletFAQError: bad ``margins``; a report not of this retriever's corpus.
    """
    rule = MARGIN_RULE if rule is None else rule
    cutoff = retriever.threshold if threshold is None else check_threshold(threshold)
    results = _report(retriever, queries).results
    points = tuple(margin_point(results, cutoff, m) for m in checked_margins(margins))
    chosen, reached = choose_margin(points, rule)
    if not reached:
        warnings.warn(
            f"no clarify margin reaches {rule}; chose margin {chosen.margin:g} "
            f"({chosen.summary()}). Lower the target, allow more clarifies, or improve the "
            "retriever",
            CalibrationWarning,
            stacklevel=2,
        )
    return MarginCalibration(chosen=chosen, rule=rule, points=points, reached=reached)


def choose_margin(points: Sequence[MarginPoint], rule: MarginRule) -> tuple[MarginPoint, bool]:
    """The point ``rule`` chooses among ``points`` (ascending margins), and whether it meets
    the rule: the first whose clarify rate is within the cap and whose precision reaches the
    target; else, among those within the cap (or the first point if none is), the first with
    the best precision."""
    within = [p for p in points if p.clarify_rate <= rule.max_clarify_rate] or [points[0]]
    reaching = [p for p in within if p.precision >= rule.target_precision]
    if reaching:
        return reaching[0], True
    best = max((p.precision for p in within if not math.isnan(p.precision)), default=math.nan)
    return next((p for p in within if p.precision == best), within[0]), False
