"""Section 5: ``ask_batch`` throughput, index build time and peak memory."""

from __future__ import annotations

import time
from typing import Any

from walletfaq.bench.common import table


def measure_batches(
    retriever: Any, base: list[str], n_queries: int, budget_s: float
) -> dict[str, Any]:
    """Queries per second of ``ask_batch`` at batch sizes 1, 8 and 64 (fresh questions)."""
    out: dict[str, Any] = {}
    offset = 10_000_000  # suffixes unused elsewhere: the cache never serves these
    for batch in (1, 8, 64):
        total = max(batch, (n_queries // batch) * batch)
        questions = [f"{base[i % len(base)]} {offset + i}" for i in range(total)]
        offset += total
        retriever.ask_batch([f"热身 {batch} {j}" for j in range(batch)], k=5)
        done = 0
        t0 = time.perf_counter()
        for start in range(0, total, batch):
            retriever.ask_batch(questions[start : start + batch], k=5)
            done += batch
            if time.perf_counter() - t0 > budget_s:
                break
        elapsed = time.perf_counter() - t0
        out[str(batch)] = {"queries": done, "seconds": elapsed, "qps": done / elapsed}
    return out


def measure_index_build(model: str, quick: bool) -> dict[str, Any]:
    """Seconds to build a retriever from the corpus without the index cache (model load
    included); quick mode uses the first 8 bundled entries."""
    from walletfaq.data.corpus import Corpus, load_bundled_corpus
    from walletfaq.retrieval.retriever import FAQRetriever

    if quick:
        small = Corpus.from_entries(
            [e.to_dict() for e in load_bundled_corpus().entries[:8]], source="bundled[:8]"
        )
        t0 = time.perf_counter()
        built = FAQRetriever.from_corpus(small, model=model, cache=False)
        scope = "first 8 bundled entries (quick mode)"
    else:
        t0 = time.perf_counter()
        built = FAQRetriever.from_corpus(model=model, cache=False)
        scope = "bundled corpus + contacts"
    return {
        "seconds": time.perf_counter() - t0,
        "vectors": int(built.index.ntotal),
        "corpus": scope,
        "includes_model_load": True,
    }


def render(report: dict[str, Any]) -> list[str]:
    """Section 5 as Markdown."""
    b = report["batch"]
    return [
        "## 5. Batch throughput, build time, memory",
        "",
        table(
            ["ask_batch size", "queries", "queries/s"],
            [[k, v["queries"], v["qps"]] for k, v in b["throughput"].items()],
        ),
        "",
        f"Corpus index build (`from_corpus(cache=False)`, {b['index_build']['corpus']}, "
        f"{b['index_build']['vectors']} vectors, model load included): "
        f"{b['index_build']['seconds']:.1f} s. Peak RSS: {report['peak_rss_mb']:.0f} MB.",
        "",
    ]
