"""Latency benchmark of walletfaq: end-to-end ask(), cache hits, FAISS flat/HNSW vs numpy at
several corpus sizes (real question embeddings and random vectors), thread settings, batch
throughput, BM25 baseline and cold start.

    python benchmarks/latency.py [--sizes 1000 10000 100000] [--queries 500] [--out DIR] [--quick]
    python benchmarks/latency.py --scale-sizes       # skip the real-question section

Writes latency.json, latency.md and latency_vs_size.png to --out (default
benchmarks/results) and prints the Markdown report.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from walletfaq.bench import run_benchmark, to_markdown
from walletfaq.bench.runner import SCALE_SIZES

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000, 10_000, 100_000, 1_000_000],
        help="synthetic corpus sizes for the search-only comparison",
    )
    parser.add_argument(
        "--scale-sizes",
        type=int,
        nargs="*",
        default=list(SCALE_SIZES),
        help="index sizes on real question embeddings (needs ../shared and the cached "
        "embeddings of benchmarks/scale.py; none to skip)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=500,
        help="distinct questions for the batch-1 end-to-end timings",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results", help="output directory"
    )
    parser.add_argument("--model", default="e5-small", help="model preset, hub name or path")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and few queries (a smoke test, not a measurement)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = run_benchmark(
        sizes=args.sizes,
        n_queries=args.queries,
        out_dir=args.out,
        model=args.model,
        quick=args.quick,
        scale_sizes=args.scale_sizes,
    )
    print(to_markdown(report))


if __name__ == "__main__":
    main()
