"""Soak test of ``walletfaq serve``: edits every second and continuous questions, then a check
that no accepted edit was lost.

    python benchmarks/soak.py [--seconds 600] [--clients 3] [--workers 1] [--edit-every 1]
                              [--model e5-small] [--out benchmarks/results/soak.json]

Saves the bundled-corpus index (built or taken from the cache) to a temporary folder and
starts ``walletfaq serve --index`` on it, on a free 127.0.0.1 port in a subprocess, with a
random admin token. For ``--seconds`` seconds:

- ``--clients`` threads post ``/v1/ask`` one after the other (bundled evaluation queries made
  unique by a suffix, so every question is encoded), counting every outcome;
- one thread makes an admin edit every ``--edit-every`` seconds, rotating: add a new entry
  (``POST /v1/entries``), replace an entry (``PUT``: a soak entry, or every fourth time a
  bundled one), remove the oldest soak entry (``DELETE``); it keeps the expected corpus,
  applying each edit the server accepted;
- the resident memory (RSS) of the server's processes is sampled every 10 s.

Then it checks, with the server still running, that ``GET /v1/entries/{id}`` answers every
expected entry exactly and 404 for every removed one; stops the server; loads the final
directory with ``FAQRetriever.load`` and compares its corpus with the expected one, entry by
entry. Reports outcomes, latency, edits, memory (start, end, max, slope) and the check, and
exits non-zero when an error occurred or an edit was lost. It stops by itself: the run is
bounded by ``--seconds`` plus the final check (and a SIGTERM stops the server too).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import secrets
import signal
import statistics
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
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import percentile, questions, start_server  # noqa: E402

logger = logging.getLogger("walletfaq.benchmarks.soak")

RSS_EVERY_S = 10.0


@dataclass
class Expected:
    """The corpus the server should hold: entries by id, in the corpus file format."""

    entries: dict[str, dict[str, Any]]
    removed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class EditLog:
    """What the editing thread did."""

    attempted: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class AskLog:
    """What the asking threads saw."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def server_rss_mb(pid: int) -> dict[str, float]:
    """RSS (MB) of the server process and of each of its worker processes."""
    parent = psutil.Process(pid)
    sizes = {}
    for process in [parent, *parent.children(recursive=True)]:
        try:
            sizes[str(process.pid)] = process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return sizes


def ask_forever(url: str, stop: threading.Event, log: AskLog, tag: str) -> None:
    texts = questions(2000, tag)
    with httpx.Client(base_url=url, timeout=30) as client:
        for text in itertools.cycle(texts):
            if stop.is_set():
                return
            sent = time.perf_counter()
            try:
                response = client.post("/v1/ask", json={"question": text, "k": 5})
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            elapsed = (time.perf_counter() - sent) * 1000
            with log.lock:
                log.outcomes[outcome] += 1
                if outcome == "200":
                    log.latencies_ms.append(elapsed)


