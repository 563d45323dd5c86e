"""Command line: ``walletfaq ask``, ``answer``, ``build``, ``eval``, ``calibrate``, ``tune``,
``serve`` (run by :mod:`walletfaq.cli_serve`), ``doctor``, ``export``, ``bench``; ``store ...``
and ``publish`` (:mod:`walletfaq.cli_store`).

User errors print one line on stderr and exit with status 2; an unexpected internal error
prints one line and exits with status 1 (``--debug`` shows its traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

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
        "--clarify-margin",
        type=float,
        help="ask to choose when a second entry is this close to the top one, in [0, 2] "
        "(0 = never; default: the index's)",
    )
    answer.add_argument(
        "--json",
        action="store_true",
        help="print {confident, decision, reason, message, hit, options, candidates} as JSON",
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
    _add_answer_settings(build, "saved with the index")
    calibrate = commands.add_parser(
        "calibrate",
        help="choose a saved index's no-answer threshold and clarify margin on labelled "
        "queries (--write saves them)",
    )
    calibrate.add_argument("--index", required=True, help="the saved index directory")
    calibrate.add_argument(
        "--queries",
        help="JSONL of {query, gold} with out-of-domain ones (gold: []) (default: the bundled "
        "evaluation set, for an index of the bundled corpus)",
    )
    calibrate.add_argument(
        "--target-precision",
        type=float,
        help="share of answers that must be right (default: the presets' rule, 0.9)",
    )
    calibrate.add_argument(
        "--min-ood-abstain",
        type=float,
        help="share of out-of-domain questions to refuse (default: the presets' rule, 0.9)",
    )
    calibrate.add_argument(
        "--write", action="store_true", help="save the chosen threshold and margin in the index"
    )
    tune = commands.add_parser(
        "tune", help="adapt the embeddings to labelled questions of your domain, save the index"
    )
    from walletfaq.cli_traffic import add_tune_sources

    add_tune_sources(tune)  # --data FILE, or --store URL [--since ...]: a store's query log
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
    evaluate.add_argument(
        "--threshold",
        type=float,
        help="no-answer threshold the abstention figures are measured at (default: the "
        "index's or model's)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    serve = commands.add_parser(
        "serve", help="serve the JSON API, docs and playground over HTTP (needs the [serve] extra)"
    )
    serve_source = serve.add_mutually_exclusive_group()
    serve_source.add_argument("--index", help="a saved index directory")
    serve_source.add_argument("--corpus", help="a JSONL corpus (default: the bundled one)")
    serve_source.add_argument(
        "--store",
        help="a store of record (SQLite path or postgresql:// URL): build from its latest "
        "revision, follow its changes, write admin edits to it",
    )
    serve.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1); more than 1 needs --index (each loads it, saves "
        "the edits it accepts there and picks up those of the others) or --store (each is a "
        "replica of the store)",
    )
    serve.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --store, read the store's head this often when no change was notified "
        "(default 1)",
    )
    serve.add_argument(
        "--no-listen",
        action="store_true",
        help="with a PostgreSQL --store, poll only (no LISTEN; e.g. behind a pooler in "
        "transaction mode)",
    )
    serve.add_argument(
        "--threads",
        type=int,
        help="encoding threads in each worker process (default: the CPU cores, shared among "
        "the worker processes)",
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
        "--queue",
        type=int,
        help="requests that may wait for an encoding thread, in each worker process; beyond, "
        "503 at once (default: 4 per thread, i.e. 4 x --threads)",
    )
    serve.add_argument("--timeout", type=float, help="seconds before a 504 (default 10)")
    serve.add_argument(
        "--read-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a client sending a request slower than this is disconnected (default 10)",
    )
    serve.add_argument("--access-log", action="store_true", help="log one line per request")
    from walletfaq.cli_serve import add_log_options

    add_log_options(serve)
    _add_answer_settings(serve, "for this service's /v1/answer; the index is not changed")

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
    from walletfaq.cli_store import add_store_commands

    add_store_commands(commands)
    from walletfaq.cli_traffic import add_traffic_commands

    add_traffic_commands(commands)
    return parser


def _add_answer_settings(command: argparse.ArgumentParser, where: str) -> None:
    command.add_argument(
        "--threshold",
        type=float,
        help=f"no-answer threshold in [-1, 1], {where} (default: the model's calibrated one; "
        "see `walletfaq calibrate`)",
    )
    command.add_argument("--fallback", help=f"the message answer gives when not confident, {where}")
    command.add_argument(
        "--clarify-margin",
        type=float,
        help="answer asks the user to choose when a second entry is less than this below the "
        f"top one, in [0, 2] (0 = never), {where} (default: the model's calibrated one)",
    )
    command.add_argument("--clarify-message", help=f"what answer says before the options, {where}")


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

    _check_answer_settings(args)  # before any model loads
    retriever = _retriever(args)
    if args.threshold is not None:
        retriever.threshold = args.threshold
    queries = args.queries or bundled_data_dir() / "eval" / "queries.jsonl"
    report = evaluate(retriever, queries)
    abstention = report.abstention
    if args.json:
        print(
            json.dumps(
                {
                    "metrics": report.metrics,
                    "per_category": report.per_category,
                    "per_style": report.per_style,
                    "n_in_domain": report.n_in_domain,
                    "failures": len(report.failures),
                    "abstention": abstention.to_dict() if abstention is not None else None,
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
    if abstention is not None:
        print(abstention.summary())
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
    from walletfaq.cli_traffic import tuning_source
    from walletfaq.quality.tuning import tune

    retriever, data = tuning_source(args, _retriever)
    result = tune(retriever, data, method=args.method, holdout=args.holdout, seed=args.seed)
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
    _check_answer_settings(args)
    margin = args.clarify_margin
    outcome = _retriever(args).answer(args.question, args.threshold, clarify_margin=margin)
    if args.json:
        print(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=1))
        return 0
    if outcome.confident and outcome.hit is not None:
        hit = outcome.hit
        print(f"[{hit.score:.3f}] {hit.question}  ({hit.id}, {hit.category})")
    elif outcome.decision in ("refuse", "clarify"):
        print(f"({'refused' if outcome.decision == 'refuse' else 'clarify'}: {outcome.reason})")
    else:
        best = outcome.candidates[0].score if outcome.candidates else float("nan")
        print(f"(no confident answer: best score {best:.3f} is below the threshold)")
    print(outcome.message)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from walletfaq.cli_serve import run_serve

    return run_serve(args, _retriever)


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

    _check_answer_settings(args)  # before any model loads
    # the cache holds the same index when this corpus/model/settings were embedded before
    retriever = FAQRetriever.from_corpus(
        args.corpus,
        model=args.model,
        index=args.kind,
        index_answers=args.index_answers,
        contacts=args.contacts,
    )
    if args.threshold is not None:
        retriever.threshold = args.threshold
    if args.fallback is not None:
        retriever.fallback = args.fallback
    if args.clarify_margin is not None:
        retriever.clarify_margin = args.clarify_margin
    retriever.clarify_message = args.clarify_message
    path = retriever.save(args.out)
    print(f"saved {retriever!r} to {path}")
    return 0


def _check_answer_settings(args: argparse.Namespace) -> None:
    """Refuse a bad ``--threshold``, ``--fallback``, ``--clarify-margin`` or
    ``--clarify-message`` before anything is loaded."""
    from walletfaq.retrieval.questions import check_clarify_margin, check_threshold

    if args.threshold is not None:
        check_threshold(args.threshold)
    if getattr(args, "clarify_margin", None) is not None:
        check_clarify_margin(args.clarify_margin)
    for name in ("fallback", "clarify_message"):
        message = getattr(args, name, None)
        if message is not None and not message.strip():
            raise WalletFAQError(
                f"--{name.replace('_', '-')} must be a non-empty message (leave it out for "
                "the default)"
            )


def _calibrate(args: argparse.Namespace) -> int:
    from walletfaq.quality.calibration import PRESET_RULE, CalibrationRule
    from walletfaq.quality.index_calibration import calibrate_index

    rule = CalibrationRule(
        PRESET_RULE.target_precision if args.target_precision is None else args.target_precision,
        PRESET_RULE.min_ood_abstain if args.min_ood_abstain is None else args.min_ood_abstain,
    )
    print(calibrate_index(args.index, args.queries, rule, write=args.write).summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``walletfaq`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    package_logger = logging.getLogger("walletfaq")
    if not package_logger.handlers:
        handler = _StderrHandler()
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
        "calibrate": _calibrate,
        "export": _export,
        "tune": _tune,
        "eval": _eval,
        "bench": _bench,
        "serve": _serve,
        "doctor": _doctor,
        "store": _store_command,
        "report": _traffic_command,
        "publish": _store_command,
        "gaps": _traffic_command,
    }
    try:
        with warnings.catch_warnings():  # restores the warning printer when done
            warnings.showwarning = _show_warning  # type: ignore[assignment]
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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a line is logged, not as it was when the handler
    was made (``main`` may run many times in one process, each with its own stderr)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _show_warning(message: Warning | str, category: type[Warning], *_where: object) -> None:
    """Print a warning as the command line prints everything: one line, no source line."""
    text = " ".join(str(message).split())
    print(f"walletfaq: warning: {text} ({category.__name__})", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line, printable whatever bytes it quotes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


if __name__ == "__main__":
    sys.exit(main())


def _store_command(args: argparse.Namespace) -> int:
    from walletfaq.cli_store import run_store_command

    return run_store_command(args)


def _traffic_command(args: argparse.Namespace) -> int:
    from walletfaq.cli_traffic import run_traffic_command

    return run_traffic_command(args)
