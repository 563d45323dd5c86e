"""Retrieval-quality evaluation: labelled queries in, metrics, abstention and statistics out.

Queries are JSONL lines (or dicts) ``{"query": str, "gold": [entry ids], "style": str}``;
``gold: []`` marks an out-of-domain question that no entry answers. The bundled evaluation
set (:func:`bundled_queries_path`) is used when no queries are given.

Every report has two halves, each saying how many queries it covers:

- **Ranking metrics** (``report.metrics``) over the *in-domain* queries only: an out-of-domain
  question has no gold entry to rank. They are computed by `ir-measures
  <https://ir-measur.es>`_ (``trec_eval`` through ``pytrec_eval``; MS MARCO's MRR@10 for
  ``mrr@k``) from the ranking :meth:`FAQRetriever.ask_batch` returned, in that order.
- **Abstention** (``report.abstention``) over *all* queries, at the retriever's no-answer
  threshold: the share of out-of-domain queries refused, the share of in-domain queries
  answered (coverage) and how many answers were right (:class:`OperatingPoint`).

Metric names are ``family@k`` with any positive cutoff ``k``:

- ``recall@k``: share of queries with a gold entry in the top ``k`` (success@k, as in FAQ
  retrieval; with one gold id per query it is the usual recall@k). ``success@k`` is the same.
- ``gold_recall@k``: share of a query's gold entries found in the top ``k`` (trec_eval recall).
- ``mrr@k``: mean of ``1/rank`` of the first gold entry (0 when none is in the top ``k``).
- ``ndcg@k``: binary-relevance nDCG, ideal DCG from ``min(|gold|, k)`` hits.
- ``precision@k``: gold entries in the top ``k`` divided by ``k``.
- ``map@k``: mean average precision cut at ``k`` (sum of precision at each gold hit in the
  top ``k``, divided by ``|gold|``).

The default metrics are :data:`METRIC_KEYS` (``recall@1/3/5/10``, ``mrr@10``, ``ndcg@10``).

Statistics: :meth:`EvalReport.confidence_intervals` (seeded percentile bootstrap over
queries), :func:`paired_test` (seeded paired randomisation test of two systems on the same
queries), :func:`diff_reports` (which queries got better or worse, with both ranks), and TREC
files (:meth:`EvalReport.to_trec_run`, :meth:`EvalReport.to_trec_qrels`) for ``trec_eval``.

The metrics come from ir-measures (a dependency); the ``eval`` extra
(``pip install "walletfaq[eval]"``) adds pandas (frames, :func:`compare`) and matplotlib
(:meth:`EvalReport.plot`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.data.atomic import write_text_atomic
from walletfaq.data.queries import (
    LabelledQuery,
    as_labelled,
)
from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from walletfaq.retrieval.retriever import FAQRetriever

CUTOFFS = (1, 3, 5, 10)
"""Cutoffs of the default ``recall@k`` metrics (and of the ``hit@k`` columns of ``to_frame``)."""

METRIC_KEYS = ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10")
"""The default metrics, in the order reports list them."""

DEFAULT_METRICS = METRIC_KEYS

METRIC_FAMILIES = ("recall", "success", "gold_recall", "mrr", "ndcg", "precision", "map")
"""The ``family`` part of a metric name ``family@k``."""


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class QueryResult:
    """How one labelled query fared.

    Attributes:
        ranked: entry ids in the order the retriever returned them.
        scores: their scores, same order.
        rank: 1-based position of the first gold entry in ``ranked`` (``None``: not found, or
            an out-of-domain query).
        metrics: this query's value of every metric of the report (empty for an out-of-domain
            query, which has nothing to rank).
    """

    query: str
    gold: tuple[str, ...]
    style: str
    category: str
    ranked: tuple[str, ...]
    scores: tuple[float, ...]
    rank: int | None
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False, repr=False)

    @property
    def top_id(self) -> str | None:
        """The first-ranked entry id."""
        return self.ranked[0] if self.ranked else None

    @property
    def top_score(self) -> float:
        """Score of the first-ranked entry."""
        return self.scores[0] if self.scores else float("-inf")

    @property
    def in_domain(self) -> bool:
        """True when some entry answers the query."""
        return bool(self.gold)


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

    def summary(self) -> str:
        """A few lines saying each figure and how many queries it covers."""
        n_all = self.n_in_domain + self.n_out_of_domain
        level = f"{self.confidence:.0%}"
        lines = [f"abstention at threshold {self.threshold:.4f} ({n_all} queries):"]
        if self.n_out_of_domain:
            lines.append(
                f"  out-of-domain refused          {self.ood_abstained}/{self.n_out_of_domain}"
                f" = {self.ood_abstain:.3f}"
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


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class _Metric:
    name: str
    family: str
    k: int


def parse_metrics(metrics: Sequence[str] | str) -> tuple[str, ...]:
    """Check metric names (``family@k``) and return them normalised (lower case, no spaces).

    Raises:
        WalletFAQError: an unknown family, a missing or non-positive cutoff, or a repeat.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    names = tuple(_parse_metric(m).name for m in metrics)
    if not names:
        raise WalletFAQError("metrics: give at least one metric, e.g. ('recall@1', 'mrr@10')")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise WalletFAQError(f"metrics: {repeated} given more than once; list each metric once")
    return names


