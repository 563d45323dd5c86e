"""Vector search at scale on real question embeddings: FAISS flat vs SQ8 vs HNSW.

    python benchmarks/scale.py [--limit N] [--sizes 10000 50000 1000000] [--queries 1000]

Reads ``../shared/data/questions/zh_questions.txt`` (development machines only; prints
"Skipped: ..." and writes nothing when it is absent), embeds the questions with e5-small's
query prompt once (10 to 25 minutes for all 152,971 on two quiet cores; cached as float16
chunks under ``benchmarks/results/tmp/``, never committed, resumable) and measures build time,
memory, recall@10 against exact search and batch-1 latency. Writes ``scale.json`` and
``scale.md`` to ``--out`` (default ``benchmarks/results``) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from walletfaq.bench import scale
from walletfaq.bench.machine import loadavg, machine_info
from walletfaq.bench.questions import default_cache_dir

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, help="question file (default: ../shared/...)")
    parser.add_argument("--limit", type=int, help="embed only the first N questions")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="use only the questions whose embeddings are already cached",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(scale.SCALE_SIZES))
    parser.add_argument("--queries", type=int, default=scale.N_QUERIES)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per latency loop")
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = {"machine": machine_info()}
    report["scale"] = scale.section(
        args.questions,
        args.cache,
        limit=args.limit,
        encode_missing=not args.cached_only,
        sizes=args.sizes,
        n_queries=args.queries,
        budget_s=args.budget,
    )
    report["machine"]["loadavg_end"] = loadavg()
    markdown = "\n".join(scale.render(report))
    print(markdown)
    if "skipped" in report["scale"]:
        return 0  # nothing measured, nothing written
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (args.out / "scale.md").write_text(markdown + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
