"""What the query log costs ``ask()`` (issue 19, "Measure": logging overhead on the p50 ≤ 5 %).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/logging_overhead.py [--rounds 3] [--k 5]
        [--limit N] [--no-postgres] [--out benchmarks/results/logging_overhead.json]

The default model (``FAQRetriever.from_corpus()``: e5-small, offline) asks the 720 questions
of the bundled evaluation set, ``--rounds`` times, in variants interleaved block by block:
each block of 60 questions is asked by every variant, the variants' order rotating from block
to block (ABC, BCA, CAB, ...), and the retriever's query cache is cleared before every call, so
every ask encodes its question. Blocks rather than single questions, so that a log's
background writer works while its own variant asks (a logged block ends with ``flush()``,
outside the calls' times): interleaving question by question would spread the writer's work
over the plain variant's calls too and hide it. The variants:

- ``plain``: ``r.ask(q, k)``;
- ``sqlite``: ``LoggedRetriever(r, QueryLog(store)).ask(q, k)`` with an SQLite store in a
  temporary folder (the default QueryLog settings: batches of 100, flushed every 0.25 s);
- ``postgresql``: the same with a throwaway PostgreSQL cluster started as the tests start theirs
  (``tests/store_support.py``: ``fsync`` and ``synchronous_commit`` off, so its commits are
  cheaper than a production server's; the writes happen off the request path either way);
  skipped without PostgreSQL or with ``--no-postgres``.

Reported per variant: p50, p95 and mean (ms), and the process CPU time per call (every
thread, the writer's included, its flush too: a figure the machine's other load barely moves);
the overhead, ``p50(logged) / p50(plain) - 1``, over all rounds and per round, with a 95 %
bootstrap interval (calls resampled, pairs kept); the median of the per-question differences;
the CPU overhead; the log's counters (every ask written, none dropped).

Separately, the wrapper's own cost per question on the request path — a request id, the
cleaned question, the record, queueing it — around a stub retriever that returns fixed hits at
once (the records written when the log closes): a figure that does not drown in the model's
noise. The writer's work (the store checks and masks each question, then inserts it) runs on
its own thread; the CPU figures above include it, and the last section measures it alone: CPU
time per record of ``Store.log_queries`` in batches of 1, 5, 25 and 100 on each store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq import FAQRetriever
from walletfaq.data.queries import load_bundled_queries
from walletfaq.index.search import Answer, Hit
from walletfaq.retrieval.traffic import LoggedRetriever, QueryLog
from walletfaq.store import QueryHit, QueryRecord, Store, open_store

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "logging_overhead.json"
BLOCK = 60
WRITER_BATCHES = (1, 5, 25, 100)
WRITER_RECORDS = 500
BOOTSTRAP = 2000
STUB_CALLS = 20_000

Ask = Callable[..., Any]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    retriever = FAQRetriever.from_corpus()
    retriever.warm_up()
    questions = [q.query for q in load_bundled_queries()][: args.limit]
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
        },
        "model": retriever.encoder.name,
        "questions": len(questions),
        "rounds": args.rounds,
        "k": args.k,
    }
    cluster = None if args.no_postgres else _postgres_cluster()
    with tempfile.TemporaryDirectory() as folder:
        stores = {"sqlite": open_store(str(Path(folder) / "log.db"), create=True)}
        if cluster is not None:
            stores["postgresql"] = open_store(cluster.new_database(), create=True)
        logs = {name: QueryLog(store) for name, store in stores.items()}
        try:
            variants: dict[str, Ask] = {"plain": retriever.ask}
            for name, log in logs.items():
                variants[name] = LoggedRetriever(retriever, log, source="bench").ask
            report["settings"] = repr(next(iter(logs.values())))
            samples, cpu = _interleaved(retriever, variants, logs, questions, args.rounds, args.k)
            report["loadavg_end"] = os.getloadavg()
            report["variants"] = {
                name: {**_summary(times), "cpu_ms_per_call": round(cpu[name] * 1000.0, 3)}
                for name, times in samples.items()
            }
            report["overhead"] = {
                name: {
                    **_overhead(samples["plain"], samples[name], args.rounds),
                    "cpu_ratio_minus_1": round(cpu[name] / cpu["plain"] - 1.0, 4),
                }
                for name in logs
            }
            for name, log in logs.items():
                assert log.close(60), f"{name}: the log did not drain"
                report["overhead"][name]["log"] = _counts(log, stores[name])
            report["wrapper_alone"] = _wrapper_alone(stores["sqlite"])
            report["writer_cpu_ms_per_record"] = _writer_cpu(stores)
        finally:
            for store in stores.values():
                store.close()
            if cluster is not None:
                cluster.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _print(report)
    return 0


def _interleaved(
    retriever: FAQRetriever,
    variants: dict[str, Ask],
    logs: dict[str, QueryLog],
    questions: list[str],
    rounds: int,
    k: int,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per call of each variant (in the same question order for every variant), and
    the process CPU seconds per call (every thread: the log writers' too).

    The questions go in blocks of :data:`BLOCK`; in each block every variant asks them all,
    the variants' order rotating from block to block and round to round (ABC, BCA, CAB...),
    the query cache cleared before every call. A logged variant's block ends with
    ``log.flush()``, inside its CPU account and outside its calls' times, so that the writer
    works for the block that queued its records and not during the next variant's block."""
    names = list(variants)
    for name in names:  # warm each path up (first batch, connections) before timing
        for question in questions[:10]:
            variants[name](question, k=k)
        if name in logs:
            logs[name].flush()
    samples: dict[str, list[float]] = {name: [] for name in names}
    cpu = dict.fromkeys(names, 0.0)
    blocks = [questions[i : i + BLOCK] for i in range(0, len(questions), BLOCK)]
    for round_number in range(rounds):
        for position, block in enumerate(blocks):
            shift = (position + round_number) % len(names)
            for name in names[shift:] + names[:shift]:
                cpu_start = time.process_time()
                for question in block:
                    retriever.clear_cache()
                    started = time.perf_counter()
                    variants[name](question, k=k)
                    samples[name].append(time.perf_counter() - started)
                if name in logs:
                    logs[name].flush()
                cpu[name] += time.process_time() - cpu_start
        print(f"round {round_number + 1}/{rounds} done", file=sys.stderr)
    calls = rounds * len(questions)
    return samples, {name: seconds / calls for name, seconds in cpu.items()}


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def _overhead(plain: list[float], logged: list[float], rounds: int) -> dict[str, Any]:
    """``p50(logged) / p50(plain) - 1`` over all calls and per round, a bootstrap interval
    of it (pairs resampled), and the median per-question difference."""
    a, b = np.asarray(plain), np.asarray(logged)
    rng = np.random.default_rng(19)
    picks = rng.integers(0, a.size, size=(BOOTSTRAP, a.size))
    ratios = np.median(b[picks], axis=1) / np.median(a[picks], axis=1) - 1.0
    per_round = [
        float(np.median(rb) / np.median(ra) - 1.0)
        for ra, rb in zip(np.array_split(a, rounds), np.array_split(b, rounds), strict=True)
    ]
    return {
        "p50_ratio_minus_1": round(float(np.median(b) / np.median(a) - 1.0), 4),
        "p50_ratio_minus_1_ci95": [round(float(x), 4) for x in np.percentile(ratios, [2.5, 97.5])],
        "per_round": [round(x, 4) for x in per_round],
        "p95_ratio_minus_1": round(float(np.percentile(b, 95) / np.percentile(a, 95) - 1.0), 4),
        "median_paired_difference_ms": round(float(np.median(b - a)) * 1000.0, 4),
    }