def _parse_metric(name: Any) -> _Metric:
    hint = (
        f"use 'family@k' with family one of {list(METRIC_FAMILIES)} and k a positive integer, "
        "e.g. 'ndcg@5'"
    )
    if not isinstance(name, str):
        raise WalletFAQError(f"metrics: got {type(name).__name__} {name!r}; {hint}")
    normal = name.strip().lower().replace(" ", "")
    family, at, cutoff = normal.partition("@")
    if family not in METRIC_FAMILIES or not at:
        raise WalletFAQError(f"metrics: unknown metric {name!r}; {hint}")
    if not cutoff.isdigit() or int(cutoff) < 1:
        raise WalletFAQError(f"metrics: {name!r} has no positive integer cutoff; {hint}")
    return _Metric(f"{family}@{int(cutoff)}", family, int(cutoff))


def _check_metric_in(report: EvalReport, metric: str) -> str:
    name = _parse_metric(metric).name
    if name not in report.metric_names:
        raise WalletFAQError(
            f"metric {metric!r} was not computed for this report (it has "
            f"{list(report.metric_names)}); pass metrics=(..., {name!r}) to evaluate()"
        )
    return name


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError:
        raise WalletFAQError(
            "the evaluation metrics need ir-measures, a dependency of walletfaq: "
            "pip install 'ir-measures>=0.4'"
        ) from None
    return ir_measures


def _score_queries(
    results: Sequence[QueryResult], metrics: Sequence[_Metric]
) -> list[dict[str, float]]:
    """Per-query metric values of the in-domain ``results`` (same order), via ir-measures.

    The run gives each ranked entry the score ``len(ranked) - position``, so the metrics see
    exactly the order the retriever returned (ties in the retriever's scores included).
    """
    ir = _ir_measures()
    measures = {
        "recall": ir.Success,
        "success": ir.Success,
        "gold_recall": ir.R,
        "mrr": ir.RR,
        "ndcg": ir.nDCG,
        "precision": ir.P,
        "map": ir.AP,
    }
    wanted = {m.name: measures[m.family] @ m.k for m in metrics}
    qids = [f"q{i}" for i in range(1, len(results) + 1)]
    qrels = {q: {g: 1 for g in r.gold} for q, r in zip(qids, results, strict=True)}
    run = {
        q: {doc: float(len(r.ranked) - i) for i, doc in enumerate(r.ranked)}
        for q, r in zip(qids, results, strict=True)
        if r.ranked
    }
    providers = (ir.pytrec_eval, ir.msmarco)
    by_provider: dict[int, list[Any]] = defaultdict(list)
    for measure in set(wanted.values()):
        chosen = next((i for i, p in enumerate(providers) if p.supports(measure)), None)
        if chosen is None:  # pragma: no cover - every family above is supported
            raise WalletFAQError(f"no ir-measures provider computes {measure}")
        by_provider[chosen].append(measure)
    values: dict[tuple[str, str], float] = {}
    for index, group in by_provider.items():
        for row in providers[index].iter_calc(group, qrels, run):
            values[(row.query_id, str(row.measure))] = float(row.value)
    # a query with no results at all is absent from ir-measures' output: it scores 0
    return [
        {name: values.get((q, str(measure)), 0.0) for name, measure in wanted.items()} for q in qids
    ]


