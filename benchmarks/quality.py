"""Compare model presets and indexing choices on retrieval quality, in one run.

Data:
- the bundled corpus + ``corpus/eval/queries.jsonl`` (our labelled queries, in-domain part);
- the BQ customer-service set in ``../shared/data/bq/`` when present (skipped otherwise),
  with, as the reference, multilingual-e5-small used directly: sentence-transformers
  ``encode_query``/``encode_document`` + a numpy dot product, no walletfaq involved.

    python benchmarks/quality.py [--out benchmarks/results/quality.json]

Prints a Markdown table and writes the figures as JSON. Latency here is indicative (encode +
search per question, p50); ``benchmarks/latency.py`` measures it properly.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from walletfaq import FAQRetriever, evaluate, load_corpus
from walletfaq.data.normalize import QuestionNormalizer
from walletfaq.encoders.presets import PresetEncoder

ROOT = Path(__file__).resolve().parents[1]
EVAL_QUERIES = ROOT / "corpus" / "eval" / "queries.jsonl"
BQ = ROOT.parent / "shared" / "data" / "bq"

VARIANTS = [
    # (label, model, options)
    ("e5-small, questions as queries (default)", "e5-small", {}),
    ("e5-small, questions as query+document", "e5-small", {"question_encoding": "both"}),
    ("e5-small, questions as documents", "e5-small", {"question_encoding": "document"}),
    ("e5-small, default, no t2s", "e5-small", {"t2s": False}),
    ("e5-small, default + answers indexed", "e5-small", {"index_answers": True}),
    ("use-m3, questions as documents", "use-m3", {"question_encoding": "document"}),
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def latency(retriever: FAQRetriever, questions: list[str]) -> dict[str, float]:
    times = []
    for q in questions[:300]:
        start = time.perf_counter()
        retriever.search_vectors(retriever.encoder.encode_queries([q]), k=10)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times)) - 1]}


def build(model: str, corpus, options: dict) -> tuple[FAQRetriever, float]:
    options = dict(options)
    t2s = options.pop("t2s", True)
    start = time.perf_counter()
    retriever = FAQRetriever.from_corpus(corpus, model=model, cache=False, **options)
    retriever.normalizer = QuestionNormalizer(to_simplified=t2s)
    return retriever, time.perf_counter() - start


def direct_e5_bq() -> dict[str, float]:
    """multilingual-e5-small used directly on BQ (the reference the library must match)."""
    model = PresetEncoder("e5-small").model
    corpus = read_jsonl(BQ / "bq_dev.corpus.jsonl")
    queries = read_jsonl(BQ / "bq_dev.queries.jsonl")
    docs = model.encode_document([c["question"] for c in corpus], normalize_embeddings=True)
    qv = model.encode_query([q["query"] for q in queries], normalize_embeddings=True)
    order = np.argsort(-(qv @ docs.T), axis=1)[:, :10]
    ranks = []
    for row, q in zip(order, queries, strict=True):
        ids = [corpus[i]["id"] for i in row]
        ranks.append(next((i for i, x in enumerate(ids, 1) if x in q["gold"]), None))
    n = len(ranks)
    return {
        "bq_recall@1": sum(r == 1 for r in ranks) / n,
        "bq_recall@3": sum(r is not None and r <= 3 for r in ranks) / n,
        "bq_mrr@10": sum(1 / r for r in ranks if r) / n,
    }


def run() -> list[dict]:
    queries = read_jsonl(EVAL_QUERIES)
    in_domain = [q["query"] for q in queries if q["gold"]]
    has_bq = (BQ / "bq_dev.corpus.jsonl").is_file()
    bq_corpus = load_corpus(BQ / "bq_dev.corpus.jsonl") if has_bq else None
    rows = []
    if has_bq:
        row = {
            "variant": "reference: e5-small used directly (BQ only)",
            **{k: round(v, 4) for k, v in direct_e5_bq().items()},
        }
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    for label, model, options in VARIANTS:
        retriever, build_s = build(model, None, options)
        report = evaluate(retriever, queries)
        row = {
            "variant": label,
            "model": model,
            "build_s": round(build_s, 1),
            "vectors": retriever.index.ntotal,
            **{f"ours_{k}": round(v, 4) for k, v in report.metrics.items()},
            **{f"ours_r1_{s}": round(m["recall@1"], 4) for s, m in report.per_style.items()},
            **{k: round(v, 2) for k, v in latency(retriever, in_domain).items()},
        }
        if has_bq and not options.get("index_answers"):
            bq_retriever, _ = build(model, bq_corpus, options)
            bq = evaluate(bq_retriever, BQ / "bq_dev.queries.jsonl")
            row.update({f"bq_{k}": round(v, 4) for k, v in bq.metrics.items()})
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(row: dict, key: str, fmt: str = ".3f") -> str:
        return format(row[key], fmt) if key in row else "–"

    lines = [
        "| variant | ours R@1 | ours R@3 | ours MRR@10 | BQ R@1 | BQ R@3 | BQ MRR@10 "
        "| query p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {cell(r, 'ours_recall@1')} | {cell(r, 'ours_recall@3')} "
            f"| {cell(r, 'ours_mrr@10')} | {cell(r, 'bq_recall@1')} | {cell(r, 'bq_recall@3')} "
            f"| {cell(r, 'bq_mrr@10')} | {cell(r, 'p50_ms', '.1f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args()
    rows = run()
    table = markdown(rows)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version(),
                },
                "rows": rows,
                "table": table,
            },
            ensure_ascii=False,
            indent=1,
        ),
        "utf-8",
    )


if __name__ == "__main__":
    main()
