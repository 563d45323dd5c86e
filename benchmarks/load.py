"""Load test of ``walletfaq serve``: throughput and latency at several concurrency levels.

    python benchmarks/load.py [--requests 400] [--seconds 8] [--concurrency 1 4 16 64]
                              [--workers N] [--threads N] [--queue N] [--model e5-small]
                              [--out FILE.json]
    python benchmarks/load.py --url http://127.0.0.1:8000    # an already running server

Builds (or takes from the cache) the bundled-corpus retriever, times ``ask()`` in process,
saves the index to a temporary folder and starts ``walletfaq serve --index`` on it, on a free
127.0.0.1 port in a subprocess (unless ``--url`` names a loopback server), then times
``ask()`` in process again once the server is stopped. For each concurrency level, that many
asyncio clients (httpx) post ``/v1/ask`` until ``--requests`` requests are sent or ``--seconds``
have passed, whichever comes first: the run is bounded and stops by itself. Every question is
a bundled evaluation query made unique by a suffix, so the retriever's query cache never
answers (this measures encoding + search + HTTP, not the cache).

Reports, per level: successful requests per second, p50/p95/p99 latency of successful
requests, and the count of every other outcome (503 = shed by the bounded queue; a client
told 503 waits ``Retry-After`` seconds, at most 1, before its next request). Then the
ratio of the service's p50 at concurrency 1 to the p50 of an in-process ``FAQRetriever.ask()``
on the same kind of questions (the HTTP + JSON + thread-hop overhead), measured twice: against
in-process timings taken before and after the levels, and with one HTTP request and one
in-process ask alternated question by question (the figure to trust on a busy machine).
Client and server share the machine's cores: on a small machine the client's own CPU use is
part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from walletfaq import FAQRetriever

logger = logging.getLogger("walletfaq.benchmarks.load")


@dataclass
class LevelResult:
    """What one concurrency level measured (latencies in milliseconds)."""

    concurrency: int
    sent: int
    ok: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    outcomes: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def questions(count: int, tag: str) -> list[str]:
    """``count`` distinct questions: bundled evaluation queries with a unique suffix."""
    from walletfaq import load_bundled_queries

    base = [query.query for query in load_bundled_queries()]
    return [f"{base[i % len(base)]} ({tag}{i})" for i in range(count)]


async def run_level(
    url: str, concurrency: int, max_requests: int, max_seconds: float, tag: str
) -> LevelResult:
    """Post ``/v1/ask`` from ``concurrency`` clients until the request or time budget ends."""
    texts = questions(max_requests, tag)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker() -> None:
            nonlocal next_index
            while next_index < max_requests and time.perf_counter() < deadline:
                text = texts[next_index]
                next_index += 1
                sent = time.perf_counter()
                try:
                    response = await client.post("/v1/ask", json={"question": text, "k": 5})
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                    continue
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - sent) * 1000)
                outcomes[str(response.status_code)] += 1
                if response.status_code == 503:  # shed: wait as told, like a polite client
                    await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 1.0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LevelResult(
        concurrency=concurrency,
        sent=next_index,
        ok=len(latencies),
        seconds=round(elapsed, 3),
        requests_per_s=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        outcomes=dict(outcomes),
    )


def in_process_p50(retriever: FAQRetriever, count: int, tag: str) -> float:
    """p50 (ms) of ``retriever.ask()`` in this process, one new question at a time."""
    texts = questions(count + 5, tag)
    for text in texts[:5]:  # warm-up
        retriever.ask(text, k=5)
    timings = []
    for text in texts[5:]:
        started = time.perf_counter()
        retriever.ask(text, k=5)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def paired_p50(url: str, retriever: FAQRetriever, count: int) -> tuple[float, float]:
    """p50 (ms) of one HTTP ``/v1/ask`` and of one in-process ``ask()``, alternated question by
    question (concurrency 1), so a change in the machine's load hits both alike."""
    texts = questions(2 * (count + 5), "paired-")
    http_ms: list[float] = []
    local_ms: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(count + 5):
            started = time.perf_counter()
            response = client.post("/v1/ask", json={"question": texts[2 * i], "k": 5})
            http = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            started = time.perf_counter()
            retriever.ask(texts[2 * i + 1], k=5)
            local = (time.perf_counter() - started) * 1000
            if i >= 5:  # the first five are warm-up
                http_ms.append(http)
                local_ms.append(local)
    return statistics.median(http_ms), statistics.median(local_ms)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    index: Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    queue: int | None = None,
    admin_token: str | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """``walletfaq serve --index INDEX --workers WORKERS`` (processes) on a free loopback
    port; returns it once ``/readyz`` answers."""
    port = free_port()
    command = [sys.executable, "-m", "walletfaq", "-q", "serve", "--port", str(port)]
    command += ["--index", str(index), "--workers", str(workers)]
    if threads:
        command += ["--threads", str(threads)]
    if queue is not None:
        command += ["--queue", str(queue)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("WALLETFAQ_READ_TOKEN", None)
    env.pop("WALLETFAQ_ADMIN_TOKEN", None)
    if admin_token is not None:
        env["WALLETFAQ_ADMIN_TOKEN"] = admin_token
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"walletfaq serve exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("walletfaq serve was not ready within 300 s")


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"--url must be a loopback address (127.0.0.1, ::1), got {host!r}")


