"""Section 3b: search-only latency at batch 1 on random unit vectors, FAISS flat and HNSW
against numpy brute force, at several corpus sizes.

Random unit vectors in 384 dimensions are the worst case for a graph index (no clusters), so
the HNSW recall and efSearch found here are a lower bound, not what real questions get (that is
:mod:`walletfaq.bench.scale`). Exact search (flat, numpy) costs the same on any vectors, so its
latency curve holds for real use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from walletfaq.bench.common import (
    DIM,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    RECALL_TARGET,
    K,
    interleaved,
    recall_at_k,
    stats,
    table,
)

logger = logging.getLogger(__name__)

QUICK_SIZES = (1_000, 5_000)
"""Corpus sizes of quick mode."""
EF_LADDER = (128, 256, 512, 1024)
"""efSearch values tried, in order, until recall@10 reaches the target."""


def measure(
    sizes: Sequence[int], n_queries: int, large_queries: int, seed: int = 0
) -> dict[str, Any]:
    """Search-only latency at batch 1 on random unit vectors: FAISS flat, HNSW, numpy.

    Returns one row per size (keyed by the size as a string): build time, memory, HNSW
    recall@10 by efSearch and the p50/p95/p99 latency in µs of each method.
    """
    import faiss

    import walletfaq.index.vector_index as vector_index
    from walletfaq.index.vector_index import IndexSpec, build_index

    rng = np.random.default_rng(seed)
    results: dict[str, Any] = {}
    for n in sizes:
        logger.info("synthetic search: %d vectors", n)
        vectors = rng.standard_normal((n, DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        queries = rng.standard_normal((n_queries, DIM), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        exact_q = large_queries if n >= 500_000 else n_queries
        row: dict[str, Any] = {"n": n, "queries_exact": exact_q, "queries_hnsw": n_queries}

        t0 = time.perf_counter()
        flat = build_index(vectors, IndexSpec("flat"))
        row["build_s_flat"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        hnsw = build_index(vectors, IndexSpec("hnsw", HNSW_M, HNSW_EF_CONSTRUCTION, EF_LADDER[0]))
        row["build_s_hnsw"] = time.perf_counter() - t0
        row["memory_mb_flat"] = faiss.serialize_index(flat).nbytes / 1e6
        row["memory_mb_hnsw"] = faiss.serialize_index(hnsw).nbytes / 1e6
        row["memory_mb_numpy"] = vectors.nbytes / 1e6

        _, truth = flat.search(queries, K)

        # HNSW: raise efSearch until recall@10 >= target
        ladder = {}
        chosen = EF_LADDER[-1]
        for ef in EF_LADDER:
            vector_index.set_ef_search(hnsw, ef)
            _, found = hnsw.search(queries, K)
            recall = recall_at_k(found, truth)
            ladder[str(ef)] = recall
            if recall >= RECALL_TARGET:
                chosen = ef
                break
        vector_index.set_ef_search(hnsw, chosen)
        row["hnsw_recall_by_ef"] = ladder
        row["hnsw_ef_search"] = chosen
        row["hnsw_recall_at_10"] = ladder[str(chosen)]

        def flat_one(i: int, q: np.ndarray = queries, index: Any = flat) -> None:
            index.search(q[i : i + 1], K)

        def hnsw_one(i: int, q: np.ndarray = queries, index: Any = hnsw) -> None:
            index.search(q[i : i + 1], K)

        def numpy_one(i: int, q: np.ndarray = queries, v: np.ndarray = vectors) -> None:
            scores = v @ q[i]
            top = np.argpartition(-scores, K)[:K]
            top[np.argsort(-scores[top])]

        exact = interleaved({"flat": flat_one, "numpy": numpy_one}, exact_q, 120.0)
        approx = interleaved({"hnsw": hnsw_one}, n_queries, 60.0)
        row["flat"] = stats(exact["flat"], "us")
        row["numpy"] = stats(exact["numpy"], "us")
        row["hnsw"] = stats(approx["hnsw"], "us")
        results[str(n)] = row

    return results


def render(report: dict[str, Any]) -> list[str]:
    """Section 3b as Markdown (a subsection of section 3)."""
    search = report["search"]
    out = [
        "### 3b. Random unit vectors (384-d, batch 1, k=10): worst case",
        "",
        "Queries are random unit vectors (worst case for HNSW; real embeddings are "
        "clustered, see 3a). efSearch is raised from 128 until recall@10 ≥ 0.95.",
        "",
    ]
    rows = []
    for n, r in search.items():
        rows.append(
            [
                n,
                r["flat"]["p50_us"],
                r["flat"]["p95_us"],
                r["hnsw"]["p50_us"],
                r["hnsw"]["p95_us"],
                r["numpy"]["p50_us"],
                r["numpy"]["p95_us"],
                r["hnsw_ef_search"],
                r["hnsw_recall_at_10"],
                r["build_s_flat"],
                r["build_s_hnsw"],
                r["memory_mb_flat"],
                r["memory_mb_hnsw"],
            ]
        )
    out += [
        table(
            [
                "vectors",
                "flat p50 µs",
                "flat p95 µs",
                "HNSW p50 µs",
                "HNSW p95 µs",
                "numpy p50 µs",
                "numpy p95 µs",
                "efSearch",
                "HNSW recall@10",
                "flat build s",
                "HNSW build s",
                "flat MB",
                "HNSW MB",
            ],
            rows,
        ),
        "",
    ]
    ladders = "; ".join(
        f"{n}: " + ", ".join(f"ef {ef} → {rec:.3f}" for ef, rec in r["hnsw_recall_by_ef"].items())
        for n, r in search.items()
    )
    out += [f"HNSW recall@10 by efSearch: {ladders}.", ""]
    return out
