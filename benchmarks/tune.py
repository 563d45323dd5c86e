"""Domain tuning (walletfaq.tune): BQ dev and our own eval set, before and after.

For each recipe:
- BQ: tune ``FAQRetriever.from_corpus(bq_dev.corpus.jsonl)`` on ``bq_dev_pairs.train.tsv``
  (the queries file is never trained on), then ``evaluate`` it on ``bq_dev.queries.jsonl``.
- own: tune the default retriever (bundled corpus, its alt questions are training pairs) on the
  same BQ pairs, then ``evaluate`` it on the bundled eval queries: the check that tuning on
  another source of the same domain does not hurt our own set.

Needs ``../shared/data/bq`` (skips cleanly when absent) and the ``eval`` extra.

    python benchmarks/tune.py [--recipes default,rank64] [--out benchmarks/results/tune.json]

Prints a Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from walletfaq import FAQRetriever, evaluate
from walletfaq.tuning import tune

ROOT = Path(__file__).resolve().parents[1]
BQ = ROOT.parent / "shared" / "data" / "bq"

RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "query-only": {"apply_to": "queries"},
    "label-0 hard negatives": {"hard_negatives": True},
    "rank 64, I+AB": {"rank": 64},
    "issue trial (20 epochs, no early stop, asymmetric)": {
        "epochs": 20,
        "patience": 0,
        "symmetric": False,
        "hard_negatives": False,
        "use_corpus_alts": False,
    },
}


def _metrics(retriever: FAQRetriever, queries: Path | None) -> dict[str, float]:
    report = evaluate(retriever, queries)
    return {key: float(report.metrics[key]) for key in ("mrr@10", "recall@1")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tune.json")
    parser.add_argument("--skip-own", action="store_true", help="BQ only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pairs = BQ / "bq_dev_pairs.train.tsv"
    if not pairs.exists():
        print(f"skipped: {BQ} is absent (the BQ set lives in ../shared)")
        return 0
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")

    bq = FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl")
    own = None if args.skip_own else FAQRetriever.from_corpus()
    rows: list[dict[str, Any]] = [
        {
            "recipe": "untuned",
            "bq": _metrics(bq, BQ / "bq_dev.queries.jsonl"),
            "own": _metrics(own, None) if own is not None else None,
        }
    ]
    for name in names:
        started = time.perf_counter()
        result = tune(bq, pairs, seed=0, **RECIPES[name])
        row: dict[str, Any] = {
            "recipe": name,
            "settings": result.settings,
            "seconds": round(result.seconds, 1),
            "pair_holdout": {"before": result.before, "after": result.after},
            "bq": _metrics(result.retriever, BQ / "bq_dev.queries.jsonl"),
        }
        if own is not None:
            tuned_own = tune(own, pairs, seed=0, **RECIPES[name]).retriever
            row["own"] = _metrics(tuned_own, None)
        row["wall_seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)

    lines = [
        "| recipe | BQ dev MRR@10 | BQ dev R@1 | own MRR@10 | own R@1 "
        "| pair holdout MRR@10 | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        own_m = row.get("own") or {}
        holdout = row.get("pair_holdout")
        lines.append(
            f"| {row['recipe']} | {row['bq']['mrr@10']:.4f} | {row['bq']['recall@1']:.4f} | "
            + (f"{own_m['mrr@10']:.4f} | {own_m['recall@1']:.4f} | " if own_m else "– | – | ")
            + (
                f"{holdout['before']['mrr@10']:.3f} → {holdout['after']['mrr@10']:.3f} | "
                f"{row['seconds']} |"
                if holdout
                else "– | – |"
            )
        )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
