"""Section 3a: vector search at scale on real question embeddings.

Measured on the real user questions of :mod:`walletfaq.bench.questions` (152,971 Chinese
payment and banking questions, ``e5-small`` query embeddings), not on random vectors: random
unit vectors in 384 dimensions have no clusters and are the worst case for a graph index.

``n_queries`` questions, drawn with a seed, are held out as queries; the index holds the others.
Sizes up to the number of real questions use real vectors only (the first ``n`` of a seeded
permutation). Larger sizes are reached by :func:`expand`: every extra vector is a real one
moved by Gaussian noise to the cosine similarity a real question has with its nearest real
neighbour (median over a sample), so the extra vectors sit in the same clusters, as new
paraphrases of existing questions would.

For each size: FAISS exact flat search (the reference), flat over 8-bit scalar-quantised vectors
(``SQ8``) and HNSW (M = 32, efConstruction = 200) at several efSearch values, with build time,
serialized size, recall@10 against flat and the batch-1 search latency on one thread (the
FAISS thread count is restored afterwards). From these numbers :func:`recommend` picks the
``index="auto"`` threshold and the default efSearch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq.bench.common import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    K,
    interleaved,
    recall_at_k,
    stats,
    table,
)

logger = logging.getLogger(__name__)

SCALE_SIZES = (10_000, 50_000, 1_000_000)
"""Default index sizes. :func:`section` adds the size holding every real vector when a size
exceeds it; sizes past it are reached with :func:`expand`."""
EF_SEARCH = (16, 32, 64, 128)
"""HNSW efSearch values measured at every size."""
N_QUERIES = 1_000
"""Held-out questions used as queries."""
RECALL_TARGET = 0.985
"""The default efSearch is the smallest reaching this recall@10 at every measured size (at most
1.5 % of the exact top 10 missed)."""
FLAT_BUDGET_MS = 1.0
"""``auto`` switches to HNSW where exact search p50 would exceed this: 10 % of the ≈ 10 ms a
question's encoding costs, so exact search stops being a rounding error of ``ask()``."""