def edit_forever(
    url: str,
    token: str,
    stop: threading.Event,
    every_s: float,
    expected: Expected,
    log: EditLog,
    bundled_ids: list[str],
) -> None:
    """One edit every ``every_s`` seconds: add, replace, remove, in turn."""
    headers = {"Authorization": f"Bearer {token}"}
    live: list[str] = []  # soak entries present, oldest first
    made = 0
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        for step in itertools.count():
            started = time.monotonic()
            if stop.is_set():
                return
            kind = ("add", "replace", "remove")[step % 3]
            if kind == "remove" and len(live) < 3:
                kind = "add"
            if kind == "add":
                made += 1
                entry = {
                    "id": f"soak-{made}",
                    "category": "soak",
                    "question": f"第{made}号测试问题：钱包的临时活动{made}怎么参加",
                    "answer": f"临时活动{made}的说明（第一版）。",
                    "alt_questions": [f"活动{made}怎么参加"],
                }
                request = ("POST", "/v1/entries", entry)
            elif kind == "replace":
                if step % 12 == 1:  # every fourth replacement edits a bundled entry
                    target = bundled_ids[(step // 12) % len(bundled_ids)]
                    with expected.lock:
                        entry = dict(expected.entries[target])
                    entry["answer"] = f"{entry['answer'].split(' [soak')[0]} [soak {step}]"
                else:
                    target = live[-1]
                    with expected.lock:
                        entry = dict(expected.entries[target])
                    entry["answer"] = f"临时活动说明（第 {step} 次修改）。"
                request = ("PUT", f"/v1/entries/{entry['id']}", entry)
            else:
                target = live[0]
                request = ("DELETE", f"/v1/entries/{target}", None)
            method, path, body = request
            log.attempted[kind] += 1
            sent = time.perf_counter()
            try:
                response = client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                log.failures.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            else:
                log.latencies_ms.append((time.perf_counter() - sent) * 1000)
                if response.status_code in (200, 201):
                    log.accepted[kind] += 1
                    with expected.lock:
                        if kind == "remove":
                            del expected.entries[target]
                            expected.removed.add(target)
                            live.pop(0)
                        else:
                            expected.entries[entry["id"]] = entry
                            expected.removed.discard(entry["id"])
                            if kind == "add":
                                live.append(entry["id"])
                else:
                    log.failures.append(f"{method} {path}: {response.status_code} {response.text}")
            stop.wait(max(0.0, every_s - (time.monotonic() - started)))


def normalized(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry in the corpus file format, for comparison."""
    return {
        "id": entry["id"],
        "category": entry["category"],
        "question": entry["question"],
        "answer": entry["answer"],
        "alt_questions": list(entry.get("alt_questions", [])),
    }


def check_over_http(url: str, expected: Expected) -> list[str]:
    """Every expected entry is served exactly; every removed one is 404."""
    problems = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for entry_id, entry in expected.entries.items():
            response = client.get(f"/v1/entries/{entry_id}")
            if response.status_code != 200:
                problems.append(f"GET {entry_id}: {response.status_code}")
            elif normalized(response.json()) != normalized(entry):
                problems.append(f"GET {entry_id}: {response.json()} != {entry}")
        for entry_id in sorted(expected.removed):
            status = client.get(f"/v1/entries/{entry_id}").status_code
            if status != 404:
                problems.append(f"GET removed {entry_id}: {status}")
    return problems


def check_directory(index: Path, expected: Expected) -> list[str]:
    """The saved directory holds exactly the expected corpus."""
    from walletfaq import FAQRetriever

    saved = {entry.id: normalized(entry.to_dict()) for entry in FAQRetriever.load(index).corpus}
    problems = [f"lost: {i}" for i in sorted(set(expected.entries) - set(saved))]
    extra = sorted(set(saved) - set(expected.entries))
    problems += [f"not removed or unexpected: {i}" for i in extra]
    problems += [
        f"differs: {i}"
        for i in sorted(set(saved) & set(expected.entries))
        if saved[i] != normalized(expected.entries[i])
    ]
    return problems


def slope_mb_per_min(samples: list[dict[str, float]]) -> float:
    """Least-squares slope of total RSS over time (MB per minute); NaN under 2 samples."""
    if len(samples) < 2:
        return float("nan")
    times = [s["t_s"] / 60 for s in samples]
    values = [s["total_mb"] for s in samples]
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread


def second_half(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples of the run's second half (where a leak would show without the start-up)."""
    if not samples:
        return []
    middle = samples[-1]["t_s"] / 2
    return [sample for sample in samples if sample["t_s"] >= middle]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="soak duration")
    parser.add_argument("--clients", type=int, default=3, help="threads asking questions")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--edit-every", type=float, default=1.0, help="seconds between edits")
    parser.add_argument("--model", default="e5-small", help="model preset, hub name or path")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 4 * 3600 or args.clients < 1 or args.edit_every <= 0:
        raise SystemExit("--seconds must be in [1, 14400], --clients >= 1, --edit-every > 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the server too

    from walletfaq import FAQRetriever

    token = secrets.token_hex(16)
    with TemporaryDirectory(prefix="walletfaq-soak-") as scratch:
        index = FAQRetriever.from_corpus(model=args.model).save(Path(scratch) / "index")
        bundled = FAQRetriever.load(index)
        expected = Expected({entry.id: normalized(entry.to_dict()) for entry in bundled.corpus})
        bundled_ids = [entry.id for entry in bundled.corpus][:20]
        del bundled
        process, url = start_server(index, workers=args.workers, admin_token=token)
        stop = threading.Event()
        asks, edits = AskLog(), EditLog()
        samples: list[dict[str, Any]] = []
        problems: list[str] = []
        try:
            started = time.monotonic()
            threads = [
                threading.Thread(target=ask_forever, args=(url, stop, asks, f"soak{n}-"))
                for n in range(args.clients)
            ]
            threads.append(
                threading.Thread(
                    target=edit_forever,
                    args=(url, token, stop, args.edit_every, expected, edits, bundled_ids),
                )
            )
            for thread in threads:
                thread.start()
            deadline = started + args.seconds
            next_sample = started
            while True:
                now = time.monotonic()
                if now >= next_sample:
                    sizes = server_rss_mb(process.pid)
                    samples.append(
                        {
                            "t_s": round(now - started, 1),
                            "total_mb": round(sum(sizes.values()), 1),
                            "per_process_mb": {k: round(v, 1) for k, v in sizes.items()},
                        }
                    )
                    logger.info(
                        "t=%4.0f s rss %.0f MB asks %s edits %s",
                        now - started,
                        samples[-1]["total_mb"],
                        dict(asks.outcomes),
                        dict(edits.accepted),
                    )
                    next_sample += RSS_EVERY_S
                if now >= deadline or process.poll() is not None:
                    break
                time.sleep(min(1.0, max(0.0, min(deadline, next_sample) - now)))
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            elapsed = time.monotonic() - started
            if process.poll() is not None:
                problems.append(f"the server exited with status {process.returncode}")
            else:
                problems += check_over_http(url, expected)
        finally:
            stop.set()
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        problems += check_directory(index, expected)
    errors = sum(count for outcome, count in asks.outcomes.items() if outcome != "200")
    errors += len(edits.failures)
    later = [s for s in samples if s["t_s"] >= 60] or samples
    result = {
        "seconds": round(elapsed, 1),
        "settings": {
            "clients": args.clients,
            "workers": args.workers,
            "edit_every_s": args.edit_every,
            "model": args.model,
        },
        "asks": {
            "outcomes": dict(asks.outcomes),
            "per_s": round(asks.outcomes["200"] / elapsed, 1),
            "p50_ms": round(percentile(asks.latencies_ms, 50), 2),
            "p95_ms": round(percentile(asks.latencies_ms, 95), 2),
            "p99_ms": round(percentile(asks.latencies_ms, 99), 2),
        },
        "edits": {
            "attempted": dict(edits.attempted),
            "accepted": dict(edits.accepted),
            "failures": edits.failures[:20],
            "p50_ms": round(percentile(edits.latencies_ms, 50), 1),
            "p95_ms": round(percentile(edits.latencies_ms, 95), 1),
        },
        "final_entries": len(expected.entries),
        "removed_entries": len(expected.removed),
        "errors": errors,
        "lost_or_wrong_edits": problems,
        "rss_mb": {
            "every_s": RSS_EVERY_S,
            "start": samples[0]["total_mb"] if samples else None,
            "end": samples[-1]["total_mb"] if samples else None,
            "max": max(s["total_mb"] for s in samples) if samples else None,
            "slope_mb_per_min_all": round(slope_mb_per_min(samples), 3),
            "slope_mb_per_min_after_60s": round(slope_mb_per_min(later), 3),
            "slope_mb_per_min_second_half": round(slope_mb_per_min(second_half(samples)), 3),
            "samples": samples,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_end": list(os.getloadavg()),
        },
    }
    summary = {k: v for k, v in result.items() if k != "rss_mb"}
    summary["rss_mb"] = {k: v for k, v in result["rss_mb"].items() if k != "samples"}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return 0 if errors == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
