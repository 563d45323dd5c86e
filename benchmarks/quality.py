"""Compare model presets and indexing choices on retrieval quality and query latency.

Runs every variant in the same process, on:
- the bundled corpus + ``corpus/eval/queries.jsonl`` (our labelled queries), and
- the BQ customer-service set in ``../shared/data/bq/`` when present (skipped otherwise).

    python benchmarks/quality.py [--models e5-small use-m3] [--out benchmarks/results/quality.json]

Prints a Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from walletfaq import FAQRetriever, evaluate, load_corpus
from walletfaq.models import PRESETS, PresetEncoder

ROOT = Path(__file__).resolve().parents[1]
EVAL_QUERIES = ROOT / "corpus" / "eval" / "queries.jsonl"
BQ = ROOT.parent / "shared" / "data" / "bq"


def latency_ms(retriever: FAQRetriever, questions: list[str], repeats: int = 1) -> dict:
    """Per-question encode+search latency (cache bypassed: each question asked once)."""
    times = []
    for q in questions[:200]:
        start = time.perf_counter()
        retriever.search_vectors(retriever.encoder.encode_queries([q]), k=10)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times)) - 1]}


def folder_mb(model: str) -> float | None:
    if model not in PRESETS:
        return None
    folder = PresetEncoder(model).ensure_folder()
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(models: list[str]) -> list[dict]:
    rows = []
    queries = [json.loads(line) for line in EVAL_QUERIES.read_text("utf-8").splitlines() if line]
    bq = None
    if (BQ / "bq_dev.corpus.jsonl").is_file():
        bq_corpus = load_corpus(BQ / "bq_dev.corpus.jsonl")
        bq_queries = BQ / "bq_dev.queries.jsonl"
        bq = (bq_corpus, bq_queries)
    for model in models:
        for answers in (False, True):
            start = time.perf_counter()
            retriever = FAQRetriever.from_corpus(model=model, index_answers=answers, cache=False)
            build_s = time.perf_counter() - start
            report = evaluate(retriever, queries)
            row = {"model": model, "index_answers": answers, "build_s": round(build_s, 2),
                   "vectors": retriever.index.ntotal,
                   **{f"ours_{k}": round(v, 4) for k, v in report.metrics.items()},
                   **{f"ours_style_{s}_r1": round(m["recall@1"], 4)
                      for s, m in report.per_style.items()},
                   **latency_ms(retriever, [q["query"] for q in queries])}
            if bq is not None and not answers:
                bq_retriever = FAQRetriever.from_corpus(bq[0], model=model, cache=False)
                bq_report = evaluate(bq_retriever, bq[1])
                row.update({f"bq_{k}": round(v, 4) for k, v in bq_report.metrics.items()})
            row["disk_mb"] = folder_mb(model)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| model | index | ours R@1 | ours R@3 | ours MRR | BQ R@1 | BQ R@3 | BQ MRR "
            "| query p50 ms | build s | disk MB |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['model']} | {'q+alts+answer' if r['index_answers'] else 'q+alts'} "
            f"| {r['ours_recall@1']:.3f} | {r['ours_recall@3']:.3f} | {r['ours_mrr@10']:.3f} "
            f"| {r.get('bq_recall@1', float('nan')):.3f} | {r.get('bq_recall@3', float('nan')):.3f} "
            f"| {r.get('bq_mrr@10', float('nan')):.3f} | {r['p50_ms']:.1f} | {r['build_s']:.1f} "
            f"| {r['disk_mb'] or 0:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PRESETS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args()
    rows = run(args.models)
    table = markdown(rows)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(
        {"machine": {"cpu": platform.processor() or platform.machine(),
                     "python": platform.python_version()},
         "rows": rows, "table": table}, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
