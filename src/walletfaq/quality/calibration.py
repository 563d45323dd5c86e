"""The no-answer decision: pick the score below which the retriever abstains.

:func:`calibrate` evaluates a retriever on labelled queries (in-domain and out-of-domain,
``gold: []``) and picks the lowest threshold whose precision reaches the target (and, if asked,
that refuses enough out-of-domain questions). Each point of the trade-off curve is an
:class:`~walletfaq.quality.evaluation.OperatingPoint`:

- ``precision``: among answered questions (top score >= threshold), the share whose first
  result is a gold entry; out-of-domain questions that get answered count as wrong. It comes
  with a Wilson score interval (``precision_low``, ``precision_high``).
- ``coverage``: share of in-domain questions that are answered (correctly or not).
- ``ood_abstain``: share of out-of-domain questions that are (rightly) not answered.

A threshold chosen on few labelled queries is mostly noise: :func:`calibrate` warns
(:class:`CalibrationWarning`) below :data:`MIN_CALIBRATION_QUERIES` queries or
:data:`MIN_OUT_OF_DOMAIN_QUERIES` out-of-domain queries, and when no threshold reaches the
target.

:data:`PRESET_RULE` is the rule the presets' default thresholds were chosen by, on the bundled
evaluation set (``benchmarks/thresholds.py`` recomputes them); ``tune`` recalibrates the
threshold of what it returns by the same rule, and so does ``walletfaq calibrate``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletfaq.data.queries import LabelledQuery
from walletfaq.errors import WalletFAQError
from walletfaq.quality.evaluation.abstention import OperatingPoint, operating_point
from walletfaq.quality.evaluation.report import EvalReport
from walletfaq.quality.evaluation.runner import evaluate
from walletfaq.quality.evaluation.stats import wilson_interval

if TYPE_CHECKING:
    from walletfaq.retrieval.retriever import FAQRetriever

__all__ = [
    "MIN_CALIBRATION_QUERIES",
    "MIN_OUT_OF_DOMAIN_QUERIES",
    "PRESET_RULE",
    "Calibration",
    "CalibrationRule",
    "CalibrationWarning",
    "OperatingPoint",
    "calibrate",
    "check_report_matches",
    "operating_point",
    "wilson_interval",
]

MIN_CALIBRATION_QUERIES = 100
"""Below this many labelled queries :func:`calibrate` warns. With 100 queries a precision near
0.9 has a 95% interval about 12 points wide; with 10 it spans half of [0, 1]."""

MIN_OUT_OF_DOMAIN_QUERIES = 20
"""Below this many out-of-domain queries :func:`calibrate` warns: the share of them refused is
then known only to within about +-20 points."""


CalibrationQueries = (
    str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery] | EvalReport | None
)
"""What :func:`calibrate` takes as queries: those :func:`~walletfaq.evaluate` takes, or an
:class:`~walletfaq.EvalReport` already computed (nothing is encoded again)."""


class CalibrationWarning(UserWarning):
    """A calibration result that should not be trusted as it is (too few queries, target
    precision not reached)."""


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and the trade-off curve it was chosen from.

    Attributes:
        chosen: the chosen operating point (threshold, precision with its Wilson interval,
            coverage, share of out-of-domain queries refused, counts).
        target_precision: the precision asked for.
        curve: one operating point per candidate threshold, ascending.
        min_ood_abstain: the share of out-of-domain queries the threshold had to refuse.
        reached: whether some threshold met both requirements (if not, ``chosen`` is the
            best-precision fallback and a :class:`CalibrationWarning` was issued).
    """

    chosen: OperatingPoint
    target_precision: float
    curve: tuple[OperatingPoint, ...] = field(repr=False)
    min_ood_abstain: float = 0.0
    reached: bool = True

    @property
    def threshold(self) -> float:
        """The chosen score threshold."""
        return self.chosen.threshold

    @property
    def precision_interval(self) -> tuple[float, float]:
        """Wilson score interval of the chosen point's precision (level
        ``chosen.confidence``)."""
        return self.chosen.precision_interval

    @property
    def n_queries(self) -> int:
        """Labelled queries the threshold was chosen on (in- and out-of-domain)."""
        return self.chosen.n_in_domain + self.chosen.n_out_of_domain

    def summary(self) -> str:
        """The chosen threshold, what it does, and on how many queries that was measured."""
        goal = f"precision >= {self.target_precision:g}"
        if self.min_ood_abstain:
            goal += f" and out-of-domain refused >= {self.min_ood_abstain:g}"
        status = "reached" if self.reached else "NOT reached (best precision chosen)"
        return f"threshold {self.threshold:.4f}: {goal} {status}\n" + self.chosen.summary()


