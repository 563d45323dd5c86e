"""Reports: what one retriever scored on one query set (:class:`EvalReport`, made of
:class:`~walletfaq.quality.evaluation.results.QueryResult` rows).

Every report has two halves, each saying how many queries it covers:

- **Ranking metrics** (``report.metrics``) over the *in-domain* queries only: an out-of-domain
  question has no gold entry to rank (:mod:`walletfaq.quality.evaluation.metrics`).
- **Abstention** (``report.abstention``) over *all* queries, at the retriever's no-answer
  threshold (:mod:`walletfaq.quality.evaluation.abstention`).

A report also gives intervals and per-query differences
(:mod:`walletfaq.quality.evaluation.stats`), frames (pandas) and a plot (matplotlib), both
from the ``eval`` extra (``pip install "walletfaq[eval]"``), and TREC files
(:meth:`EvalReport.to_trec_run`, :meth:`EvalReport.to_trec_qrels`) for ``trec_eval``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.data.atomic import write_text_atomic
from walletfaq.errors import WalletFAQError
from walletfaq.quality.evaluation.abstention import OperatingPoint, operating_point
from walletfaq.quality.evaluation.metrics import (
    CUTOFFS,
    METRIC_KEYS,
    _parse_metric,
    _qids,
    _success,
)
from walletfaq.quality.evaluation.results import QueryResult
from walletfaq.quality.evaluation.stats import (
    ConfidenceInterval,
    ReportDiff,
    _bootstrap_indices,
    _check_resampling,
    _percentile_interval,
    diff_reports,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class EvalReport:
    """Metrics of one retriever on one query set.

    Attributes:
        metrics: ranking metrics (default ``recall@1/3/5/10``, ``mrr@10``, ``ndcg@10``), means
            over the :attr:`n_in_domain` in-domain queries.
        per_category: the same metrics per gold entry category, each with ``n`` (queries).
        per_style: the same metrics per query style, each with ``n``.
        results: one :class:`QueryResult` per query, in input order.
        abstention: answering at the retriever's threshold, over all queries (in- and
            out-of-domain); ``None`` only for reports built by hand.
        metric_names: the metrics computed, in order.
    """

    metrics: dict[str, float]
    per_category: dict[str, dict[str, float]]
    per_style: dict[str, dict[str, float]]
    results: tuple[QueryResult, ...] = field(repr=False)
    abstention: OperatingPoint | None = None
    metric_names: tuple[str, ...] = METRIC_KEYS

    @property
    def failures(self) -> list[QueryResult]:
        """In-domain queries whose first result is not a gold entry."""
        return [r for r in self.results if r.in_domain and r.rank != 1]

    @property
    def n_in_domain(self) -> int:
        """Number of queries with at least one gold entry (what the ranking metrics cover)."""
        return sum(r.in_domain for r in self.results)

    @property
    def n_out_of_domain(self) -> int:
        """Number of out-of-domain queries (``gold: []``), left out of the ranking metrics."""
        return len(self.results) - self.n_in_domain

    def at_threshold(self, threshold: float, confidence: float = 0.95) -> OperatingPoint:
        """Abstention figures if the retriever answered only at ``threshold`` or above."""
        return operating_point(self.results, threshold, confidence=confidence)

    def per_query(self, metric: str) -> np.ndarray:
        """The values of ``metric`` for each in-domain query, in input order."""
        name = _check_metric_in(self, metric)
        return np.array([r.metrics[name] for r in self.results if r.in_domain], dtype=float)

    def confidence_intervals(
        self,
        metrics: Sequence[str] | None = None,
        confidence: float = 0.95,
        n_resamples: int = 2000,
        seed: int = 0,
    ) -> dict[str, ConfidenceInterval]:
        """Percentile-bootstrap intervals of the metrics (queries resampled with replacement).

        Args:
            metrics: which metrics (default: all of the report's).
            confidence: interval level in (0, 1).
            n_resamples: bootstrap resamples.
            seed: seed of the random generator; the same seed gives the same intervals.
        """
        names = list(self.metric_names if metrics is None else metrics)
        _check_resampling(confidence, n_resamples)
        indices = _bootstrap_indices(self.n_in_domain, n_resamples, seed)
        out = {}
        for name in names:
            values = self.per_query(name)
            low, high = _percentile_interval(values[indices].mean(axis=1), confidence)
            out[name] = ConfidenceInterval(float(values.mean()), low, high, confidence, len(values))
        return out

    def summary(self) -> str:
        """What was measured on how many queries: ranking metrics, then abstention."""
        lines = [
            f"{len(self.results)} queries: {self.n_in_domain} in-domain, "
            f"{self.n_out_of_domain} out-of-domain (gold: [])",
            f"ranking metrics over the {self.n_in_domain} in-domain queries "
            "(out-of-domain queries have no gold entry to rank):",
        ]
        lines += [f"  {name:<14} {self.metrics[name]:.3f}" for name in self.metric_names]
        if self.abstention is not None:
            lines.append(self.abstention.summary())
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per query: query, gold, style, category, top id/score, rank, in_domain,
        answered (at the report's threshold), hit@1/3/5/10 and every metric (NaN for
        out-of-domain queries)."""
        import pandas as pd

        threshold = self.abstention.threshold if self.abstention is not None else None
        rows = []
        for r in self.results:
            row: dict[str, Any] = {
                "query": r.query,
                "gold": list(r.gold),
                "style": r.style,
                "category": r.category,
                "top_id": r.top_id,
                "top_score": r.top_score,
                "rank": r.rank,
                "in_domain": r.in_domain,
            }
            if threshold is not None:
                row["answered"] = r.top_score >= threshold
            for k in CUTOFFS:
                row[f"hit@{k}"] = r.rank is not None and r.rank <= k
            for name in self.metric_names:
                row[name] = r.metrics.get(name, math.nan)
            rows.append(row)
        return pd.DataFrame(rows)

    def metrics_frame(self) -> pd.DataFrame:
        """Overall, per-category and per-style metrics in one table (``group``, ``name``,
        metrics, ``n`` = in-domain queries each row covers)."""
        import pandas as pd

        rows = [{"group": "overall", "name": "all", **self.metrics, "n": float(self.n_in_domain)}]
        rows += [{"group": "category", "name": n, **m} for n, m in self.per_category.items()]
        rows += [{"group": "style", "name": n, **m} for n, m in self.per_style.items()]
        return pd.DataFrame(rows, columns=["group", "name", *self.metric_names, "n"])

    def plot(self) -> Figure:
        """Recall@k curve and per-category Recall@1 bars (matplotlib Figure)."""
        import matplotlib

        matplotlib.use(matplotlib.get_backend())
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 4), layout="constrained")
        curve, bars = figure.subplots(1, 2, width_ratios=(1, 2))
        ks = list(range(1, 11))
        in_domain = [r for r in self.results if r.in_domain]
        curve.plot(ks, [_success(in_domain, k) for k in ks], marker="o")
        curve.set(
            xlabel="k",
            ylabel="Recall@k",
            title=f"Recall@k ({len(in_domain)} in-domain queries)",
            ylim=(0, 1.02),
        )
        curve.grid(alpha=0.3)
        recall1 = {
            name: _success([r for r in in_domain if r.category == name], 1)
            for name in self.per_category
        }
        names = sorted(recall1, key=lambda n: recall1[n])
        bars.barh(names, [recall1[n] for n in names])
        bars.set(xlabel="Recall@1", title="Recall@1 per category", xlim=(0, 1))
        return figure

    def diff(self, other: EvalReport, names: tuple[str, str] = ("A", "B")) -> ReportDiff:
        """:func:`diff_reports` with this report as A (baseline) and ``other`` as B."""
        return diff_reports(self, other, names=names)

    def to_trec_run(self, path: str | Path, run_name: str = "walletfaq") -> Path:
        """Write the rankings as a TREC run file (``qid Q0 docid rank score run_name``).

        Query ids are ``q<position>`` (1-based, input order), the same as
        :meth:`to_trec_qrels`; every query is written, out-of-domain ones included (trec_eval
        skips queries without qrels). Scores are the retriever's; trec_eval re-sorts by score
        and breaks exact ties by document id, so on tied scores its ranking can differ from
        the one this report scored. Returns the path written (atomically).
        """
        _check_trec_token(run_name, "run_name")
        lines = []
        for qid, r in zip(_qids(self.results), self.results, strict=True):
            for rank, (doc, score) in enumerate(zip(r.ranked, r.scores, strict=True), start=1):
                _check_trec_token(doc, f"entry id of query {qid}")
                lines.append(f"{qid} Q0 {doc} {rank} {score:.9g} {run_name}\n")
        return write_text_atomic(Path(path), "".join(lines))

    def to_trec_qrels(self, path: str | Path) -> Path:
        """Write the gold labels as a TREC qrels file (``qid 0 docid 1``), in-domain queries
        only; query ids as in :meth:`to_trec_run`. Returns the path written (atomically)."""
        lines = []
        for qid, r in zip(_qids(self.results), self.results, strict=True):
            for doc in r.gold:
                _check_trec_token(doc, f"gold id of query {qid}")
                lines.append(f"{qid} 0 {doc} 1\n")
        return write_text_atomic(Path(path), "".join(lines))


def _check_metric_in(report: EvalReport, metric: str) -> str:
    name = _parse_metric(metric).name
    if name not in report.metric_names:
        raise WalletFAQError(
            f"metric {metric!r} was not computed for this report (it has "
            f"{list(report.metric_names)}); pass metrics=(..., {name!r}) to evaluate()"
        )
    return name


def _check_trec_token(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise WalletFAQError(
            f"{what} {value!r} is empty or contains whitespace, which the TREC format cannot "
            "hold; use ids without spaces"
        )
