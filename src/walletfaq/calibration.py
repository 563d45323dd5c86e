"""The no-answer decision: pick the score below which the retriever abstains.

:func:`calibrate` evaluates a retriever on labelled queries (in-domain and out-of-domain,
``gold: []``) and picks the lowest threshold whose precision reaches the target:

- ``precision``: among answered questions (top score >= threshold), the share whose first
  result is a gold entry; out-of-domain questions that get answered count as wrong.
- ``coverage``: share of in-domain questions that are answered (correctly or not).
- ``ood_abstain``: share of out-of-domain questions that are (rightly) not answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WalletFAQError
from .evaluation import EvalReport, LabelledQuery, QueryResult, evaluate

if TYPE_CHECKING:
    from .retriever import FAQRetriever


@dataclass(frozen=True)
class OperatingPoint:
    """Outcome of answering only when the top score is at least ``threshold``."""

    threshold: float
    precision: float
    coverage: float
    ood_abstain: float
    answered_correct: int
    answered_wrong: int
    abstained: int


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and the trade-off curve it was chosen from."""

    chosen: OperatingPoint
    target_precision: float
    curve: tuple[OperatingPoint, ...] = field(repr=False)

    @property
    def threshold(self) -> float:
        """The chosen score threshold."""
        return self.chosen.threshold


def operating_point(results: Sequence[QueryResult], threshold: float) -> OperatingPoint:
    """Precision/coverage of answering the queries in ``results`` at ``threshold``."""
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
    return OperatingPoint(
        threshold=threshold,
        precision=correct / answered if answered else 1.0,
        coverage=answered_in_domain / in_domain if in_domain else 0.0,
        ood_abstain=ood_abstained / ood if ood else 1.0,
        answered_correct=correct,
        answered_wrong=wrong,
        abstained=abstained,
    )


def calibrate(
    retriever: FAQRetriever,
    queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery] | EvalReport,
    target_precision: float = 0.95,
) -> Calibration:
    """Choose the lowest threshold whose precision is at least ``target_precision``.

    If no threshold reaches the target, the one with the best precision is chosen (the
    lowest such). ``queries`` may be an :class:`EvalReport` already computed for
    ``retriever``. Apply the result with ``retriever.threshold = calibration.threshold``.
    """
    if not 0 < target_precision <= 1:
        raise WalletFAQError(f"target_precision must be in (0, 1], got {target_precision!r}")
    report = queries if isinstance(queries, EvalReport) else evaluate(retriever, queries)
    results = report.results
    candidates = sorted({r.top_score for r in results} | {0.0})
    curve = tuple(operating_point(results, t) for t in candidates)
    reaching = [p for p in curve if p.precision >= target_precision]
    if reaching:
        chosen = reaching[0]
    else:
        best = max(p.precision for p in curve)
        chosen = next(p for p in curve if p.precision == best)
    return Calibration(chosen=chosen, target_precision=target_precision, curve=curve)