def _counts(log: QueryLog, store: Store) -> dict[str, int]:
    return {
        "written": log.written,
        "dropped": log.dropped,
        "failed": log.failed,
        "rejected": log.rejected,
        "rows": len(store.queries()),
    }


class _Stub:
    """Returns the same hits at once: the wrapper's own cost is all that is left."""

    threshold = 0.9

    def __init__(self) -> None:
        self.hits = [Hit(f"e{n}", "问题", "答案", 0.95 - n / 100, "c") for n in range(5)]

    def ask(self, question: str, k: int = 5, category: str | None = None) -> list[Hit]:
        return self.hits[:k]

    def answer(self, question: str, threshold: float | None = None, k: int = 3) -> Answer:
        raise NotImplementedError


def _wrapper_alone(store: Store) -> dict[str, Any]:
    """Microseconds per ``ask`` of the stub, plain and wrapped: the request path's own cost
    (the writer thread idle meanwhile: the records are written when the log closes)."""
    stub = _Stub()
    question = "我的钱包充值了但是余额没有变化怎么办"
    idle = QueryLog(store, batch_size=STUB_CALLS + 1, flush_interval_s=3600, max_queue=STUB_CALLS)
    with idle as log:
        wrapped = LoggedRetriever(stub, log, source="bench")
        timings: dict[str, float] = {}
        for name, ask in (("stub", stub.ask), ("wrapped", wrapped.ask)):
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(STUB_CALLS // 5):
                    ask(question, k=5)
                runs.append((time.perf_counter() - started) / (STUB_CALLS // 5))
            timings[name] = statistics.median(runs) * 1e6
    return {
        "calls": STUB_CALLS,
        "stub_us": round(timings["stub"], 2),
        "wrapped_us": round(timings["wrapped"], 2),
        "wrapper_us": round(timings["wrapped"] - timings["stub"], 2),
        "written": log.written,
        "dropped": log.dropped,
    }


def _writer_cpu(stores: dict[str, Store]) -> dict[str, dict[str, float]]:
    """CPU milliseconds per record of ``Store.log_queries`` (what the writer thread spends:
    checking, masking, inserting, committing) by batch size, on each store."""
    hits = tuple(QueryHit(f"e{n}", 0.95 - n / 100) for n in range(5))
    out: dict[str, dict[str, float]] = {}
    for name, store in stores.items():
        out[name] = {}
        for size in WRITER_BATCHES:
            batches = [
                [
                    QueryRecord(f"w{size}-{b}-{n}", f"充值了钱没到账咋办 {n}", "answer", hits, 9.0)
                    for n in range(size)
                ]
                for b in range(max(1, WRITER_RECORDS // size))
            ]
            started = time.thread_time()
            for batch in batches:
                store.log_queries(batch)
            records = sum(len(batch) for batch in batches)
            out[name][str(size)] = round((time.thread_time() - started) / records * 1000.0, 4)
    return out


def _postgres_cluster() -> Any:
    """A throwaway cluster as the tests start one, or ``None`` without PostgreSQL."""
    sys.path.insert(0, str(ROOT))
    from tests.store_support import PostgresCluster, postgres_bin

    bin_dir = postgres_bin()
    if bin_dir is None:
        print("PostgreSQL is not installed: the postgresql variant is skipped", file=sys.stderr)
        return None
    return PostgresCluster(bin_dir)


def _print(report: dict[str, Any]) -> None:
    for name, row in report["variants"].items():
        print(
            f"{name:>10}: p50 {row['p50_ms']:.2f} ms  p95 {row['p95_ms']:.2f} ms  "
            f"CPU {row['cpu_ms_per_call']:.2f} ms per call  (n={row['n']})"
        )
    for name, row in report["overhead"].items():
        low, high = row["p50_ratio_minus_1_ci95"]
        print(
            f"{name:>10}: p50 overhead {row['p50_ratio_minus_1']:+.2%} "
            f"(95 % CI {low:+.2%} .. {high:+.2%}; per round "
            f"{', '.join(f'{x:+.2%}' for x in row['per_round'])}); CPU "
            f"{row['cpu_ratio_minus_1']:+.2%}; log {row['log']}"
        )
    alone = report["wrapper_alone"]
    print(f"wrapper alone: {alone['wrapper_us']:.1f} µs per ask")
    for name, by_size in report["writer_cpu_ms_per_record"].items():
        shown = ", ".join(f"batch {size}: {ms:.3f}" for size, ms in by_size.items())
        print(f"writer CPU ms per record, {name}: {shown}")


if __name__ == "__main__":
    raise SystemExit(main())
