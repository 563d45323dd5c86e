"""Command line: ``walletfaq ask``, ``build``, ``eval``, ``bench``.

User errors print one line on stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from .errors import WalletFAQError

EXIT_USER_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="walletfaq", description="Semantic FAQ search for digital-wallet customer service."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", help="answer a question")
    ask.add_argument("question", help="the user's question, in quotes")
    ask.add_argument("-k", type=int, default=5, help="number of answers (default 5)")
    ask.add_argument("--json", action="store_true", help="print a JSON array, best first")
    ask.add_argument("--index", help="a saved index directory (default: the bundled corpus)")
    ask.add_argument("--corpus", help="a JSONL corpus to search (default: the bundled one)")
    ask.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    ask.add_argument("--category", help="only answers of this category")

    build = commands.add_parser("build", help="embed a corpus and save its index")
    build.add_argument("--corpus", help="JSONL corpus (default: the bundled one)")
    build.add_argument("--out", required=True, help="directory to write the index to")
    build.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    build.add_argument(
        "--index",
        dest="kind",
        choices=("flat", "hnsw", "auto"),
        default="flat",
        help="index type (default flat = exact)",
    )
    build.add_argument("--contacts", help="contacts JSON whose hotlines become entries")
    build.add_argument(
        "--index-answers",
        action="store_true",
        help="also index question + answer text of each entry",
    )
    evaluate = commands.add_parser("eval", help="measure retrieval quality on labelled queries")
    evaluate.add_argument(
        "--queries", help="JSONL of {query, gold[, style]} (default: the bundled evaluation set)"
    )
    evaluate.add_argument("--index", help="a saved index directory")
    evaluate.add_argument("--corpus", help="a JSONL corpus (default: the bundled one)")
    evaluate.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    bench = commands.add_parser("bench", help="run the latency benchmark")
    bench.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000, 10_000, 100_000],
        help="synthetic index sizes for the search-only comparison",
    )
    bench.add_argument("--queries", type=int, default=500, help="queries per measurement")
    bench.add_argument("--out", default="benchmarks/results", help="output directory")
    bench.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    return parser


def _retriever(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .retriever import FAQRetriever

    if args.index and args.corpus:
        raise WalletFAQError("use either --index or --corpus, not both")
    if args.index:
        return FAQRetriever.load(args.index, model=args.model)
    return FAQRetriever.from_corpus(args.corpus, model=args.model)


def _eval(args: argparse.Namespace) -> int:
    from .corpus import bundled_data_dir
    from .evaluation import METRIC_KEYS, evaluate

    retriever = _retriever(args)
    queries = args.queries or bundled_data_dir() / "eval" / "queries.jsonl"
    report = evaluate(retriever, queries)
    if args.json:
        print(
            json.dumps(
                {
                    "metrics": report.metrics,
                    "per_category": report.per_category,
                    "per_style": report.per_style,
                    "n_in_domain": report.n_in_domain,
                    "failures": len(report.failures),
                },
                ensure_ascii=False,
                indent=1,
            )
        )
        return 0
    print(f"{len(report.results)} queries ({report.n_in_domain} in domain), {retriever!r}")
    print(f"{'group':<28}" + "".join(f"{key:>10}" for key in METRIC_KEYS) + f"{'n':>6}")
    rows = [("overall", {**report.metrics, "n": float(report.n_in_domain)})]
    rows += [(f"category {n}", m) for n, m in report.per_category.items()]
    rows += [(f"style {n}", m) for n, m in report.per_style.items()]
    for name, metrics in rows:
        print(
            f"{name:<28}"
            + "".join(f"{metrics[key]:>10.3f}" for key in METRIC_KEYS)
            + f"{int(metrics['n']):>6}"
        )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .benchmark import run_benchmark

    run_benchmark(
        sizes=tuple(args.sizes), n_queries=args.queries, out_dir=Path(args.out), quick=args.quick
    )
    print((Path(args.out) / "latency.md").read_text(encoding="utf-8"))
    return 0


def _ask(args: argparse.Namespace) -> int:
    retriever = _retriever(args)
    hits = retriever.ask(args.question, k=args.k, category=args.category)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=1))
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank}. [{hit.score:.3f}] {hit.question}  ({hit.id}, {hit.category})")
        print(f"   {hit.answer}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from .retriever import FAQRetriever

    retriever = FAQRetriever.from_corpus(
        args.corpus,
        model=args.model,
        index=args.kind,
        index_answers=args.index_answers,
        contacts=args.contacts,
        cache=False,
    )
    path = retriever.save(args.out)
    print(f"saved {retriever!r} to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``walletfaq`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    package_logger = logging.getLogger("walletfaq")
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("walletfaq: %(message)s"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    package_logger.propagate = False

    handlers = {"ask": _ask, "build": _build, "eval": _eval, "bench": _bench}
    try:
        return handlers[args.command](args)
    except WalletFAQError as exc:
        print(f"walletfaq: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
