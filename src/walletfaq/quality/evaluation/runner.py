"""Evaluate retrievers on labelled queries: :func:`evaluate` one, :func:`compare` several.

Queries are JSONL lines (or dicts) ``{"query": str, "gold": [entry ids], "style": str}``;
``gold: []`` marks an out-of-domain question that no entry answers. The bundled evaluation
set (:func:`~walletfaq.data.queries.bundled_queries_path`) is used when no queries are given.
:func:`compare` needs pandas (the ``eval`` extra: ``pip install "walletfaq[eval]"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletfaq._progress import progress_bar
from walletfaq.data.queries import LabelledQuery, as_labelled
from walletfaq.errors import WalletFAQError
from walletfaq.quality.evaluation.abstention import operating_point
from walletfaq.quality.evaluation.comparison import comparison_frame_class
from walletfaq.quality.evaluation.metrics import (
    CUTOFFS,
    METRIC_KEYS,
    _grouped,
    _means,
    _parse_metric,
    _score_queries,
    parse_metrics,
)
from walletfaq.quality.evaluation.report import EvalReport
from walletfaq.quality.evaluation.results import QueryResult
from walletfaq.quality.evaluation.stats import _check_paired, paired_test

if TYPE_CHECKING:
    import pandas as pd

    from walletfaq.retrieval.retriever import FAQRetriever


def evaluate(
    retriever: FAQRetriever,
    queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery] | None = None,
    k: int = 10,
    batch_size: int = 64,
    metrics: Sequence[str] = METRIC_KEYS,
    *,
    progress: bool = True,
    desc: str = "evaluating",
) -> EvalReport:
    """Ask every query and score the rankings against the gold ids.

    Args:
        retriever: any :class:`~walletfaq.FAQRetriever`.
        queries: a JSONL path, dicts ``{"query", "gold"[, "style"]}`` or
            :class:`LabelledQuery` objects; ``None`` = the bundled evaluation set
            (:func:`bundled_queries_path`).
        k: results fetched per query (raised to the largest metric cutoff when lower).
        batch_size: questions encoded per batch.
        metrics: metric names ``family@k`` (see :mod:`walletfaq.quality.evaluation.metrics`),
            e.g. ``("recall@1", "mrr@10", "precision@3", "map@10", "ndcg@5")``.
        progress: show a progress bar over the queries (it goes away when done).
        desc: the bar's label.

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
    bar = progress_bar(
        total=len(labelled), desc=desc, unit="query", leave=False, disable=not progress
    )
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
        bar.update(len(chunk))
    bar.close()
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
    progress: bool = True,
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
        progress: a progress bar per retriever evaluated here ("evaluating <name>, 2 of 3").

    Returns:
        One row per retriever (input order). Per metric ``m``: ``m`` (mean over the in-domain
        queries), ``m low`` / ``m high`` (percentile bootstrap interval) and ``m p`` (p-value
        of the paired randomisation test against the baseline; NaN on the baseline's row; no
        correction for testing several metrics); then ``n`` (in-domain queries covered).
        ``print()`` shows it as a readable table, one line per metric (``.summary()`` gives
        the same text; :mod:`walletfaq.quality.evaluation.comparison`); the frame itself is
        the usual pandas one (``frame.round(3).T``).
    """
    import pandas as pd

    if not retrievers:
        raise WalletFAQError("compare needs at least one retriever")
    names = parse_metrics(metrics)
    labelled = None
    reports: dict[str, EvalReport] = {}
    to_evaluate = [n for n, s in retrievers.items() if not isinstance(s, EvalReport)]
    for name, system in retrievers.items():
        if isinstance(system, EvalReport):
            reports[name] = system
        else:
            labelled = as_labelled(queries) if labelled is None else labelled
            position = to_evaluate.index(name) + 1
            reports[name] = evaluate(
                system,
                labelled,
                k=k,
                metrics=names,
                progress=progress,
                desc=f"evaluating {name} ({position} of {len(to_evaluate)})",
            )
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
    frame = comparison_frame_class()(pd.DataFrame.from_dict(rows, orient="index"))
    frame.attrs.update(metrics=list(names), baseline=base_name, confidence=confidence)
    return frame  # type: ignore[no-any-return]