def expand(vectors: np.ndarray, n: int, seed: int = 0, sample: int = 2_000) -> np.ndarray:
    """``vectors`` followed by ``n - len(vectors)`` synthetic neighbours of random rows.

    Each synthetic row is ``normalize(x + s * g)`` for a random real row ``x`` and standard
    Gaussian ``g``, with ``s`` chosen so that its expected cosine with ``x`` equals the
    median cosine between a real row and its nearest other real row (estimated on ``sample``
    rows). Returns float32 unit rows, shape ``(n, dim)``; ``vectors`` itself when it is not
    shorter than ``n``.
    """
    import faiss

    if n <= len(vectors):
        return vectors[:n]
    rng = np.random.default_rng(seed)
    dim = vectors.shape[1]
    probe = vectors[rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)]
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    scores, _ = flat.search(probe, 2)
    target = float(np.median(scores[:, 1]))
    target = min(max(target, 0.5), 0.999)
    noise = float(np.sqrt((1.0 / target**2 - 1.0) / dim))
    logger.info("expanding %d -> %d vectors (neighbour cosine %.3f)", len(vectors), n, target)
    out = np.empty((n, dim), dtype=np.float32)
    out[: len(vectors)] = vectors
    step = 100_000
    for start in range(len(vectors), n, step):
        stop = min(start + step, n)
        base = vectors[rng.integers(0, len(vectors), size=stop - start)]
        block = base + noise * rng.standard_normal(base.shape, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def _build(kind: str, vectors: np.ndarray) -> tuple[Any, float]:
    import faiss

    from walletfaq.index.vector_index import IndexSpec, build_index

    dim = vectors.shape[1]
    t0 = time.perf_counter()
    if kind == "flat":
        index = build_index(vectors, IndexSpec("flat"))
    elif kind == "sq8":
        index = faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.train(vectors)
        index.add(vectors)
    else:
        index = build_index(vectors, IndexSpec("hnsw", HNSW_M, HNSW_EF_CONSTRUCTION, EF_SEARCH[0]))
    return index, time.perf_counter() - t0


def measure_size(
    base: np.ndarray,
    queries: np.ndarray,
    ef_search: Sequence[int] = EF_SEARCH,
    budget_s: float = 30.0,
) -> dict[str, Any]:
    """Build flat, SQ8 and HNSW over ``base`` and measure them with ``queries``.

    Returns ``n``, ``build_s`` and ``memory_mb`` per index kind, ``recall_at_10`` and
    ``top1_agreement`` (the share of queries whose first result is exact search's; SQ8, and
    HNSW per efSearch) against exact flat search, and batch-1 latency in µs: ``flat``,
    ``sq8`` and ``hnsw`` (per efSearch). Latencies of the variants are interleaved query by
    query; each loop stops after ``budget_s`` seconds (the sample count is reported).
    """
    import faiss

    import walletfaq.index.vector_index as vector_index

    row: dict[str, Any] = {"n": int(len(base)), "queries": int(len(queries))}
    indexes: dict[str, Any] = {}
    row["build_s"] = {}
    row["memory_mb"] = {}
    for kind in ("flat", "sq8", "hnsw"):
        logger.info("scale %d: building %s", len(base), kind)
        indexes[kind], row["build_s"][kind] = _build(kind, base)
        row["memory_mb"][kind] = faiss.serialize_index(indexes[kind]).nbytes / 1e6
    _, truth = indexes["flat"].search(queries, K)
    _, found = indexes["sq8"].search(queries, K)
    recalls: dict[str, Any] = {"sq8": recall_at_k(found, truth), "hnsw": {}}
    top1: dict[str, Any] = {"sq8": float(np.mean(found[:, 0] == truth[:, 0])), "hnsw": {}}
    for ef in ef_search:
        vector_index.set_ef_search(indexes["hnsw"], ef)
        _, found = indexes["hnsw"].search(queries, K)
        recalls["hnsw"][str(ef)] = recall_at_k(found, truth)
        top1["hnsw"][str(ef)] = float(np.mean(found[:, 0] == truth[:, 0]))
    row["recall_at_10"] = recalls
    row["top1_agreement"] = top1

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:

        def one(index: Any) -> Any:
            return lambda i: index.search(queries[i : i + 1], K)

        exact = interleaved(
            {"flat": one(indexes["flat"]), "sq8": one(indexes["sq8"])}, len(queries), budget_s
        )
        row["flat"] = stats(exact["flat"], "us")
        row["sq8"] = stats(exact["sq8"], "us")
        row["hnsw"] = {}
        for ef in ef_search:
            vector_index.set_ef_search(indexes["hnsw"], ef)
            approx = interleaved({"hnsw": one(indexes["hnsw"])}, len(queries), budget_s / 2)
            row["hnsw"][str(ef)] = stats(approx["hnsw"], "us")
    finally:
        faiss.omp_set_num_threads(threads)
    return row


def recommend(rows: dict[str, Any]) -> dict[str, Any]:
    """The ``auto`` threshold and default efSearch the measured ``rows`` support.

    ``ef_search``: the smallest measured efSearch whose recall@10 is at least
    :data:`RECALL_TARGET` at every size (the largest measured if none is).
    ``auto_hnsw_threshold``: the size at which exact flat search p50 reaches
    :data:`FLAT_BUDGET_MS`, from the median measured cost per vector over the sizes of at
    least 10,000, rounded to 10,000 (at least 10,000).
    """
    sizes = sorted(int(n) for n in rows)
    efs = sorted(int(ef) for ef in rows[str(sizes[0])]["recall_at_10"]["hnsw"])
    chosen = efs[-1]
    for ef in efs:
        if all(rows[str(n)]["recall_at_10"]["hnsw"][str(ef)] >= RECALL_TARGET for n in sizes):
            chosen = ef
            break
    per_vector = [rows[str(n)]["flat"]["p50_us"] / n for n in sizes if n >= 10_000]
    us_per_vector = float(
        np.median(per_vector or [rows[str(sizes[-1])]["flat"]["p50_us"] / sizes[-1]])
    )
    crossing = FLAT_BUDGET_MS * 1e3 / us_per_vector
    threshold = max(10_000, int(round(crossing / 10_000)) * 10_000)
    return {
        "ef_search": chosen,
        "recall_target": RECALL_TARGET,
        "auto_hnsw_threshold": threshold,
        "flat_budget_ms": FLAT_BUDGET_MS,
        "flat_us_per_1k_vectors": us_per_vector * 1e3,
    }


def measure(
    vectors: np.ndarray,
    sizes: Sequence[int] = SCALE_SIZES,
    n_queries: int = N_QUERIES,
    ef_search: Sequence[int] = EF_SEARCH,
    budget_s: float = 30.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Hold out ``n_queries`` rows of ``vectors`` as queries and :func:`measure_size` at each
    size (sizes above the remaining real rows are reached with :func:`expand`).

    Returns ``rows`` keyed by size, the ``recommended`` settings (:func:`recommend`) and how
    each size was made (``real_rows`` / ``synthetic_rows``).
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(vectors))
    queries = np.ascontiguousarray(vectors[order[:n_queries]])
    real = np.ascontiguousarray(vectors[order[n_queries:]])
    rows: dict[str, Any] = {}
    for n in sorted(sizes):
        base = expand(real, n, seed=seed)
        logger.info("scale: %d vectors (%d real)", n, min(n, len(real)))
        row = measure_size(base, queries, ef_search, budget_s)
        row["real_rows"] = int(min(n, len(real)))
        row["synthetic_rows"] = int(max(0, n - len(real)))
        rows[str(n)] = row
        del base
    out: dict[str, Any] = {
        "queries": int(len(queries)),
        "real_vectors": int(len(real)),
        "k": K,
        "threads": 1,
        "hnsw": {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
        "expansion": "real vector + Gaussian noise at the median nearest-neighbour cosine",
        "source": "given vectors",
        "questions_in_file": int(len(vectors)),
        "embedded": int(len(vectors)),
        "rows": rows,
    }
    out["recommended"] = recommend(rows)
    out["default_ef_search"] = out["recommended"]["ef_search"]
    return out


def section(
    questions_file: Path | None = None,
    cache_dir: Path = Path("benchmarks/results/tmp"),
    *,
    model: str = "e5-small",
    limit: int | None = None,
    encode_missing: bool = True,
    sizes: Sequence[int] = SCALE_SIZES,
    n_queries: int = N_QUERIES,
    budget_s: float = 30.0,
) -> dict[str, Any]:
    """The whole section: find the question file, embed (or load cached embeddings of) the
    first ``limit`` questions and :func:`measure`. Returns ``{"skipped": reason}`` when the
    file is absent or fewer than ``2 * n_queries`` questions are embedded. When a size exceeds
    the real vectors (embedded minus held-out), the size holding all of them is measured too.
    """
    from walletfaq.bench.questions import embed_questions, find_questions_file, load_questions

    path = find_questions_file(questions_file)
    if path is None:
        where = questions_file or "../shared/data/questions/zh_questions.txt"
        return {"skipped": f"real-question file not found ({where})"}
    questions = load_questions(path)
    t0 = time.perf_counter()
    vectors = embed_questions(
        questions, cache_dir, model=model, limit=limit, encode_missing=encode_missing
    )
    embed_s = time.perf_counter() - t0
    if len(vectors) < 2 * n_queries:
        return {
            "skipped": f"only {len(vectors)} embedded questions cached in {cache_dir}; "
            "run python benchmarks/scale.py to embed them"
        }
    real = len(vectors) - n_queries
    kept = sorted({n for n in sizes} | ({real} if max(sizes) > real else set()))
    out = measure(vectors, kept, n_queries, budget_s=budget_s)
    out.update(
        {
            "source": path.name,
            "questions_in_file": len(questions),
            "embedded": int(len(vectors)),
            "model": model,
            "embed_or_load_s": embed_s,
        }
    )
    return out


def render(report: dict[str, Any]) -> list[str]:
    """Section 3a as Markdown (a subsection of section 3)."""
    scale = report.get("scale") or {"skipped": "not measured"}
    out = ["### 3a. Real questions (e5-small embeddings, batch 1, k=10, one thread)", ""]
    if "skipped" in scale:
        return out + [f"Skipped: {scale['skipped']}.", ""]
    rows = scale["rows"]
    efs = list(next(iter(rows.values()))["hnsw"])
    out += [
        f"{scale['embedded']:,} embedded questions of {scale['source']} "
        f"({scale['questions_in_file']:,} in the file); {scale['queries']:,} held out as "
        f"queries. Sizes past {scale['real_vectors']:,} add synthetic neighbours "
        f"({scale['expansion']}). Recall@10 is against exact flat search.",
        "",
    ]
    body = []

    def ratio(value: float) -> str:
        return f"{value:.3f}"

    for n, r in rows.items():
        made = f"{n} ({r['synthetic_rows']:,} synthetic)" if r["synthetic_rows"] else n
        build, mb, rec, top1 = r["build_s"], r["memory_mb"], r["recall_at_10"], r["top1_agreement"]
        body.append([made, "flat (exact)", build["flat"], mb["flat"], "1", "1"])
        body[-1] += [r["flat"]["p50_us"], r["flat"]["p95_us"]]
        body.append([made, "SQ8 (flat, 8-bit)", build["sq8"], mb["sq8"]])
        body[-1] += [ratio(rec["sq8"]), ratio(top1["sq8"]), r["sq8"]["p50_us"], r["sq8"]["p95_us"]]
        for ef in efs:
            hnsw = r["hnsw"][ef]
            body.append([made, f"HNSW M=32 ef={ef}", build["hnsw"], mb["hnsw"]])
            body[-1] += [ratio(rec["hnsw"][ef]), ratio(top1["hnsw"][ef])]
            body[-1] += [hnsw["p50_us"], hnsw["p95_us"]]
    header = ["vectors", "index", "build s", "MB", "recall@10", "top-1 same", "p50 µs", "p95 µs"]
    rec = scale["recommended"]
    out += [
        table(header, body),
        "",
        f"Supported settings: default efSearch **{rec['ef_search']}** (smallest with "
        f'recall@10 ≥ {rec["recall_target"]} at every size); `index="auto"` threshold '
        f"**{rec['auto_hnsw_threshold']:,}** vectors (exact search costs "
        f"{rec['flat_us_per_1k_vectors']:.1f} µs per 1,000 vectors, so it passes "
        f"{rec['flat_budget_ms']:.0f} ms there).",
        "",
    ]
    return out