def to_markdown(levels: list[LevelResult], inproc_ms: float, ratio: float) -> str:
    lines = [
        "| concurrency | sent | ok | req/s | p50 ms | p95 ms | p99 ms | other outcomes |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for level in levels:
        other = {k: v for k, v in level.outcomes.items() if k != "200"}
        lines.append(
            f"| {level.concurrency} | {level.sent} | {level.ok} | {level.requests_per_s} | "
            f"{level.p50_ms} | {level.p95_ms} | {level.p99_ms} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(other.items())) or '-'} |"
        )
    lines.append("")
    lines.append(
        f"in-process ask() p50: {inproc_ms:.2f} ms (mean of before and after); "
        f"service p50 at concurrency 1 / in-process p50 = {ratio:.2f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running loopback server (default: start one)")
    parser.add_argument("--requests", type=int, default=400, help="requests per level at most")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per level at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--threads", type=int, help="threads per worker process (default: cores / workers)"
    )
    parser.add_argument("--queue", type=int, help="server queue size (default: 4 per thread)")
    parser.add_argument("--model", default="e5-small", help="model preset, hub name or path")
    parser.add_argument(
        "--inproc", type=int, default=50, help="in-process asks timed, before and after"
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # a SIGTERM (e.g. from `timeout`) unwinds through `finally`: the server is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.seconds > 60 or args.requests < 1:
        raise SystemExit("--seconds must be at most 60 and --requests at least 1")

    from walletfaq import FAQRetriever

    process = None
    with TemporaryDirectory(prefix="walletfaq-load-") as scratch:
        # the server and the in-process timings load the very same saved index, so both
        # encode questions the same way (a freshly built retriever may still hold the
        # sentence-transformers model instead of the fast query engine a loaded one uses)
        index = FAQRetriever.from_corpus(model=args.model).save(Path(scratch) / "index")
        retriever = FAQRetriever.load(index)
        before_ms = in_process_p50(retriever, args.inproc, "before-")
        if args.url:
            check_loopback(args.url)
            url = args.url.rstrip("/")
        else:
            process, url = start_server(
                index, workers=args.workers, threads=args.threads, queue=args.queue
            )
        try:
            paired = paired_p50(url, retriever, args.inproc) if args.inproc else None
            levels = []
            for concurrency in args.concurrency:
                level = asyncio.run(
                    run_level(url, concurrency, args.requests, args.seconds, f"c{concurrency}-")
                )
                logger.info("%s", level)
                levels.append(level)
        finally:
            if process is not None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        after_ms = in_process_p50(retriever, args.inproc, "after-")
    inproc_ms = statistics.mean([before_ms, after_ms])
    logger.info("in-process ask() p50: %.2f ms before, %.2f ms after", before_ms, after_ms)
    single = next((level for level in levels if level.concurrency == 1), levels[0])
    ratio = single.p50_ms / inproc_ms
    print(to_markdown(levels, inproc_ms, ratio))
    if paired is not None:
        print(
            f"alternated at concurrency 1: service p50 {paired[0]:.2f} ms, in-process "
            f"{paired[1]:.2f} ms, ratio {paired[0] / paired[1]:.2f}"
        )
    if args.out:
        payload = {
            "levels": [asdict(level) for level in levels],
            "inprocess_ask_p50_ms": round(inproc_ms, 3),
            "inprocess_ask_p50_ms_before_after": [round(before_ms, 3), round(after_ms, 3)],
            "service_p50_over_inprocess_p50": round(ratio, 2),
            "alternated_p50_ms": None
            if paired is None
            else {
                "service": round(paired[0], 3),
                "in_process": round(paired[1], 3),
                "ratio": round(paired[0] / paired[1], 3),
            },
            "cpu_count": os.cpu_count(),
            "settings": {
                "workers": args.workers,
                "threads": args.threads,
                "queue": args.queue,
                "model": args.model,
            },
        }
        args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