def calibrate(
    retriever: FAQRetriever,
    queries: CalibrationQueries = None,
    target_precision: float = 0.95,
    *,
    min_ood_abstain: float = 0.0,
    confidence: float = 0.95,
) -> Calibration:
    """Choose the lowest threshold whose precision is at least ``target_precision``.

    Args:
        retriever: the retriever whose threshold is calibrated.
        queries: labelled queries as for :func:`~walletfaq.evaluate` (``None`` = the bundled
            evaluation set), or an :class:`~walletfaq.EvalReport` already computed for
            ``retriever`` by ``evaluate(retriever, ...)``: its rankings and scores are reused,
            nothing is encoded again (``calibrate(r, evaluate(r))``).
        target_precision: the precision to reach, in (0, 1].
        min_ood_abstain: the share of out-of-domain queries the threshold must also refuse,
            in [0, 1] (e.g. 0.9); needs out-of-domain queries.
        confidence: level of the Wilson interval of each point's precision.

    Returns:
        A :class:`Calibration`. If no threshold meets the requirements, the one with the best
        precision is chosen (the lowest such; among those refusing at least
        ``min_ood_abstain`` if any does), ``reached`` is False and a warning is issued. Apply
        the result with ``retriever.threshold = calibration.threshold``.

    Warns:
        CalibrationWarning: fewer than :data:`MIN_CALIBRATION_QUERIES` queries or fewer than
            :data:`MIN_OUT_OF_DOMAIN_QUERIES` out-of-domain ones (the estimate is too noisy to
            rely on), or the target not reached.

    Raises:
        WalletFAQError: an argument out of range; ``min_ood_abstain > 0`` without
            out-of-domain queries; a report whose results are not from this retriever's corpus.
    """
    if not 0 < target_precision <= 1:
        raise WalletFAQError(f"target_precision must be in (0, 1], got {target_precision!r}")
    if not 0 <= min_ood_abstain <= 1:
        raise WalletFAQError(f"min_ood_abstain must be in [0, 1], got {min_ood_abstain!r}")
    if not 0 < confidence < 1:
        raise WalletFAQError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(queries, EvalReport):
        check_report_matches(retriever, queries)
        report = queries
    else:
        report = evaluate(retriever, queries)
    results = report.results
    n_ood = sum(not r.in_domain for r in results)
    if min_ood_abstain > 0 and n_ood == 0:
        raise WalletFAQError(
            f"min_ood_abstain={min_ood_abstain!r} needs out-of-domain queries (gold: []) and "
            "there are none; add some or pass min_ood_abstain=0"
        )
    candidates = sorted({r.top_score for r in results if math.isfinite(r.top_score)} | {0.0})
    curve = tuple(operating_point(results, t, confidence=confidence) for t in candidates)
    refusing = [p for p in curve if n_ood == 0 or p.ood_abstain >= min_ood_abstain]
    reaching = [p for p in refusing if p.precision >= target_precision]
    if reaching:
        chosen = reaching[0]
    else:
        pool = refusing or list(curve)
        best = max(p.precision for p in pool)
        chosen = next(p for p in pool if p.precision == best)
    calibration = Calibration(
        chosen=chosen,
        target_precision=target_precision,
        curve=curve,
        min_ood_abstain=min_ood_abstain,
        reached=bool(reaching),
    )
    _warn_if_unreliable(calibration, len(results), n_ood)
    return calibration


