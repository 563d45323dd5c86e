"""``walletfaq serve --workers 1`` against ``--workers 2`` (processes): throughput, latency and
memory per worker process.

    python benchmarks/workers.py [--workers 1 2] [--concurrency 1 4 16] [--requests 300]
                                 [--seconds 8] [--model e5-small] [--out FILE.json]

Saves the bundled-corpus index (built or taken from the cache) to a temporary folder. For each
``--workers`` count, starts ``walletfaq serve --index DIR --workers N`` on a free 127.0.0.1
port (threads per process: the command's default, the usable cores shared among the
processes), answers 20 warm-up questions, then runs the levels of ``load.py`` (asyncio clients
posting ``/v1/ask`` with questions made unique, so the cache never answers) until
``--requests`` are sent or ``--seconds`` have passed per level; stops the server. The RSS of
each worker process (and of uvicorn's supervisor process with several workers) is read with
psutil after the warm-up and sampled every 0.25 s during the levels (peak). Bounded in time,
loopback only; client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import LevelResult, questions, run_level, start_server  # noqa: E402

logger = logging.getLogger("walletfaq.benchmarks.workers")


def worker_processes(
    server: subprocess.Popen[bytes],
) -> tuple[psutil.Process, list[psutil.Process]]:
    """The process started and the processes answering requests: uvicorn's spawned workers
    when there are several, else the started process itself."""
    parent = psutil.Process(server.pid)
    spawned = [
        child
        for child in parent.children(recursive=True)
        if "spawn_main" in " ".join(child.cmdline())
    ]
    return parent, spawned or [parent]


def rss_mb(process: psutil.Process) -> float:
    return round(process.memory_info().rss / 2**20, 1)


class PeakSampler:
    """Samples the RSS of some processes in a thread; keeps the peak of each."""

    def __init__(self, processes: list[psutil.Process], every_s: float = 0.25) -> None:
        self.processes = processes
        self.every_s = every_s
        self.peak = {process.pid: 0.0 for process in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in self.processes:
                try:
                    self.peak[process.pid] = max(self.peak[process.pid], rss_mb(process))
                except psutil.NoSuchProcess:
                    pass
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def measure(index: Path, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """One server with ``workers`` processes: levels and memory."""
    from walletfaq.service import threads_per_process

    process, url = start_server(index, workers=workers)
    try:
        supervisor, answering = worker_processes(process)
        with httpx.Client(base_url=url, timeout=30) as client:
            for text in questions(20, f"warm{workers}-"):
                client.post("/v1/ask", json={"question": text, "k": 5}).raise_for_status()
        idle = {process.pid: rss_mb(process) for process in answering}
        levels: list[LevelResult] = []
        with PeakSampler(answering) as sampler:
            for concurrency in args.concurrency:
                tag = f"w{workers}c{concurrency}-"
                level = asyncio.run(run_level(url, concurrency, args.requests, args.seconds, tag))
                logger.info("workers=%d %s", workers, level)
                levels.append(level)
        result = {
            "workers": workers,
            "threads_per_worker": threads_per_process(workers),
            "worker_pids": [p.pid for p in answering],
            "levels": [asdict(level) for level in levels],
            "rss_mb": {
                "per_worker_after_warmup": list(idle.values()),
                "per_worker_peak": [sampler.peak[p.pid] for p in answering],
                "supervisor": rss_mb(supervisor) if workers > 1 else None,
                "total_peak": round(
                    sum(sampler.peak.values()) + (rss_mb(supervisor) if workers > 1 else 0), 1
                ),
            },
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    return result


def to_markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| --workers | concurrency | ok | req/s | p50 ms | p95 ms | p99 ms | other outcomes |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        for level in run["levels"]:
            other = {k: v for k, v in level["outcomes"].items() if k != "200"}
            lines.append(
                f"| {run['workers']} | {level['concurrency']} | {level['ok']} | "
                f"{level['requests_per_s']} | {level['p50_ms']} | {level['p95_ms']} | "
                f"{level['p99_ms']} | "
                f"{', '.join(f'{k}: {v}' for k, v in sorted(other.items())) or '-'} |"
            )
    lines += ["", "| --workers | RSS per worker after warm-up MB | peak MB | supervisor MB |"]
    lines.append("|---:|---|---|---:|")
    for run in runs:
        memory = run["rss_mb"]
        lines.append(
            f"| {run['workers']} | {memory['per_worker_after_warmup']} | "
            f"{memory['per_worker_peak']} | {memory['supervisor'] or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=300, help="requests per level at most")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per level at most")
    parser.add_argument("--model", default="e5-small", help="model preset, hub name or path")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.seconds > 60 or args.requests < 1 or min(args.workers) < 1:
        raise SystemExit("--seconds must be at most 60, --requests and --workers at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the server stops too

    from walletfaq import FAQRetriever

    load_start = list(os.getloadavg())
    with TemporaryDirectory(prefix="walletfaq-workers-") as scratch:
        index = FAQRetriever.from_corpus(model=args.model).save(Path(scratch) / "index")
        runs = [measure(index, workers, args) for workers in args.workers]
    print(to_markdown(runs))
    if args.out:
        payload = {
            "runs": runs,
            "settings": {
                "concurrency": args.concurrency,
                "requests": args.requests,
                "seconds": args.seconds,
                "model": args.model,
                "threads_per_worker": "walletfaq serve default: usable cores // workers",
            },
            "machine": {
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_start": load_start,
                "load_average_end": list(os.getloadavg()),
            },
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
