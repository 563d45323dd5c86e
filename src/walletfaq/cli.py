"""Command line: ``walletfaq ask``, ``answer``, ``build``, ``eval``, ``bench``.

User errors print one line on stderr and exit with status 2; an unexpected internal error
prints one line and exits with status 1 (``--debug`` shows its traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from walletfaq.errors import WalletFAQError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="walletfaq", description="Semantic FAQ search for digital-wallet customer service."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines, warnings and errors only"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of unexpected errors"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", help="rank the best answers to a question")
    ask.add_argument("question", help="the user's question, in quotes")
    ask.add_argument("-k", type=int, default=5, help="number of answers (default 5)")
    ask.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array, best first: id, category, question, answer, score, matched",
    )
    _add_source_arguments(ask)
    ask.add_argument("--category", help="only answers of this category")

    answer = commands.add_parser(
        "answer", help="the answer if confident, else where to reach human support"
    )
    answer.add_argument("question", help="the user's question, in quotes")
    answer.add_argument(
        "--threshold",
        type=float,
        help="minimum top score to answer (default: the index's calibrated threshold)",
    )
    answer.add_argument(
        "--json",
        action="store_true",
        help="print {confident, decision, reason, message, hit, candidates} as JSON",
    )
    _add_source_arguments(answer)

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
    tune = commands.add_parser(
        "tune", help="adapt the embeddings to labelled questions of your domain, save the index"
    )
    tune.add_argument(
        "--data",
        required=True,
        help="eval-format JSONL ({query, gold}) or a TSV/CSV of sentence1, sentence2, label",
    )
    tune_source = tune.add_mutually_exclusive_group()
    tune_source.add_argument("--index", help="a saved index directory to tune")
    tune_source.add_argument("--corpus", help="a JSONL corpus (default: the bundled one)")
    tune.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    tune.add_argument("--out", required=True, help="directory to write the tuned index to")
    tune.add_argument("--holdout", type=float, default=0.2, help="share held out (default 0.2)")
    tune.add_argument("--seed", type=int, default=0, help="seed of the split and training")
    tune.add_argument(
        "--method",
        choices=["adapter", "finetune"],
        default="adapter",
        help="adapter: a linear map, seconds (default); finetune: train the model's layers "
        "with sentence-transformers (minutes on CPU; questions then need torch)",
    )
    export = commands.add_parser("export", help="write a saved index's corpus as JSONL")
    export.add_argument("--index", required=True, help="the saved index directory")
    export.add_argument("--out", required=True, help="the JSONL file to write")
    export.add_argument(
        "--include-contacts",
        action="store_true",
        help="also write the hotline entries generated from the contacts directory",
    )
    evaluate = commands.add_parser("eval", help="measure retrieval quality on labelled queries")
    evaluate.add_argument(
        "--queries", help="JSONL of {query, gold[, style]} (default: the bundled evaluation set)"
    )
    evaluate.add_argument("--index", help="a saved index directory")
    evaluate.add_argument("--corpus", help="a JSONL corpus (default: the bundled one)")
    evaluate.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    serve = commands.add_parser(
        "serve", help="serve the JSON API, docs and playground over HTTP (needs the [serve] extra)"
    )
    serve_source = serve.add_mutually_exclusive_group()
    serve_source.add_argument("--index", help="a saved index directory")
    serve_source.add_argument("--corpus", help="a JSONL corpus (default: the bundled one)")
    serve.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1); more than 1 needs --index: each loads it, saves "
        "the edits it accepts there and picks up those of the others",
    )
    serve.add_argument(
        "--threads",
        type=int,
        help="threads per process encoding questions at once (default: the CPU cores, "
        "shared among the worker processes)",
    )
    serve.add_argument(
        "--reload-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --index, check the directory this often and serve it when it was replaced "
        "(default 2; 0 = never; POST /v1/reload reloads at once)",
    )
    serve.add_argument(
        "--queue", type=int, help="requests that may wait; beyond, 503 (default 4 per worker)"
    )
    serve.add_argument("--timeout", type=float, help="seconds before a 504 (default 10)")
    serve.add_argument("--access-log", action="store_true", help="log one line per request")

    doctor = commands.add_parser(
        "doctor", help="find what in a corpus hurts retrieval, worst first, with advice"
    )
    _add_source_arguments(doctor)
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--limit", type=int, default=20, help="findings shown in the text report (default 20)"
    )

    bench = commands.add_parser("bench", help="run the latency benchmark")
    bench.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000, 10_000, 100_000],
        help="synthetic index sizes for the search-only comparison",
    )
    bench.add_argument("--queries", type=int, default=500, help="queries per measurement")
    bench.add_argument(
        "--out",
        help="output directory (default: a new walletfaq-bench-YYYYmmdd-HHMMSS folder here)",
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    return parser


def _add_source_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--index", help="a saved index directory (default: the bundled corpus)")
    command.add_argument("--corpus", help="a JSONL corpus to search (default: the bundled one)")
    command.add_argument("--model", help="model preset, hub name or path (default: e5-small)")


def _retriever(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from walletfaq.retrieval.retriever import FAQRetriever

    if args.index and args.corpus:
        raise WalletFAQError("use either --index or --corpus, not both")
    if args.index:
        return FAQRetriever.load(args.index, model=args.model)
    return FAQRetriever.from_corpus(args.corpus, model=args.model)


def _eval(args: argparse.Namespace) -> int:
    from walletfaq.data.corpus import bundled_data_dir
    from walletfaq.quality.evaluation.metrics import METRIC_KEYS
    from walletfaq.quality.evaluation.runner import evaluate

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

    from walletfaq.bench import check_dependencies, default_out_dir, run_benchmark

    check_dependencies()  # before any work: a missing extra is one line, not a traceback
    out = Path(args.out) if args.out else default_out_dir()
    run_benchmark(sizes=tuple(args.sizes), n_queries=args.queries, out_dir=out, quick=args.quick)
    print((out / "latency.md").read_text(encoding="utf-8"))
    print(f"written to {out}", file=sys.stderr)
    return 0


def _ask(args: argparse.Namespace) -> int:
    from walletfaq.retrieval.questions import clean_question

    clean_question(args.question)  # a bad question fails before any model loads
    retriever = _retriever(args)
    hits = retriever.ask(args.question, k=args.k, category=args.category)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=1))
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank}. [{hit.score:.3f}] {hit.question}  ({hit.id}, {hit.category})")
        print(f"   {hit.answer}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from walletfaq.quality.tuning import tune

    result = tune(
        _retriever(args), args.data, method=args.method, holdout=args.holdout, seed=args.seed
    )
    path = result.retriever.save(args.out)
    print(result.summary())
    print(f"saved the tuned index to {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from walletfaq.retrieval.retriever import FAQRetriever

    retriever = FAQRetriever.load(args.index)
    path = retriever.export(args.out, include_contacts=args.include_contacts)
    print(f"wrote the corpus of {args.index} to {path}")
    return 0


def _answer(args: argparse.Namespace) -> int:
    from walletfaq.retrieval.questions import clean_question

    clean_question(args.question)  # a bad question fails before any model loads
    outcome = _retriever(args).answer(args.question, threshold=args.threshold)
    if args.json:
        print(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=1))
        return 0
    if outcome.confident and outcome.hit is not None:
        hit = outcome.hit
        print(f"[{hit.score:.3f}] {hit.question}  ({hit.id}, {hit.category})")
    elif outcome.decision == "refuse":
        print(f"(refused: {outcome.reason})")
    else:
        best = outcome.candidates[0].score if outcome.candidates else float("nan")
        print(f"(no confident answer: best score {best:.3f} is below the threshold)")
    print(outcome.message)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from walletfaq.service import ServerSettings, serve, serve_index, threads_per_process

    # the tokens come from $WALLETFAQ_READ_TOKEN / $WALLETFAQ_ADMIN_TOKEN; bad settings fail
    # before any model loads. With --index, accepted edits are saved there before answering,
    # and the directory is served again when it is replaced (hot reload, POST /v1/reload).
    if args.workers < 1:
        raise WalletFAQError(f"--workers must be at least 1 (processes), got {args.workers}")
    if args.workers > 1 and not args.index:
        raise WalletFAQError(
            "--workers above 1 needs --index DIR: every worker process loads that saved index "
            "and picks up the edits the others save there (build one with `walletfaq build "
            "--out DIR`)"
        )
    settings = ServerSettings.from_env(
        workers=args.threads if args.threads is not None else threads_per_process(args.workers),
        queue_size=args.queue,
        timeout_s=args.timeout,
        persist_dir=Path(args.index) if args.index else None,
        reload_interval_s=args.reload_interval,
    )
    log_level = "warning" if args.quiet else "info"
    if args.index:
        serve_index(
            args.index,
            model=args.model,
            workers=args.workers,
            host=args.host,
            port=args.port,
            settings=settings,
            access_log=args.access_log,
            log_level=log_level,
        )
    else:
        serve(
            _retriever(args),
            host=args.host,
            port=args.port,
            settings=settings,
            access_log=args.access_log,
            log_level=log_level,
        )
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from walletfaq.quality.doctor.checks import doctor

    report = doctor(_retriever(args))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(report.summary(limit=max(0, args.limit)))
    return 0


def _build(args: argparse.Namespace) -> int:
    from walletfaq.retrieval.retriever import FAQRetriever

    # the cache holds the same index when this corpus/model/settings were embedded before
    retriever = FAQRetriever.from_corpus(
        args.corpus,
        model=args.model,
        index=args.kind,
        index_answers=args.index_answers,
        contacts=args.contacts,
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
    # INFO: one line per first-run stage (building the model, embedding, saving); nothing when
    # the index is cached. --quiet keeps warnings only, --verbose adds debugging detail.
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    package_logger.setLevel(level)
    package_logger.propagate = False
    if not args.verbose:
        _silence_library_progress_bars()

    handlers = {
        "ask": _ask,
        "answer": _answer,
        "build": _build,
        "export": _export,
        "tune": _tune,
        "eval": _eval,
        "bench": _bench,
        "serve": _serve,
        "doctor": _doctor,
    }
    try:
        return handlers[args.command](args)
    except WalletFAQError as exc:
        print(f"walletfaq: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"walletfaq: internal error: {type(exc).__name__}: {_one_line(exc)} (run again with "
            "--debug for the traceback, and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


def _silence_library_progress_bars() -> None:
    """Hide transformers' "Loading weights" bar; our own stage lines say what is happening."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line, printable whatever bytes it quotes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


if __name__ == "__main__":
    sys.exit(main())