def check_report_matches(retriever: FAQRetriever, report: EvalReport) -> None:
    """Refuse (:class:`WalletFAQError`) a report naming entries ``retriever`` does not have:
    a report computed for another corpus."""
    known = set(retriever.corpus.ids)
    foreign = sorted({i for r in report.results for i in (*r.ranked, *r.gold) if i not in known})
    if foreign:
        raise WalletFAQError(
            f"the report names entry id(s) {foreign[:5]} that are not in this retriever's "
            "corpus; pass a report computed by evaluate() for this retriever"
        )


def _warn_if_unreliable(calibration: Calibration, n_queries: int, n_ood: int) -> None:
    chosen = calibration.chosen
    interval = (
        f"precision {chosen.precision:.3f} at threshold {chosen.threshold:.4f} has a "
        f"{chosen.confidence:.0%} Wilson interval of {chosen.precision_low:.3f}-"
        f"{chosen.precision_high:.3f} ({chosen.answered} answered queries)"
    )
    if n_queries < MIN_CALIBRATION_QUERIES:
        warnings.warn(
            f"calibrating on only {n_queries} labelled queries: {interval}; the threshold is "
            f"mostly noise, label at least {MIN_CALIBRATION_QUERIES} queries (in-domain and "
            "out-of-domain) or use the bundled set (queries=None)",
            CalibrationWarning,
            stacklevel=3,
        )
    if n_ood < MIN_OUT_OF_DOMAIN_QUERIES:
        warnings.warn(
            f"only {n_ood} out-of-domain queries (gold: []): the threshold is barely tested "
            f"against questions it should refuse; add at least {MIN_OUT_OF_DOMAIN_QUERIES}",
            CalibrationWarning,
            stacklevel=3,
        )
    if not calibration.reached:
        goal = f"precision {calibration.target_precision:g}"
        if calibration.min_ood_abstain:
            goal += f" with {calibration.min_ood_abstain:g} of out-of-domain queries refused"
        warnings.warn(
            f"no threshold reaches {goal}; chose the best: {interval}. Lower the target or "
            "improve the retriever",
            CalibrationWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class CalibrationRule:
    """A rule for choosing a threshold: the lowest one (the most questions answered) whose
    precision reaches ``target_precision`` and that refuses at least ``min_ood_abstain`` of the
    out-of-domain queries.

    Attributes:
        target_precision: the precision to reach (answered out-of-domain queries count as
            wrong).
        min_ood_abstain: the share of out-of-domain queries to refuse; dropped, with a
            :class:`CalibrationWarning` from :func:`calibrate`, when the queries have none.
    """

    target_precision: float
    min_ood_abstain: float

    def __str__(self) -> str:
        return (
            f"the lowest threshold with precision >= {self.target_precision:g} and "
            f"out-of-domain refused >= {self.min_ood_abstain:g}"
        )

    def calibrate(
        self,
        retriever: FAQRetriever,
        queries: CalibrationQueries = None,
    ) -> Calibration:
        """:func:`calibrate` ``retriever`` on ``queries`` by this rule (an
        :class:`~walletfaq.EvalReport` of ``retriever`` is reused, nothing re-encoded)."""
        report = queries if isinstance(queries, EvalReport) else evaluate(retriever, queries)
        has_ood = any(not r.in_domain for r in report.results)
        return calibrate(
            retriever,
            report,
            self.target_precision,
            min_ood_abstain=self.min_ood_abstain if has_ood else 0.0,
        )


PRESET_RULE = CalibrationRule(target_precision=0.9, min_ood_abstain=0.9)
"""The rule the presets' thresholds follow on the bundled evaluation set: answer as many
questions as possible while at least 90 % of answers are right and at least 90 % of
out-of-domain questions are refused (e5-small: 0.913, answering 661 of 665 in-domain
questions and 5 of 55 out-of-domain ones; ``benchmarks/thresholds.py``). An app for which a
wrong answer costs more than a hand-over to a human picks a stricter rule, e.g.
``calibrate(r, report, target_precision=0.95, min_ood_abstain=0.9)``: README, "Which
threshold"."""
