"""Replicas of the store of record (``walletfaq serve --store postgresql://...``): edit-to-visible
latency on every replica, aggregate throughput of 1, 2 and 3 replicas, and catch-up after a
store outage.

    python benchmarks/replicas.py [--model e5-small] [--edits 30] [--replicas 3]
                                  [--concurrency 8] [--requests 300] [--seconds 8]
                                  [--outage 30] [--queued 20] [--threads 1]
                                  [--out benchmarks/results/replicas.json]

Starts a throwaway PostgreSQL cluster (the test suite's, ``tests/store_support.py``: Debian's
``initdb``/``pg_ctl``, loopback, fsync off), imports the bundled corpus as revision 1 and starts
``--replicas`` processes of ``walletfaq serve --store URL`` on free 127.0.0.1 ports (the first
builds the index into the user cache, the others load it). Then, bounded in requests and time
(it stops by itself; every wait has a deadline):

1. **edit-to-visible, NOTIFY**: ``--edits`` edits, each a ``PUT`` through the next replica
   (round robin) that adds a new alternative question to an entry (one text to embed on every
   replica). The time from sending the edit until each replica serves it: on the replica that
   took it, the ``PUT``'s own latency (it answers after serving the edit: read-your-writes,
   checked with a ``GET`` right after); on the others, polled with ``GET /v1/entries/{id}``
   every 5 ms.
2. **throughput**: ``/v1/ask`` from ``--concurrency`` asyncio clients spread round robin over
   the first 1, 2, ... replicas (as a load balancer would), unique questions (no cache),
   until ``--requests`` are answered or ``--seconds`` pass.
3. **outage**: PostgreSQL is stopped (``pg_ctl stop -m fast``) for ``--outage`` seconds while
   a client keeps asking every replica (reads must stay 200) and ``/readyz`` is read (it must
   say degraded) and one edit is tried (it must be 503). Edits cannot be written while the
   store is down (the store *is* PostgreSQL), so ``--queued`` edits are written straight into
   the store by this process right after ``pg_ctl start`` returns, while the replicas are
   still reconnecting; measured: the time from the restart until every replica serves the
   last of them.
4. **edit-to-visible, polling only**: the replicas are restarted with ``--no-listen``
   (``--poll-interval`` 1 s, the default) and step 1 is run again, for comparison. The time
   the restart takes is recorded too (``restart_after_edits_s``: the content changed since the
   cached index was built, so the first replica embeds the whole corpus; ``start_s`` is the
   first start, which loads the index when an earlier run cached that content).

Writes the results (JSON) to ``--out`` and prints a summary.
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
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from load import free_port, percentile, questions  # noqa: E402

from tests.store_support import PostgresCluster, postgres_bin  # noqa: E402

logger = logging.getLogger("walletfaq.benchmarks.replicas")

TOKEN = "bench-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READY_LIMIT_S = 600.0
VISIBLE_LIMIT_S = 60.0


@dataclass
class Replica:
    """One ``walletfaq serve --store`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path


@dataclass
class Latencies:
    """Edit-to-visible latencies (milliseconds)."""

    mode: str
    edits: int
    editing_replica_ms: list[float] = field(default_factory=list)
    other_replicas_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        every = self.editing_replica_ms + self.other_replicas_ms
        return {
            "mode": self.mode,
            "edits": self.edits,
            "all_replicas": _quantiles(every),
            "editing_replica": _quantiles(self.editing_replica_ms),
            "other_replicas": _quantiles(self.other_replicas_ms),
        }


def _quantiles(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1) if values else None,
    }


# --------------------------------------------------------------------------- replicas
def start_replicas(
    url: str, count: int, args: argparse.Namespace, logs: Path, *extra: str
) -> list[Replica]:
    """``count`` replicas, the first alone (it may build the index), then the others."""
    replicas: list[Replica] = []
    try:
        for number in range(count):
            replicas.append(start_replica(url, args, logs / f"replica{number}.log", *extra))
            if number == 0:
                wait_ready(replicas[0])
        for replica in replicas[1:]:
            wait_ready(replica)
    except BaseException:
        stop_replicas(replicas)
        raise
    return replicas


def start_replica(url: str, args: argparse.Namespace, log: Path, *extra: str) -> Replica:
    port = free_port()
    command = [sys.executable, "-m", "walletfaq", "-q", "serve", "--store", url]
    command += ["--model", args.model, "--port", str(port), *extra]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("WALLETFAQ_READ_TOKEN", None)
    env.pop("WALLETFAQ_ADMIN_TOKEN", None)
    env["WALLETFAQ_ADMIN_TOKENS"] = f"bench:{TOKEN}"
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return Replica(process, f"http://127.0.0.1:{port}", log)


def wait_ready(replica: Replica) -> None:
    deadline = time.monotonic() + READY_LIMIT_S
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            tail = replica.log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"a replica exited ({replica.process.returncode}):\n{tail}")
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"a replica was not ready within {READY_LIMIT_S:.0f} s")


def stop_replicas(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGINT)
    for replica in replicas:
        try:
            replica.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=10)


# --------------------------------------------------------------------------- edit-to-visible
async def edit_latencies(
    replicas: list[Replica], entries: list[dict[str, Any]], mode: str, edits: int, tag: str
) -> Latencies:
    """``edits`` edits round robin over ``replicas``; the time each replica takes to serve
    each one (see the module doc)."""
    result = Latencies(mode=mode, edits=edits)
    async with httpx.AsyncClient(timeout=VISIBLE_LIMIT_S) as client:
        for number in range(edits):
            entry = dict(entries[number % len(entries)])
            alt = f"基准测试的新问法 {tag}{number}"
            entry["alt_questions"] = [*entry["alt_questions"][:3], alt]
            editor = replicas[number % len(replicas)]
            others = [r for r in replicas if r is not editor]
            sent = time.perf_counter()
            took, *visible = await asyncio.gather(
                put_and_check(client, editor, entry, alt, sent),
                *(seen(client, r, str(entry["id"]), alt, sent) for r in others),
            )
            result.editing_replica_ms.append(took)
            result.other_replicas_ms.extend(visible)
            await asyncio.sleep(0.2)
    return result


async def put_and_check(
    client: httpx.AsyncClient, editor: Replica, entry: dict[str, Any], alt: str, sent: float
) -> float:
    """Milliseconds from ``sent`` to the answer of the ``PUT`` of ``entry`` to ``editor``,
    which must serve it at once (read-your-writes, checked)."""
    path = f"{editor.url}/v1/entries/{entry['id']}"
    response = await client.put(path, json=entry, headers=AUTH)
    response.raise_for_status()
    took = (time.perf_counter() - sent) * 1000
    check = await client.get(path)
    if alt not in check.json()["alt_questions"]:
        raise SystemExit(f"{editor.url} answered the edit without serving it")
    return took


async def seen(
    client: httpx.AsyncClient, replica: Replica, entry_id: str, alt: str, sent: float
) -> float:
    """Milliseconds from ``sent`` until ``replica`` serves ``entry_id`` with ``alt``."""
    path = f"{replica.url}/v1/entries/{entry_id}"
    deadline = sent + VISIBLE_LIMIT_S
    while time.perf_counter() < deadline:
        response = await client.get(path)
        if response.status_code == 200 and alt in response.json()["alt_questions"]:
            return (time.perf_counter() - sent) * 1000
        await asyncio.sleep(0.005)
    raise SystemExit(f"{replica.url} did not serve an edit within {VISIBLE_LIMIT_S:.0f} s")


# --------------------------------------------------------------------------- throughput
async def throughput(
    replicas: list[Replica], concurrency: int, max_requests: int, max_seconds: float, tag: str
) -> dict[str, Any]:
    """``/v1/ask`` spread round robin over ``replicas`` until the budget ends."""
    texts = questions(max_requests, tag)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency * len(replicas))
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker() -> None:
            nonlocal next_index
            while next_index < max_requests and time.perf_counter() < deadline:
                number = next_index
                next_index += 1
                replica = replicas[number % len(replicas)]
                body = {"question": texts[number], "k": 5}
                began = time.perf_counter()
                try:
                    response = await client.post(f"{replica.url}/v1/ask", json=body)
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                    continue
                outcomes[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - began) * 1000)
                elif response.status_code == 503:
                    await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 1.0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "replicas": len(replicas),
        "concurrency": concurrency,
        "sent": next_index,
        "ok": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "outcomes": dict(outcomes),
    }


# --------------------------------------------------------------------------- outage
def outage(
    cluster: PostgresCluster,
    url: str,
    replicas: list[Replica],
    entries: list[dict[str, Any]],
    seconds: float,
    queued: int,
    tag: str,
) -> dict[str, Any]:
    """Stop PostgreSQL for ``seconds``, restart it, write ``queued`` edits at once; how the
    replicas behaved and how long they took to serve the last edit."""
    from walletfaq.store import Change, open_store

    reads: Counter[int | str] = Counter()
    asking = threading.Event()
    asking.set()

    def ask() -> None:
        texts = questions(100_000, "outage-")
        with httpx.Client(timeout=10) as client:
            number = 0
            while asking.is_set() and number < len(texts):
                replica = replicas[number % len(replicas)]
                try:
                    response = client.post(
                        f"{replica.url}/v1/ask", json={"question": texts[number], "k": 3}
                    )
                    reads[response.status_code] += 1
                except httpx.HTTPError as exc:
                    reads[type(exc).__name__] += 1
                number += 1
                time.sleep(0.05)

    reader = threading.Thread(target=ask, daemon=True)
    reader.start()
    stopped = time.monotonic()
    cluster.stop_server()
    logger.info("PostgreSQL stopped for %.0f s", seconds)
    degraded_after = None
    while degraded_after is None and time.monotonic() - stopped < seconds:
        states = [httpx.get(f"{r.url}/readyz", timeout=5).json() for r in replicas]
        if all(state["status"] == "degraded" for state in states):
            degraded_after = time.monotonic() - stopped
            reasons = [state["store"]["degraded_reason"] for state in states]
        time.sleep(0.1)
    edit = httpx.put(
        f"{replicas[0].url}/v1/entries/{entries[0]['id']}",
        json=entries[0],
        headers=AUTH,
        timeout=30,
    )
    time.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
    cluster.start()
    restarted = time.monotonic()
    logger.info(
        "PostgreSQL restarted after %.1f s; writing %d queued edits", restarted - stopped, queued
    )
    with open_store(url) as store:
        last = None
        for number in range(queued):
            entry = dict(entries[(number + 1) % len(entries)])
            entry["alt_questions"] = [*entry["alt_questions"][:3], f"恢复后的新问法 {tag}{number}"]
            last = (entry["id"], entry["alt_questions"][-1])
            store.apply([Change.update(entry)], author="queued", reason="written after restart")
        written = time.monotonic()
        head = store.head()
    assert last is not None
    visible: dict[str, float] = {}
    deadline = time.monotonic() + VISIBLE_LIMIT_S
    while len(visible) < len(replicas) and time.monotonic() < deadline:
        for replica in replicas:
            if replica.url in visible:
                continue
            response = httpx.get(f"{replica.url}/v1/entries/{last[0]}", timeout=5)
            if response.status_code == 200 and last[1] in response.json()["alt_questions"]:
                visible[replica.url] = time.monotonic()
        time.sleep(0.005)
    if len(visible) < len(replicas):
        raise SystemExit(f"not every replica caught up within {VISIBLE_LIMIT_S} s")
    ready_again: dict[str, float] = {}
    while len(ready_again) < len(replicas) and time.monotonic() < deadline:
        for replica in replicas:
            state = httpx.get(f"{replica.url}/readyz", timeout=5).json()
            if state["status"] == "ready" and state["store"]["listening"]:
                ready_again.setdefault(replica.url, time.monotonic())
        time.sleep(0.05)
    asking.clear()
    reader.join(timeout=30)
    return {
        "outage_s": round(restarted - stopped, 2),
        "reads_during": {str(k): v for k, v in reads.items()},
        "all_degraded_after_s": None if degraded_after is None else round(degraded_after, 2),
        "degraded_reasons": reasons if degraded_after is not None else None,
        "edit_while_down": {
            "status": edit.status_code,
            "retry_after": edit.headers.get("Retry-After"),
        },
        "queued_edits": queued,
        "written_in_s_after_restart": round(written - restarted, 3),
        "store_head": head,
        "catch_up_s_from_restart": {
            url_: round(at - restarted, 3) for url_, at in sorted(visible.items())
        },
        "catch_up_s_from_last_commit": {
            url_: round(at - written, 3) for url_, at in sorted(visible.items())
        },
        "ready_and_listening_s_from_restart": {
            url_: round(at - restarted, 3) for url_, at in sorted(ready_again.items())
        },
    }


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="e5-small", help="model preset, hub name or path")
    parser.add_argument("--replicas", type=int, default=3, help="replica processes (≤ 4)")
    parser.add_argument("--threads", type=int, default=1, help="encoding threads per replica")
    parser.add_argument("--edits", type=int, default=30, help="edits timed per mode (≤ 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients for throughput")
    parser.add_argument("--requests", type=int, default=300, help="asks per level at most")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per level at most")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds PostgreSQL is down")
    parser.add_argument("--queued", type=int, default=20, help="edits written after restart")
    parser.add_argument(
        "--run-tag",
        default=time.strftime("%Y%m%d%H%M%S"),
        help="put in the edited texts, so that each run's content is new (default: the time)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if not 1 <= args.replicas <= 4 or not 1 <= args.edits <= 200 or args.seconds > 60:
        raise SystemExit("bounds: 1-4 replicas, 1-200 edits, at most 60 s per level")
    if not 1 <= args.outage <= 120 or not 1 <= args.queued <= 500 or args.requests < 1:
        raise SystemExit("bounds: outage 1-120 s, 1-500 queued edits, at least 1 request")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: replicas and PG stop
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")

    from walletfaq.data.corpus import load_bundled_corpus
    from walletfaq.store import open_store

    started = time.monotonic()
    load_start = list(os.getloadavg())
    cluster = PostgresCluster(bin_dir)
    replicas: list[Replica] = []
    results: dict[str, Any] = {}
    try:
        url = cluster.new_database()
        corpus = load_bundled_corpus()
        with open_store(url, create=True) as store:
            store.init(corpus, author="bench")
        entries = [entry.to_dict() for entry in corpus.entries[:40]]
        with TemporaryDirectory(prefix="walletfaq-replicas-") as scratch:
            logs = Path(scratch)
            began = time.monotonic()
            replicas = start_replicas(url, args.replicas, args, logs)
            results["start_s"] = round(time.monotonic() - began, 1)
            logger.info("%d replicas ready after %.0f s", len(replicas), results["start_s"])
            run = args.run_tag  # new texts each run: the restart below cannot load a cached index
            warm = asyncio.run(edit_latencies(replicas, entries, "warm-up", 2, f"{run}w"))
            results["warm_up_edits_ms"] = warm.summary()  # the first edits load the embedder
            notify = asyncio.run(edit_latencies(replicas, entries, "notify", args.edits, f"{run}n"))
            results["edit_to_visible_notify"] = notify.summary()
            logger.info("NOTIFY: %s", results["edit_to_visible_notify"])
            levels = []
            for count in range(1, len(replicas) + 1):
                level = asyncio.run(
                    throughput(
                        replicas[:count],
                        args.concurrency,
                        args.requests,
                        args.seconds,
                        f"r{count}-",
                    )  # fmt: skip
                )
                logger.info("throughput: %s", level)
                levels.append(level)
            results["throughput"] = levels
            results["outage"] = outage(
                cluster, url, replicas, entries, args.outage, args.queued, run
            )
            logger.info("outage: %s", results["outage"])
            stop_replicas(replicas)
            began = time.monotonic()
            replicas = start_replicas(url, args.replicas, args, logs, "--no-listen")
            # the content changed since the cached index: the first replica embeds it all
            results["restart_after_edits_s"] = round(time.monotonic() - began, 1)
            asyncio.run(edit_latencies(replicas, entries, "warm-up", 2, f"{run}pw"))
            polling = asyncio.run(
                edit_latencies(replicas, entries, "polling", args.edits, f"{run}p")
            )
            results["edit_to_visible_polling_1s"] = polling.summary()
            logger.info("polling: %s", results["edit_to_visible_polling_1s"])
            stop_replicas(replicas)
            replicas = []
    finally:
        stop_replicas(replicas)
        cluster.stop()
    payload = {
        **results,
        "settings": {
            "model": args.model,
            "replicas": args.replicas,
            "threads_per_replica": args.threads,
            "edits": args.edits,
            "concurrency": args.concurrency,
            "requests_per_level": args.requests,
            "seconds_per_level": args.seconds,
            "outage_s": args.outage,
            "queued_edits": args.queued,
            "poll_interval_s": 1.0,
            "run_tag": args.run_tag,
            "corpus_entries": len(corpus),
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()),
        },
        "wall_s": round(time.monotonic() - started, 1),
    }
    text = json.dumps(payload, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
