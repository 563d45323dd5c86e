"""Retrieval-quality evaluation: labelled queries in, metrics and breakdowns out.

Queries are JSONL lines (or dicts) ``{"query": str, "gold": [entry ids], "style": str}``;
``gold: []`` marks an out-of-domain question that no entry answers. Ranking metrics are
computed over in-domain queries only; out-of-domain ones feed the no-answer calibration
(:mod:`walletfaq.calibration`).

Definitions (``rank`` = 1-based position of the first gold entry among the results):

- ``recall@k``: share of queries with a gold entry in the top ``k`` (success@k; with one gold
  id per query it is the usual recall@k).
- ``mrr@10``: mean of ``1/rank`` (0 when no gold entry is in the top 10).
- ``ndcg@10``: binary-relevance nDCG over the top 10, ideal DCG from ``min(|gold|, 10)`` hits.

pandas and matplotlib (the ``eval`` extra) are needed only by ``to_frame``/``plot``/``compare``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CorpusError, WalletFAQError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .retriever import FAQRetriever

CUTOFFS = (1, 3, 5, 10)
METRIC_KEYS = ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10")


@dataclass(frozen=True)
class LabelledQuery:
    """One evaluation question and the entry ids that answer it (empty = out of domain)."""

    query: str
    gold: tuple[str, ...]
    style: str = "unspecified"


@dataclass(frozen=True)
class QueryResult:
    """How one labelled query fared."""

    query: str
    gold: tuple[str, ...]
    style: str
    category: str
    ranked: tuple[str, ...]
    scores: tuple[float, ...]
    rank: int | None

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
class EvalReport:
    """Metrics of one retriever on one query set.

    Attributes:
        metrics: ``recall@1/3/5/10``, ``mrr@10``, ``ndcg@10`` over in-domain queries.
        per_category: the same metrics per gold entry category.
        per_style: the same metrics per query style.
        results: one :class:`QueryResult` per query, in input order.
    """

    metrics: dict[str, float]
    per_category: dict[str, dict[str, float]]
    per_style: dict[str, dict[str, float]]
    results: tuple[QueryResult, ...] = field(repr=False)

    @property
    def failures(self) -> list[QueryResult]:
        """In-domain queries whose first result is not a gold entry."""
        return [r for r in self.results if r.in_domain and r.rank != 1]

    @property
    def n_in_domain(self) -> int:
        """Number of queries with at least one gold entry."""
        return sum(r.in_domain for r in self.results)

    def to_frame(self) -> pd.DataFrame:
        """One row per query: query, gold, style, category, top id/score, rank, hit@k."""
        import pandas as pd

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
            for k in CUTOFFS:
                row[f"hit@{k}"] = r.rank is not None and r.rank <= k
            rows.append(row)
        return pd.DataFrame(rows)

    def metrics_frame(self) -> pd.DataFrame:
        """Overall, per-category and per-style metrics in one table (``group``, ``name``)."""
        import pandas as pd

        rows = [{"group": "overall", "name": "all", **self.metrics}]
        rows += [{"group": "category", "name": n, **m} for n, m in self.per_category.items()]
        rows += [{"group": "style", "name": n, **m} for n, m in self.per_style.items()]
        return pd.DataFrame(rows)

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
        curve.set(xlabel="k", ylabel="Recall@k", title="Recall@k", ylim=(0, 1.02))
        curve.grid(alpha=0.3)
        names = sorted(self.per_category, key=lambda n: self.per_category[n]["recall@1"])
        bars.barh(names, [self.per_category[n]["recall@1"] for n in names])
        bars.set(xlabel="Recall@1", title="Recall@1 per category", xlim=(0, 1))
        return figure


def load_queries(source: str | Path | Iterable[Mapping[str, Any]]) -> list[LabelledQuery]:
    """Read labelled queries from a JSONL file or an iterable of dicts.

    Raises:
        CorpusError: a malformed line, a missing/empty ``query``, or a ``gold`` that is not a
            list of strings (file and line named).
    """
    path: Path | None = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise CorpusError("queries file not found", path=path) from None
        except UnicodeDecodeError as exc:
            raise CorpusError(f"not valid UTF-8 (byte {exc.start})", path=path) from None
        records: list[tuple[int, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise CorpusError(f"malformed JSON ({exc.msg})", path=path, line=number) from None
    else:
        records = list(enumerate(source, start=1))
    queries = []
    for number, record in records:
        if not isinstance(record, Mapping):
            raise CorpusError("expected an object with 'query' and 'gold'", path=path, line=number)
        text = record.get("query")
        if not isinstance(text, str) or not text.strip():
            raise CorpusError("missing or empty", path=path, line=number, field="query")
        gold = record.get("gold")
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
            raise CorpusError(
                "must be a list of entry ids ([] = out of domain)",
                path=path,
                line=number,
                field="gold",
            )
        style = record.get("style", "unspecified")
        queries.append(LabelledQuery(text, tuple(gold), str(style)))
    if not queries:
        raise CorpusError("no queries to evaluate", path=path)
    return queries


def evaluate(
    retriever: FAQRetriever,
    queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery],
    k: int = 10,
    batch_size: int = 64,
) -> EvalReport:
    """Ask every query and score the rankings against the gold ids.

    Args:
        retriever: any :class:`~walletfaq.FAQRetriever`.
        queries: a JSONL path or dicts ``{"query", "gold"[, "style"]}``.
        k: results fetched per query (at least 10 for the @10 metrics).
        batch_size: questions encoded per batch.

    Raises:
        WalletFAQError: a gold id does not exist in the retriever's corpus (the label or the
            corpus is wrong; scoring it would silently count as a miss).
    """
    labelled = _as_labelled(queries)
    known = set(retriever.corpus.ids)
    for position, item in enumerate(labelled, start=1):
        unknown = [g for g in item.gold if g not in known]
        if unknown:
            raise WalletFAQError(
                f"query {position} ({item.query!r}) has gold id(s) {unknown} that are not in the "
                "retriever's corpus; fix the label or evaluate against the right corpus"
            )
    k = max(k, max(CUTOFFS))
    results = []
    for start in range(0, len(labelled), batch_size):
        chunk = labelled[start : start + batch_size]
        for item, hits in zip(
            chunk, retriever.ask_batch([q.query for q in chunk], k=k), strict=True
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
                    tuple(h.score for h in hits),
                    rank,
                )
            )
    in_domain = [r for r in results if r.in_domain]
    if not in_domain:
        raise WalletFAQError("every query is out of domain (gold: []); nothing to rank")
    return EvalReport(
        metrics=_metrics(in_domain),
        per_category=_grouped(in_domain, "category"),
        per_style=_grouped(in_domain, "style"),
        results=tuple(results),
    )


def compare(
    retrievers: Mapping[str, FAQRetriever],
    queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery],
    k: int = 10,
) -> pd.DataFrame:
    """Evaluate several retrievers on the same queries: one row per retriever, metric columns."""
    import pandas as pd

    labelled = _as_labelled(queries)
    rows = {name: evaluate(r, labelled, k=k).metrics for name, r in retrievers.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(METRIC_KEYS)]


def _as_labelled(queries: Any) -> list[LabelledQuery]:
    if (
        isinstance(queries, (list, tuple))
        and queries
        and all(isinstance(q, LabelledQuery) for q in queries)
    ):
        return list(queries)
    return load_queries(queries)


def _success(results: Sequence[QueryResult], k: int) -> float:
    return sum(r.rank is not None and r.rank <= k for r in results) / len(results)


def _metrics(results: Sequence[QueryResult]) -> dict[str, float]:
    metrics = {f"recall@{k}": _success(results, k) for k in CUTOFFS}
    metrics["mrr@10"] = sum(
        1 / r.rank for r in results if r.rank is not None and r.rank <= 10
    ) / len(results)
    metrics["ndcg@10"] = sum(_ndcg(r, 10) for r in results) / len(results)
    return metrics


def _ndcg(result: QueryResult, k: int) -> float:
    gold = set(result.gold)
    dcg = sum(1 / math.log2(i + 1) for i, h in enumerate(result.ranked[:k], start=1) if h in gold)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def _grouped(results: Sequence[QueryResult], attribute: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[QueryResult]] = defaultdict(list)
    for r in results:
        groups[getattr(r, attribute)].append(r)
    return {
        name: {**_metrics(items), "n": float(len(items))} for name, items in sorted(groups.items())
    }
