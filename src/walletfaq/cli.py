"""Command line: ``walletfaq ask``, ``walletfaq build``.

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
    build.add_argument("--index", dest="kind", choices=("flat", "hnsw", "auto"),
                       default="flat", help="index type (default flat = exact)")
    build.add_argument("--contacts", help="contacts JSON whose hotlines become entries")
    build.add_argument("--index-answers", action="store_true",
                       help="also index question + answer text of each entry")
    return parser


def _ask(args: argparse.Namespace) -> int:
    from .retriever import FAQRetriever

    if args.index and args.corpus:
        raise WalletFAQError("use either --index or --corpus, not both")
    if args.index:
        retriever = FAQRetriever.load(args.index, model=args.model)
    else:
        retriever = FAQRetriever.from_corpus(args.corpus, model=args.model)
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
        args.corpus, model=args.model, index=args.kind, index_answers=args.index_answers,
        contacts=args.contacts, cache=False,
    )
    path = retriever.save(args.out)
    print(f"saved {retriever!r} to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``walletfaq`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="walletfaq: %(message)s")
    handlers = {"ask": _ask, "build": _build}
    try:
        return handlers[args.command](args)
    except WalletFAQError as exc:
        print(f"walletfaq: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
