"""Metric names, their parsing, and their scoring by ir-measures.

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

They are computed over the *in-domain* queries only (an out-of-domain question has no gold
entry to rank) by `ir-measures <https://ir-measur.es>`_ (a dependency: ``trec_eval`` through
``pytrec_eval``; MS MARCO's MRR@10 for ``mrr@k``) from the ranking
:meth:`FAQRetriever.ask_batch` returned, in that order; then averaged overall, per category
and per query style.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    from walletfaq.quality.evaluation.results import QueryResult

CUTOFFS = (1, 3, 5, 10)
"""Cutoffs of the default ``recall@k`` metrics (and of the ``hit@k`` columns of ``to_frame``)."""

METRIC_KEYS = ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10")
"""The default metrics, in the order reports list them."""

DEFAULT_METRICS = METRIC_KEYS

METRIC_FAMILIES = ("recall", "success", "gold_recall", "mrr", "ndcg", "precision", "map")
"""The ``family`` part of a metric name ``family@k``."""


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


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError:
        raise WalletFAQError(
            "the evaluation metrics need ir-measures, a dependency of walletfaq: "
            "pip install 'ir-measures>=0.4'"
        ) from None
    return ir_measures


def _qids(results: Sequence[QueryResult]) -> list[str]:
    """Query ids ``q1``, ``q2``, ... in input order: of the ir-measures run and of the TREC
    files a report writes."""
    return [f"q{i}" for i in range(1, len(results) + 1)]


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
    qids = _qids(results)
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
