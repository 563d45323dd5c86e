"""Shared pieces of the benchmark sections: constants, timing loops, statistics, Markdown
tables and the evaluation queries."""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

ARTICLE_TOPICS = frozenset(
    {
        "login-failed",
        "topup-not-received",
        "account-security",
        "fees",
        "refund-process",
        "what-is-digital-wallet",
        "why-contact-support",
        "find-support-hotline",
        "prepare-before-calling",
    }
)
"""Entry ids of the nine topics of the seed article (quality on them must not drop)."""

DIM = 384
"""Dimension of the synthetic vectors (that of the e5-small preset)."""
K = 10
"""Results per search in every latency measurement."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
RECALL_TARGET = 0.95
"""Recall@10 the HNSW efSearch ladders aim for."""


def stats(samples_s: Sequence[float], unit: str = "ms") -> dict[str, float]:
    """p50/p95/p99/mean of durations given in seconds, in ``unit`` (``ms`` or ``us``), and
    the sample count ``n``; ``{"n": 0}`` for no samples."""
    scale = 1e3 if unit == "ms" else 1e6
    values = np.asarray(samples_s, dtype=np.float64) * scale
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        f"p50_{unit}": float(p50),
        f"p95_{unit}": float(p95),
        f"p99_{unit}": float(p99),
        f"mean_{unit}": float(values.mean()),
        "n": int(values.size),
    }


def interleaved(
    variants: dict[str, Callable[[int], object]],
    n: int,
    budget_s: float,
    warmup: int = 3,
    setups: dict[str, Callable[[], object]] | None = None,
) -> dict[str, list[float]]:
    """Time each variant on call ``i`` for ``i in range(n)``, interleaved with a rotating
    order; stops once ``budget_s`` seconds have passed (at least 10 rounds, 3 if short).
    ``setups[name]`` runs untimed before each call of that variant. Warm-up calls get
    negative ``i``. Returns the durations in seconds per variant."""
    names = list(variants)
    setups = setups or {}
    min_rounds = 3 if budget_s < 30 else 10
    for i in range(warmup):
        for name in names:
            if name in setups:
                setups[name]()
            variants[name](-1 - i)
    times: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    for i in range(n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            fn = variants[name]
            if name in setups:
                setups[name]()
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
        if i + 1 >= min_rounds and time.perf_counter() - started > budget_s:
            logger.warning("time budget %.0fs spent after %d of %d rounds", budget_s, i + 1, n)
            break
    return times


def distinct_queries(base: Sequence[str], n: int) -> list[str]:
    """``n`` distinct questions: the eval queries cycled, each with a numeric suffix."""
    return [f"{base[i % len(base)]} {i}" for i in range(n)]


def eval_queries_path() -> Path:
    """The bundled labelled evaluation queries (``corpus/eval/queries.jsonl``)."""
    from walletfaq.data.corpus import bundled_data_dir

    return bundled_data_dir() / "eval" / "queries.jsonl"


def load_eval(path: Path) -> list[dict[str, Any]]:
    """The JSON records of a JSONL file (parsed strictly: :mod:`walletfaq.data.strictjson`)."""
    from walletfaq.data.strictjson import loads

    return [loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB."""
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` (exact top-k ids) present in the same row of
    ``found``; both ``(n_queries, k)``."""
    k = truth.shape[1]
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t)) / k for f, t in pairs]))


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats with ``digits`` decimals, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
