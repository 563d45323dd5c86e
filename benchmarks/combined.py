"""BQ dev with every lever at once: the adapter tuned on the BQ pairs as the primary, fused
with use-m3 and BM25 (walletfaq.HybridRetriever), against the untuned dense default.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/combined.py [--rows query|document] [--out FILE]

``--rows document`` embeds the FAQ rows with the document prompt (``question_encoding``) for
the tuned and fused systems; the untuned default (query rows) stays the baseline.

Needs ../shared/data/bq (skips cleanly when absent).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hybrid import BQ, ROOT, _memoised  # benchmarks/hybrid.py: the memoising encoder wrapper

from walletfaq import FAQRetriever, HybridRetriever, evaluate, paired_test
from walletfaq.tuning import tune

WEIGHTS = {
    "adapter": {"use-m3": 0.0, "bm25": 0.0},
    "adapter + 0.2 BM25": {"use-m3": 0.0, "bm25": 0.2},
    "adapter + 0.7 use-m3": {"use-m3": 0.7, "bm25": 0.0},
    "adapter + 0.7 use-m3 + 0.2 BM25": {"use-m3": 0.7, "bm25": 0.2},
    "adapter + 1.0 use-m3 + 0.3 BM25": {"use-m3": 1.0, "bm25": 0.3},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", choices=("query", "document"), default="query")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/combined[_ROWS].json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    queries = BQ / "bq_dev.queries.jsonl"
    if not queries.is_file():
        print(f"skipped: {BQ} is absent (the BQ set lives in ../shared)")
        return 0
    suffix = "" if args.rows == "query" else f"_{args.rows}_rows"
    out_path = args.out or ROOT / "benchmarks" / "results" / f"combined{suffix}.json"
    base = FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl")
    rows = FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl", question_encoding=args.rows)
    tuned = tune(rows, BQ / "bq_dev_pairs.train.tsv", seed=0, progress=False).retriever
    fused = _memoised(HybridRetriever.from_retriever(tuned, models=["use-m3"], lexical="bm25"))
    dense = evaluate(base, queries)
    out = {"untuned dense": {k: round(dense.metrics[k], 4) for k in ("recall@1", "mrr@10")}}
    if args.rows != "query":
        untuned_rows = evaluate(rows, queries)
        out[f"untuned dense, {args.rows} rows"] = {
            k: round(untuned_rows.metrics[k], 4) for k in ("recall@1", "mrr@10")
        }
    for label, weights in WEIGHTS.items():
        fused.set_weights(weights)
        report = evaluate(fused, queries)
        out[label] = {k: round(report.metrics[k], 4) for k in ("recall@1", "mrr@10")}
        out[label]["p_mrr_vs_untuned"] = round(
            paired_test(dense, report, "mrr@10", seed=0).p_value, 4
        )
        logging.info("%s: %s", label, out[label])
    out_path.write_text(json.dumps(out, indent=1) + "\n", "utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