def _success(results: Sequence[QueryResult], k: int) -> float:
    return sum(r.rank is not None and r.rank <= k for r in results) / len(results)


def _means(results: Sequence[QueryResult], names: Sequence[str]) -> dict[str, float]:
    return {name: float(np.mean([r.metrics[name] for r in results])) for name in names}


def _grouped(
    results: Sequence[QueryResult], attribute: str, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[QueryResult]] = defaultdict(list)
    for r in results:
        groups[getattr(r, attribute)].append(r)
    return {
        name: {**_means(items, names), "n": float(len(items))}
        for name, items in sorted(groups.items())
    }


# --------------------------------------------------------------------------- abstention


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


# --------------------------------------------------------------------------- evaluate


def evaluate(
    retriever: FAQRetriever,
    queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery] | None = None,
    k: int = 10,
    batch_size: int = 64,
    metrics: Sequence[str] = METRIC_KEYS,
) -> EvalReport:
    """Ask every query and score the rankings against the gold ids.

    Args:
        retriever: any :class:`~walletfaq.FAQRetriever`.
        queries: a JSONL path, dicts ``{"query", "gold"[, "style"]}`` or
            :class:`LabelledQuery` objects; ``None`` = the bundled evaluation set
            (:func:`bundled_queries_path`).
        k: results fetched per query (raised to the largest metric cutoff when lower).
        batch_size: questions encoded per batch.
        metrics: metric names ``family@k`` (see the module docstring), e.g.
            ``("recall@1", "mrr@10", "precision@3", "map@10", "ndcg@5")``.

    Returns:
        An :class:`EvalReport`: ranking metrics over the in-domain queries, abstention at
        ``retriever.threshold`` over all queries, per-query results in input order.

    Raises:
        CorpusError: malformed queries (file:line and field named).
        WalletFAQError: an unknown metric name; a gold id that does not exist in the
            retriever's corpus (the label or the corpus is wrong; scoring it would silently
            count as a miss); no in-domain query; ir-measures missing (the ``eval`` extra).
    """
    parsed = [_parse_metric(m) for m in parse_metrics(metrics)]
    labelled = as_labelled(queries)
    known = set(retriever.corpus.ids)
    for position, item in enumerate(labelled, start=1):
        unknown = [g for g in item.gold if g not in known]
        if unknown:
            raise WalletFAQError(
                f"query {position} ({item.query!r}) has gold id(s) {unknown} that are not in the "
                "retriever's corpus; fix the label or evaluate against the right corpus"
            )
    if not any(item.gold for item in labelled):
        raise WalletFAQError("every query is out of domain (gold: []); nothing to rank")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise WalletFAQError(f"batch_size must be a positive integer, got {batch_size!r}")
    depth = max(k, *CUTOFFS, *(m.k for m in parsed))
    results = []
    for start in range(0, len(labelled), batch_size):
        chunk = labelled[start : start + batch_size]
        for item, hits in zip(
            chunk, retriever.ask_batch([q.query for q in chunk], k=depth), strict=True
        ):
            ranked = tuple(h.id for h in hits)
            rank = next((i for i, h in enumerate(ranked, start=1) if h in item.gold), None)
            category = retriever.corpus[item.gold[0]].category if item.gold else "out-of-domain"
            results.append(
                QueryResult(
                    item.query,
                    item.gold,
                    item.style,
                    category,
                    ranked,
                    tuple(float(h.score) for h in hits),
                    rank,
                )
            )
    in_domain = [r for r in results if r.in_domain]
    scored = iter(_score_queries(in_domain, parsed))
    results = [replace(r, metrics=next(scored)) if r.in_domain else r for r in results]
    in_domain = [r for r in results if r.in_domain]
    names = tuple(m.name for m in parsed)
    return EvalReport(
        metrics=_means(in_domain, names),
        per_category=_grouped(in_domain, "category", names),
        per_style=_grouped(in_domain, "style", names),
        results=tuple(results),
        abstention=operating_point(results, float(retriever.threshold)),
        metric_names=names,
    )


