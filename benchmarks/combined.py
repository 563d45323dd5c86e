"""BQ dev with every lever at once: the adapter tuned on the BQ pairs as the primary, fused
with use-m3 and BM25 (walletfaq.HybridRetriever), against the untuned dense default.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/combined.py [--rows query|document]
        [--per-encoder] [--own] [--out FILE]

``--rows document`` embeds the FAQ rows with the document prompt (``question_encoding``) for
the tuned and fused systems; the untuned default (query rows) stays the baseline.
``--per-encoder`` tunes the hybrid itself (``tune(hybrid, pairs)``: use-m3 gets its own adapter
too) instead of fusing the tuned primary with the untuned use-m3. ``--own`` also measures the
same recipe on our eval set (the bundled corpus, tuned on the same BQ pairs plus its own alt
questions): the issue's "no loss on our eval set".

Needs ../shared/data/bq (skips cleanly when absent).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from hybrid import BQ, ROOT, _memoised  # benchmarks/hybrid.py: the memoising encoder wrapper

from walletfaq import FAQRetriever, HybridRetriever, evaluate, paired_test
from walletfaq.quality.evaluation import bundled_queries_path
from walletfaq.quality.tuning import tune

WEIGHTS = {
    "adapter": {"use-m3": 0.0, "bm25": 0.0},
    "adapter + 0.2 BM25": {"use-m3": 0.0, "bm25": 0.2},
    "adapter + 0.7 use-m3": {"use-m3": 0.7, "bm25": 0.0},
    "adapter + 0.7 use-m3 + 0.2 BM25": {"use-m3": 0.7, "bm25": 0.2},
    "adapter + 1.0 use-m3 + 0.3 BM25": {"use-m3": 1.0, "bm25": 0.3},
}


def _systems(
    corpus: Path | None, queries: Path, pairs: Path, rows_kind: str, per_encoder: bool
) -> dict[str, Any]:
    """The untuned dense default, then every fused system of :data:`WEIGHTS`, on ``corpus``
    (``None``: the bundled one) tuned on ``pairs`` and measured on ``queries``."""
    base = FAQRetriever.from_corpus(corpus)
    rows = FAQRetriever.from_corpus(corpus, question_encoding=rows_kind)  # type: ignore[arg-type]
    if per_encoder:
        hybrid = HybridRetriever.from_retriever(rows, models=["use-m3"], lexical="bm25")
        fused = _memoised(tune(hybrid, pairs, seed=0, progress=False).retriever)
    else:
        tuned = tune(rows, pairs, seed=0, progress=False).retriever
        fused = _memoised(HybridRetriever.from_retriever(tuned, models=["use-m3"], lexical="bm25"))
    dense = evaluate(base, queries)
    out: dict[str, Any] = {
        "untuned dense": {k: round(dense.metrics[k], 4) for k in ("recall@1", "mrr@10")}
    }
    if rows_kind != "query":
        untuned_rows = evaluate(rows, queries)
        out[f"untuned dense, {rows_kind} rows"] = {
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
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", choices=("query", "document"), default="query")
    parser.add_argument("--per-encoder", action="store_true", help="an adapter for each encoder")
    parser.add_argument(
        "--own", action="store_true", help="the same systems on our eval set (bundled corpus)"
    )
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/combined[_ROWS][_per_encoder].json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    queries = BQ / "bq_dev.queries.jsonl"
    if not queries.is_file():
        print(f"skipped: {BQ} is absent (the BQ set lives in ../shared)")
        return 0
    suffix = "" if args.rows == "query" else f"_{args.rows}_rows"
    suffix += "_per_encoder" if args.per_encoder else ""
    out_path = args.out or ROOT / "benchmarks" / "results" / f"combined{suffix}.json"
    pairs = BQ / "bq_dev_pairs.train.tsv"
    out = _systems(BQ / "bq_dev.corpus.jsonl", queries, pairs, args.rows, args.per_encoder)
    if args.own:
        out["our eval set"] = _systems(
            None, bundled_queries_path(), pairs, args.rows, args.per_encoder
        )
    out_path.write_text(json.dumps(out, indent=1) + "\n", "utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
