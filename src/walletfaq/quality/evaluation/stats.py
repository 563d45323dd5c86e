"""Statistics over queries: bootstrap intervals, the paired test, per-query differences.

- :meth:`EvalReport.confidence_intervals`: seeded percentile bootstrap over queries
  (:class:`ConfidenceInterval`; the resampling helpers are here).
- :func:`paired_test`: seeded paired randomisation (sign-flip) test of two systems on the same
  queries (:class:`PairedTest`, :func:`sign_flip_p_value`).
- :func:`diff_reports`: which queries got better or worse, with both ranks
  (:class:`ReportDiff` of :class:`QueryDiff`).
- :func:`wilson_interval`: the interval of a proportion (the precision of an
  :class:`~walletfaq.quality.evaluation.abstention.OperatingPoint`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from walletfaq.errors import WalletFAQError
from walletfaq.quality.evaluation.metrics import _parse_metric

if TYPE_CHECKING:
    import pandas as pd

    from walletfaq.quality.evaluation.results import PerQueryResults


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate and its interval.

    Attributes:
        estimate: the mean over the queries.
        low: lower end of the interval.
        high: upper end of the interval.
        confidence: level of the interval (e.g. 0.95).
        n: number of queries the estimate covers.
        method: how the interval was computed.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str = "percentile bootstrap over queries"


@dataclass(frozen=True)
class PairedTest:
    """Paired significance test of two systems' per-query scores on the same queries.

    Attributes:
        metric: the metric compared.
        mean_a: mean of system A (the baseline).
        mean_b: mean of system B.
        difference: ``mean_b - mean_a``.
        difference_low: lower end of the bootstrap interval of ``difference``.
        difference_high: upper end of that interval.
        p_value: two-sided p-value of "no difference" (paired randomisation test: the sign of
            each per-query difference is flipped at random ``n_resamples`` times).
        n: number of queries paired.
        n_better: queries where B scores higher than A.
        n_worse: queries where B scores lower than A.
        n_resamples: random resamples used (for the p-value and the interval).
        confidence: level of the interval.
        seed: seed of the random generator.
    """

    metric: str
    mean_a: float
    mean_b: float
    difference: float
    difference_low: float
    difference_high: float
    p_value: float
    n: int
    n_better: int
    n_worse: int
    n_resamples: int
    confidence: float
    seed: int

    def significant(self, alpha: float = 0.05) -> bool:
        """True when ``p_value < alpha`` (no correction for testing several metrics)."""
        return self.p_value < alpha


@dataclass(frozen=True)
class QueryDiff:
    """One in-domain query as ranked by two systems (A = baseline, B = candidate).

    Attributes:
        rank_a: 1-based rank of the first gold entry for A (``None``: not in A's results).
        rank_b: the same for B.
        top_a: A's first result.
        top_b: B's first result.
    """

    query: str
    gold: tuple[str, ...]
    style: str
    category: str
    rank_a: int | None
    rank_b: int | None
    top_a: str | None
    top_b: str | None

    @property
    def change(self) -> str:
        """``"better"`` when B ranks a gold entry higher than A, ``"worse"`` when lower,
        ``"same"`` otherwise (a gold entry not found counts as below every rank)."""
        a = math.inf if self.rank_a is None else self.rank_a
        b = math.inf if self.rank_b is None else self.rank_b
        return "better" if b < a else "worse" if b > a else "same"


@dataclass(frozen=True)
class ReportDiff:
    """Per-query differences between two reports on the same queries (in-domain queries)."""

    name_a: str
    name_b: str
    items: tuple[QueryDiff, ...]

    @property
    def better(self) -> list[QueryDiff]:
        """Queries where B ranks a gold entry higher than A."""
        return [d for d in self.items if d.change == "better"]

    @property
    def worse(self) -> list[QueryDiff]:
        """Queries where B ranks a gold entry lower than A."""
        return [d for d in self.items if d.change == "worse"]

    @property
    def unchanged(self) -> list[QueryDiff]:
        """Queries with the same rank in both."""
        return [d for d in self.items if d.change == "same"]

    def to_frame(self, changed_only: bool = True) -> pd.DataFrame:
        """One row per query (changed ones only by default): query, gold, style, category,
        ``rank <A>``, ``rank <B>``, ``top <A>``, ``top <B>``, change; worse ones first."""
        import pandas as pd

        items = [d for d in self.items if d.change != "same"] if changed_only else self.items
        order = {"worse": 0, "better": 1, "same": 2}
        rows = [
            {
                "query": d.query,
                "gold": list(d.gold),
                "style": d.style,
                "category": d.category,
                f"rank {self.name_a}": d.rank_a,
                f"rank {self.name_b}": d.rank_b,
                f"top {self.name_a}": d.top_a,
                f"top {self.name_b}": d.top_b,
                "change": d.change,
            }
            for d in sorted(items, key=lambda d: order[d.change])
        ]
        columns = ["query", "gold", "style", "category", f"rank {self.name_a}"]
        columns += [f"rank {self.name_b}", f"top {self.name_a}", f"top {self.name_b}", "change"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        """One line: how many queries got better, worse, stayed the same."""
        return (
            f"{self.name_b} vs {self.name_a} on {len(self.items)} in-domain queries: "
            f"{len(self.better)} better, {len(self.worse)} worse, {len(self.unchanged)} same"
        )


def _check_resampling(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise WalletFAQError(f"confidence must be in (0, 1), got {confidence!r}")
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise WalletFAQError(f"n_resamples must be a positive integer, got {n_resamples!r}")


def _bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _check_paired(a: PerQueryResults, b: PerQueryResults) -> None:
    if [(r.query, r.gold) for r in a.results] != [(r.query, r.gold) for r in b.results]:
        raise WalletFAQError(
            "the two reports were computed on different queries (or in a different order); "
            "evaluate both systems on the same query set to compare them"
        )


def paired_test(
    a: PerQueryResults,
    b: PerQueryResults,
    metric: str = "recall@1",
    n_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedTest:
    """Is B's ``metric`` different from A's on the same queries?

    Two-sided paired randomisation (sign-flip permutation) test on the per-query differences
    ``b_i - a_i``: under "no difference" each difference is as likely positive as negative,
    so the p-value is the share of ``n_resamples`` random sign flips whose mean difference is
    at least as far from 0 as the observed one (``(1 + count) / (1 + n_resamples)``). The
    interval of the difference is a paired percentile bootstrap. Seeded: the same seed gives
    the same result.

    Raises:
        WalletFAQError: the reports cover different queries, or ``metric`` is missing in one.
    """
    _check_paired(a, b)
    _check_resampling(confidence, n_resamples)
    values_a, values_b = a.per_query(metric), b.per_query(metric)
    name = _parse_metric(metric).name
    differences = values_b - values_a
    n = len(differences)
    observed = float(differences.mean())
    p_value = sign_flip_p_value(differences, n_resamples, seed)
    indices = _bootstrap_indices(n, min(n_resamples, 5000), seed)
    low, high = _percentile_interval(differences[indices].mean(axis=1), confidence)
    return PairedTest(
        metric=name,
        mean_a=float(values_a.mean()),
        mean_b=float(values_b.mean()),
        difference=observed,
        difference_low=low,
        difference_high=high,
        p_value=p_value,
        n=n,
        n_better=int(np.sum(differences > 0)),
        n_worse=int(np.sum(differences < 0)),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )


def sign_flip_p_value(differences: np.ndarray, n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired sign-flip p-value of "mean(differences) is 0": the share of
    ``n_resamples`` random sign flips whose mean is at least as far from 0 as the observed
    one, ``(1 + count) / (1 + n_resamples)``; 1.0 when every difference is 0. Seeded."""
    differences = np.asarray(differences, dtype=np.float64)
    if not differences.any():
        return 1.0
    n = len(differences)
    observed = abs(float(differences.mean()))
    rng = np.random.default_rng(seed)
    extreme = 0
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, n))
        flipped = np.abs((signs * differences).mean(axis=1))
        extreme += int(np.sum(flipped >= observed - 1e-12))
    return (1 + extreme) / (1 + n_resamples)


def diff_reports(
    a: PerQueryResults, b: PerQueryResults, names: tuple[str, str] = ("A", "B")
) -> ReportDiff:
    """Which in-domain queries B (the candidate) ranks better or worse than A (the baseline),
    with both ranks and both first results.

    Raises:
        WalletFAQError: the reports cover different queries.
    """
    _check_paired(a, b)
    items = tuple(
        QueryDiff(ra.query, ra.gold, ra.style, ra.category, ra.rank, rb.rank, ra.top_id, rb.top_id)
        for ra, rb in zip(a.results, b.results, strict=True)
        if ra.in_domain
    )
    return ReportDiff(names[0], names[1], items)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (``(0, 1)`` when ``n == 0``)."""
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))