# --------------------------------------------------------------------------- statistics


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


def _check_paired(a: EvalReport, b: EvalReport) -> None:
    if [(r.query, r.gold) for r in a.results] != [(r.query, r.gold) for r in b.results]:
        raise WalletFAQError(
            "the two reports were computed on different queries (or in a different order); "
            "evaluate both systems on the same query set to compare them"
        )


def paired_test(
    a: EvalReport,
    b: EvalReport,
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


def diff_reports(a: EvalReport, b: EvalReport, names: tuple[str, str] = ("A", "B")) -> ReportDiff:
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


def compare(
    retrievers: Mapping[str, FAQRetriever | EvalReport],
    queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery] | None = None,
    k: int = 10,
    *,
    metrics: Sequence[str] = METRIC_KEYS,
    baseline: str | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Evaluate several retrievers on the same queries, with intervals and significance.

    Args:
        retrievers: name -> :class:`~walletfaq.FAQRetriever` (evaluated here) or an
            :class:`EvalReport` already computed on the same queries (not re-encoded).
        queries: as for :func:`evaluate`; ``None`` = the bundled evaluation set.
        k: results fetched per query.
        metrics: metric names, as for :func:`evaluate`.
        baseline: the retriever the others are tested against (default: the first).
        confidence: level of the bootstrap intervals.
        n_resamples: resamples for the intervals and the paired randomisation test.
        seed: seed of both; the same seed gives the same frame.

    Returns:
        One row per retriever (input order). Per metric ``m``: ``m`` (mean over the in-domain
        queries), ``m low`` / ``m high`` (percentile bootstrap interval) and ``m p`` (p-value
        of the paired randomisation test against the baseline; NaN on the baseline's row; no
        correction for testing several metrics); then ``n`` (in-domain queries covered).
    """
    import pandas as pd

    if not retrievers:
        raise WalletFAQError("compare needs at least one retriever")
    names = parse_metrics(metrics)
    labelled = None
    reports: dict[str, EvalReport] = {}
    for name, system in retrievers.items():
        if isinstance(system, EvalReport):
            reports[name] = system
        else:
            labelled = as_labelled(queries) if labelled is None else labelled
            reports[name] = evaluate(system, labelled, k=k, metrics=names)
    base_name = next(iter(reports)) if baseline is None else baseline
    if base_name not in reports:
        raise WalletFAQError(f"baseline {baseline!r} is not one of {list(reports)}")
    base = reports[base_name]
    rows: dict[str, dict[str, float]] = {}
    for name, report in reports.items():
        _check_paired(base, report)
        intervals = report.confidence_intervals(names, confidence, n_resamples, seed)
        row: dict[str, float] = {}
        for metric in names:
            row[metric] = report.metrics[metric]
            row[f"{metric} low"] = intervals[metric].low
            row[f"{metric} high"] = intervals[metric].high
            row[f"{metric} p"] = (
                math.nan
                if name == base_name
                else paired_test(base, report, metric, n_resamples, confidence, seed).p_value
            )
        row["n"] = float(report.n_in_domain)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- TREC files


def _qids(results: Sequence[QueryResult]) -> list[str]:
    return [f"q{i}" for i in range(1, len(results) + 1)]


def _check_trec_token(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise WalletFAQError(
            f"{what} {value!r} is empty or contains whitespace, which the TREC format cannot "
            "hold; use ids without spaces"
        )
