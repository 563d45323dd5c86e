"""Abstention: what answering only at or above a score threshold does.

A report's abstention half (``report.abstention``) covers *all* queries, at the retriever's
no-answer threshold: the share of out-of-domain queries refused, the share of in-domain
queries answered (coverage) and how many answers were right (:class:`OperatingPoint`).
:func:`operating_point` computes it at any threshold (:meth:`EvalReport.at_threshold`, and
each point of :func:`~walletfaq.quality.calibration.calibrate`'s trade-off curve).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from walletfaq.quality.evaluation.stats import wilson_interval

if TYPE_CHECKING:
    from walletfaq.quality.evaluation.results import QueryResult


@dataclass(frozen=True)
class OperatingPoint:
    """Outcome of answering only the queries whose top score is at least ``threshold``.

    Attributes:
        threshold: the score threshold.
        precision: among answered queries (in- and out-of-domain), the share whose first
            result is a gold entry; an answered out-of-domain query counts as wrong. 1.0 when
            nothing is answered (then ``precision_low``/``precision_high`` are 0 and 1).
        coverage: share of the ``n_in_domain`` in-domain queries that are answered.
        ood_abstain: share of the ``n_out_of_domain`` out-of-domain queries that are (rightly)
            refused; NaN when there are none.
        answered_correct: answered queries whose first result is a gold entry.
        answered_wrong: answered queries whose first result is not (out-of-domain included).
        abstained: refused queries (in- and out-of-domain).
        n_in_domain: in-domain queries evaluated.
        n_out_of_domain: out-of-domain queries evaluated.
        ood_abstained: out-of-domain queries refused.
        confidence: level of the precision interval.
        precision_low: lower end of the Wilson score interval of ``precision``.
        precision_high: upper end of that interval.
    """

    threshold: float
    precision: float
    coverage: float
    ood_abstain: float
    answered_correct: int
    answered_wrong: int
    abstained: int
    n_in_domain: int = 0
    n_out_of_domain: int = 0
    ood_abstained: int = 0
    confidence: float = 0.95
    precision_low: float = 0.0
    precision_high: float = 1.0

    @property
    def answered(self) -> int:
        """Queries answered (top score at least the threshold)."""
        return self.answered_correct + self.answered_wrong

    @property
    def in_domain_answered(self) -> int:
        """In-domain queries answered (correctly or not)."""
        return self.n_in_domain - (self.abstained - self.ood_abstained)

    @property
    def in_domain_precision(self) -> float:
        """Among answered in-domain queries, the share answered with a gold entry first
        (NaN when none is answered)."""
        answered = self.in_domain_answered
        return self.answered_correct / answered if answered else math.nan

    @property
    def precision_interval(self) -> tuple[float, float]:
        """``(precision_low, precision_high)``."""
        return (self.precision_low, self.precision_high)

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready counts and shares (``walletfaq eval --json``)."""
        return {
            "threshold": self.threshold,
            "answered": self.answered,
            "answered_correct": self.answered_correct,
            "in_domain_answered": self.in_domain_answered,
            "n_in_domain": self.n_in_domain,
            "coverage": self.coverage,
            "out_of_domain_accepted": self.n_out_of_domain - self.ood_abstained,
            "n_out_of_domain": self.n_out_of_domain,
            "precision": self.precision,
            "precision_low": self.precision_low,
            "precision_high": self.precision_high,
        }

    def summary(self) -> str:
        """A few lines saying each figure and how many queries it covers."""
        n_all = self.n_in_domain + self.n_out_of_domain
        level = f"{self.confidence:.0%}"
        lines = [f"abstention at threshold {self.threshold:.4f} ({n_all} queries):"]
        if self.n_out_of_domain:
            lines.append(
                f"  out-of-domain refused          {self.ood_abstained}/{self.n_out_of_domain}"
                f" = {self.ood_abstain:.3f} ({self.n_out_of_domain - self.ood_abstained} "
                "accepted)"
            )
        else:
            lines.append("  out-of-domain refused          n/a (no out-of-domain query)")
        lines.append(
            f"  in-domain answered (coverage)  {self.in_domain_answered}/{self.n_in_domain}"
            f" = {self.coverage:.3f}"
        )
        lines.append(
            f"  in-domain answers correct      {self.answered_correct}/{self.in_domain_answered}"
            f" = {self.in_domain_precision:.3f}"
        )
        lines.append(
            f"  precision of all answers       {self.answered_correct}/{self.answered}"
            f" = {self.precision:.3f} ({level} Wilson interval {self.precision_low:.3f}"
            f"-{self.precision_high:.3f}; answered out-of-domain queries count as wrong)"
        )
        return "\n".join(lines)


def operating_point(
    results: Sequence[QueryResult], threshold: float, confidence: float = 0.95
) -> OperatingPoint:
    """Precision/coverage of answering the queries in ``results`` at ``threshold``.

    A query is answered when its top score is at least ``threshold``; it is answered
    correctly when it is in domain and its first result is a gold entry.
    """
    correct = wrong = abstained = ood_abstained = 0
    in_domain = sum(r.in_domain for r in results)
    ood = len(results) - in_domain
    for r in results:
        if r.top_score < threshold:
            abstained += 1
            ood_abstained += not r.in_domain
        elif r.in_domain and r.rank == 1:
            correct += 1
        else:
            wrong += 1
    answered = correct + wrong
    answered_in_domain = in_domain - (abstained - ood_abstained)
    low, high = wilson_interval(correct, answered, confidence)
    return OperatingPoint(
        threshold=threshold,
        precision=correct / answered if answered else 1.0,
        coverage=answered_in_domain / in_domain if in_domain else math.nan,
        ood_abstain=ood_abstained / ood if ood else math.nan,
        answered_correct=correct,
        answered_wrong=wrong,
        abstained=abstained,
        n_in_domain=in_domain,
        n_out_of_domain=ood,
        ood_abstained=ood_abstained,
        confidence=confidence,
        precision_low=low,
        precision_high=high,
    )
