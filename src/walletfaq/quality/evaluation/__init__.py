"""Retrieval-quality evaluation: labelled queries in, metrics, abstention and statistics out.

Queries are JSONL lines (or dicts) ``{"query": str, "gold": [entry ids], "style": str}``;
``gold: []`` marks an out-of-domain question that no entry answers. The bundled evaluation
set (:func:`bundled_queries_path`) is used when no queries are given. Every report has two
halves, each saying how many queries it covers: ranking metrics over the *in-domain* queries
(an out-of-domain question has no gold entry to rank) and abstention at the retriever's
no-answer threshold over *all* queries.

One module per part, all re-exported here (the documented path):

- :mod:`~walletfaq.quality.evaluation.metrics`: metric names ``family@k`` (``recall``,
  ``success``, ``gold_recall``, ``mrr``, ``ndcg``, ``precision``, ``map``; the defaults
  :data:`METRIC_KEYS`: ``recall@1/3/5/10``, ``mrr@10``, ``ndcg@10``), computed by
  `ir-measures <https://ir-measur.es>`_.
- :mod:`~walletfaq.quality.evaluation.report`: :class:`QueryResult` (one query) and
  :class:`EvalReport` (summary, frames, plot, TREC files for ``trec_eval``).
- :mod:`~walletfaq.quality.evaluation.abstention`: :class:`OperatingPoint`, the outcome of
  answering at a threshold (:func:`operating_point`).
- :mod:`~walletfaq.quality.evaluation.stats`: seeded bootstrap intervals
  (:class:`ConfidenceInterval`), the paired randomisation test (:func:`paired_test`),
  per-query differences (:func:`diff_reports`) and the Wilson interval.
- :mod:`~walletfaq.quality.evaluation.runner`: :func:`evaluate` (one retriever) and
  :func:`compare` (several, with intervals and significance).

Labelled queries are read by :mod:`walletfaq.data.queries` (:func:`load_queries` and the
bundled set are re-exported here). The metrics come from ir-measures (a dependency); the
``eval`` extra (``pip install "walletfaq[eval]"``) adds pandas (frames, :func:`compare`) and
matplotlib (:meth:`EvalReport.plot`).
"""

from walletfaq.data.queries import (
    LabelledQuery,
    bundled_queries_path,
    load_bundled_queries,
    load_queries,
)
from walletfaq.quality.evaluation.abstention import OperatingPoint, operating_point
from walletfaq.quality.evaluation.metrics import (
    CUTOFFS,
    DEFAULT_METRICS,
    METRIC_FAMILIES,
    METRIC_KEYS,
    parse_metrics,
)
from walletfaq.quality.evaluation.report import EvalReport
from walletfaq.quality.evaluation.results import QueryResult
from walletfaq.quality.evaluation.runner import compare, evaluate
from walletfaq.quality.evaluation.stats import (
    ConfidenceInterval,
    PairedTest,
    QueryDiff,
    ReportDiff,
    diff_reports,
    paired_test,
    sign_flip_p_value,
    wilson_interval,
)

__all__ = [
    "CUTOFFS",
    "DEFAULT_METRICS",
    "METRIC_FAMILIES",
    "METRIC_KEYS",
    "ConfidenceInterval",
    "EvalReport",
    "LabelledQuery",
    "OperatingPoint",
    "PairedTest",
    "QueryDiff",
    "QueryResult",
    "ReportDiff",
    "bundled_queries_path",
    "compare",
    "diff_reports",
    "evaluate",
    "load_bundled_queries",
    "load_queries",
    "operating_point",
    "paired_test",
    "parse_metrics",
    "sign_flip_p_value",
    "wilson_interval",
]
