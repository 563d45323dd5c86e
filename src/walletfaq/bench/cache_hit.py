"""Section 2: a repeated question, answered from the retriever's cache."""

from __future__ import annotations

import time
from typing import Any

from walletfaq.bench.common import stats, table

CACHE_TARGET_US = 100.0
"""A cached answer should take at most this many microseconds (p50)."""


def measure(retriever: Any, question: str, n: int) -> dict[str, Any]:
    """``ask(question)`` ``n`` times after 51 warm-up calls; latency in µs."""
    retriever.ask(question, k=5)
    for _ in range(50):
        retriever.ask(question, k=5)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        retriever.ask(question, k=5)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = stats(times, "us")
    out["target_us"] = CACHE_TARGET_US
    out["met"] = out["p50_us"] <= CACHE_TARGET_US
    return out


def render(report: dict[str, Any]) -> list[str]:
    """Section 2 as Markdown."""
    c = report["cache_hit"]
    return [
        "## 2. Repeated question (retriever cache)",
        "",
        table(
            ["n", "p50 µs", "p95 µs", "p99 µs", f"target ≤ {CACHE_TARGET_US:.0f} µs"],
            [[c["n"], c["p50_us"], c["p95_us"], c["p99_us"], c["met"]]],
        ),
        "",
    ]
