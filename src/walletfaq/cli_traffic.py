"""``walletfaq report``: the traffic report of a store, as one HTML page and/or JSON;
``walletfaq gaps``: clusters of missed questions in a store's query log and the proposals made
from them (``gaps accept``, ``gaps reject``, ``gaps list``); and the store's side of
``walletfaq tune --store`` (:func:`store_tuning`). They need the ``store`` and ``eval`` extras,
imported only when a command runs. :mod:`walletfaq.cli` registers them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from walletfaq.errors import WalletFAQError
from walletfaq.quality.traffic_window import WINDOW_RULE

if TYPE_CHECKING:
    from walletfaq.quality.tuning import TuningData
    from walletfaq.retrieval.retriever import FAQRetriever
    from walletfaq.store import Proposal, Store


def add_traffic_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = commands.add_parser(
        "report",
        help="the traffic report of a store: answer/clarify/hand-off rates, helpfulness, "
        "latency, hand-off questions (an HTML page, or JSON)",
    )
    report.add_argument(
        "--store", required=True, help="an SQLite file path or a postgresql://USER@HOST/DB URL"
    )
    report.add_argument("--since", required=True, help=f"the window's start: {WINDOW_RULE}")
    report.add_argument("--until", help="the window's end, in the same forms (default: now)")
    report.add_argument("--out", help="write the report here as one self-contained HTML page")
    report.add_argument(
        "--json", action="store_true", help="print the summary and every table as JSON"
    )
    report.add_argument(
        "--top", type=int, help="how many hand-off questions and gap clusters to list (default 20)"
    )
    report.add_argument(
        "--no-gaps",
        action="store_true",
        help="leave the gap clusters out (they need the model: mined over the store's latest "
        "revision; the report records no proposal, `walletfaq gaps` does)",
    )
    report.add_argument("--model", help="the model gaps are mined with (default: e5-small)")
    add_gaps_commands(commands)


def add_gaps_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``walletfaq gaps`` and its ``accept``, ``reject`` and ``list`` commands."""
    where = "an SQLite file path or a postgresql://USER@HOST/DB URL"
    gaps = commands.add_parser(
        "gaps",
        help="clusters of missed questions in a store's query log, each with a proposal "
        "(alt questions for an entry, or a new entry) recorded in the store to accept or reject",
    )
    gaps.add_argument("--store", help=where)
    gaps.add_argument(
        "--since", help=f"mine the queries asked since: {WINDOW_RULE} (default: the whole log)"
    )
    gaps.add_argument("--json", action="store_true", help='print {"clusters": [...]} as JSON')
    gaps.add_argument("--model", help="the model to mine with (default: e5-small)")
    actions = gaps.add_subparsers(dest="gaps_command", metavar="{accept,reject,list}")
    accept = actions.add_parser(
        "accept", help="accept a proposal: a new revision (or a staged change with --stage)"
    )
    accept.add_argument("id", help="the proposal id (prop-..., as `walletfaq gaps` shows it)")
    accept.add_argument("--store", required=True, help=where)
    accept.add_argument(
        "--answer", help="the new entry's answer, written by a person (new_entry: required)"
    )
    accept.add_argument("--category", help="the new entry's category (new_entry; default: gaps)")
    accept.add_argument(
        "--stage",
        action="store_true",
        help="stage the change for the next publish instead of writing a revision now",
    )
    accept.add_argument("--author", default="walletfaq", help="who decides (default walletfaq)")
    reject = actions.add_parser("reject", help="reject a proposal (final)")
    reject.add_argument("id", help="the proposal id")
    reject.add_argument("--store", required=True, help=where)
    reject.add_argument("--author", default="walletfaq", help="who decides (default walletfaq)")
    listing = actions.add_parser("list", help="list the recorded proposals, oldest first")
    listing.add_argument("--store", required=True, help=where)
    listing.add_argument(
        "--status", choices=["open", "accepted", "rejected"], help="only proposals with it"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per proposal")


def run_traffic_command(args: argparse.Namespace) -> int:
    """Run ``walletfaq report`` or ``walletfaq gaps ...``; the exit status."""
    if args.command == "gaps":
        return _run_gaps(args)
    return _run_report(args)


def _run_report(args: argparse.Namespace) -> int:
    from walletfaq.quality.traffic_report import traffic_report
    from walletfaq.quality.traffic_window import report_window
    from walletfaq.store import open_store

    if not args.out and not args.json:
        raise WalletFAQError(
            "walletfaq report writes nothing without --out FILE (an HTML page) or --json; "
            "pass either or both"
        )
    window = report_window(args.since, args.until)  # a bad time fails before the store opens
    if args.top is not None and args.top < 1:  # before the gaps' model loads
        raise WalletFAQError(f"top must be a positive whole number, got {args.top}")
    options: dict[str, Any] = {} if args.top is None else {"top": args.top}
    with open_store(args.store) as store:
        if not args.no_gaps:
            from walletfaq.quality.gaps.store_bridge import gaps_from_store

            options["gaps"] = gaps_from_store(
                store, since=window.since, until=window.until, model=args.model, record=False
            )
        report = traffic_report(store, window.since, window.until, **options)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(_summary_lines(report.summary, report.window.describe()))
    if args.out:
        path = report.to_html(args.out)
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _summary_lines(s: dict[str, Any], window: str) -> str:
    head = f"{s['store']}: {s['queries']:,} queries, {window}"
    if not s["queries"]:
        return f"{head}\nno traffic in this window"

    def share(key: str) -> str:
        value = s[key]
        return "-" if value is None else f"{value * 100:.1f} %"

    def ms(key: str) -> str:
        value = s[key]
        return "-" if value is None else f"{value:.1f} ms"

    lines = [
        head,
        f"answered {share('answer_rate')}, asked back {share('clarify_rate')}, handed off "
        f"{share('handoff_rate')}, refused {share('refuse_rate')}",
        f"helpful {share('helpfulness')} of {s['answers_rated']:,} rated answers; latency "
        f"p50 {ms('latency_p50_ms')}, p95 {ms('latency_p95_ms')}",
    ]
    if s.get("gap_clusters") is not None:
        lines.append(f"{s['gap_clusters']:,} gap clusters (walletfaq gaps lists them)")
    return "\n".join(lines)


# --- walletfaq gaps ------------------------------------------------------------------------


def _run_gaps(args: argparse.Namespace) -> int:
    from walletfaq.store import open_store

    command = args.gaps_command
    if command is None:
        return _mine(args)
    with open_store(args.store) as store:
        if command == "list":
            return _list(store, args)
        proposal = store.proposal(args.id)
        if command == "reject":
            decided = store.decide_proposal(proposal.id, False, author=args.author)
            print(f"{store.url}: proposal {decided.id} ({decided.kind}) rejected by {args.author}")
            return 0
        _check_accept(proposal, args)
        decided = store.decide_proposal(
            proposal.id,
            True,
            author=args.author,
            stage=args.stage,
            answer=args.answer,
            category=args.category,
        )
        print(f"{store.url}: proposal {decided.id} ({decided.kind}) accepted by {args.author}: "
              + _accepted_change(store, decided))  # fmt: skip
    return 0


def _mine(args: argparse.Namespace) -> int:
    from walletfaq.quality.gaps.store_bridge import gaps_from_store
    from walletfaq.quality.traffic_window import report_window
    from walletfaq.store import open_store

    if not args.store:
        raise WalletFAQError(
            "walletfaq gaps needs --store URL (an SQLite file path or a postgresql:// URL)"
        )
    since = None if args.since is None else report_window(args.since).since  # before opening
    with open_store(args.store) as store:
        report = gaps_from_store(store, since=since, model=args.model)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    window = "the whole log" if since is None else f"since {since:%Y-%m-%d %H:%M} UTC"
    print(
        f"{report.store}: {report.considered:,} logged queries ({window}), {report.misses:,} "
        f"misses, {len(report.clusters):,} gap clusters ({report.noise:,} misses in none); "
        f"{report.recorded:,} new proposals recorded"
    )
    for rank, cluster in enumerate(report.clusters, start=1):
        stored = report.proposal_of(cluster)
        proposal = cluster.proposal
        label = f"proposal {stored.id} ({stored.status})" if stored else "no proposal"
        print(
            f"{rank:>3}. {label}, {proposal.kind}: {cluster.size:,} questions, cluster "
            f"{cluster.id}, nearest entry {cluster.nearest_entry or '-'} ({cluster.score:.3f})"
        )
        if proposal.kind == "new_entry":
            print(f"     suggested question: {proposal.suggested_question}")
        elif stored is None:
            print(f"     entry {proposal.entry_id} already has every question")
        else:
            print(f"     alt questions for {proposal.entry_id}")
        print(f"     asked: {' | '.join(cluster.representatives)}")
    if any(report.proposal_of(c) for c in report.clusters):
        print(
            "decide: walletfaq gaps accept ID --store URL [--stage] (a new entry needs "
            "--answer TEXT, written by a person), or walletfaq gaps reject ID --store URL"
        )
    return 0


def _check_accept(proposal: Proposal, args: argparse.Namespace) -> None:
    """The options of ``gaps accept`` fit the proposal (before anything is written)."""
    if proposal.kind == "new_entry":
        if args.answer is None or not args.answer.strip():
            raise WalletFAQError(
                f"proposal {proposal.id} is a new entry ({proposal.suggested_question!r}): its "
                "answer is written by a person; pass --answer TEXT (and --category NAME)"
            )
    elif args.answer is not None or args.category is not None:
        raise WalletFAQError(
            f"proposal {proposal.id} adds alt questions to entry {proposal.target!r}; "
            "--answer and --category are only for a new_entry proposal"
        )


def _accepted_change(store: Store, proposal: Proposal) -> str:
    """What accepting ``proposal`` wrote, in words."""
    if proposal.revision is None:  # staged
        staged = [c.entry_id for c in store.staged() if c.proposal_id == proposal.id]
        return (
            f"entry {', '.join(staged)} staged for the next publish (walletfaq publish "
            f"--store {store.url})"
        )
    diff = store.diff(proposal.revision - 1, proposal.revision)
    added = [d.entry_id for d in diff.added]
    changed = [d.entry_id for d in diff.changed]
    if added:
        return f"revision {proposal.revision} adds entry {', '.join(added)}"
    return f"revision {proposal.revision} adds alt questions to entry {', '.join(changed)}"


def _list(store: Store, args: argparse.Namespace) -> int:
    proposals = store.proposals(args.status)
    for proposal in proposals:
        if args.json:
            print(json.dumps(proposal.to_dict(), ensure_ascii=False))
            continue
        what = (
            f"new entry {proposal.suggested_question!r}"
            if proposal.kind == "new_entry"
            else f"alt questions for {proposal.target}"
        )
        decided = (
            f", {proposal.status} by {proposal.decided_by}" if proposal.status != "open" else ""
        )
        revision = f" (revision {proposal.revision})" if proposal.revision else ""
        print(
            f"{proposal.id}  {proposal.created_at:%Y-%m-%d %H:%M}Z  {proposal.status:<8}  "
            f"{what}: {len(proposal.questions)} questions{decided}{revision}"
        )
    if not proposals and not args.json:
        status = f" {args.status}" if args.status else ""
        print(f"{store.url}: no{status} proposals (walletfaq gaps --store URL records them)")
    return 0


# --- walletfaq tune --store ----------------------------------------------------------------


def add_tune_sources(tune: argparse.ArgumentParser) -> None:
    """What ``walletfaq tune`` learns from: ``--data FILE``, or ``--store URL [--since ...]``
    (the labelled queries of a store's query log)."""
    data = tune.add_mutually_exclusive_group(required=True)
    data.add_argument(
        "--data",
        help="eval-format JSONL ({query, gold}) or a TSV/CSV of sentence1, sentence2, label",
    )
    data.add_argument(
        "--store",
        help="learn from a store's query log (feedback naming an entry, or helpful on an "
        "answer, labels a question) and tune its latest revision (unless --index/--corpus)",
    )
    tune.add_argument("--since", help=f"with --store: the queries asked since ({WINDOW_RULE})")


def tuning_source(
    args: argparse.Namespace, retriever_of: Callable[[argparse.Namespace], FAQRetriever]
) -> tuple[FAQRetriever, str | TuningData]:
    """The retriever ``walletfaq tune`` adapts and what it learns from: ``retriever_of(args)``
    (``--index``/``--corpus``) and ``--data``; or, with ``--store``, the store's labelled
    queries (:func:`store_tuning`)."""
    if args.since is not None and not args.store:
        raise WalletFAQError("--since reads the store's query log: use it with --store URL")
    if not args.store:
        return retriever_of(args), args.data
    given = retriever_of(args) if args.index or args.corpus else None
    return store_tuning(args.store, args.since, args.model, given)


def store_tuning(
    location: str, since: str | None, model: str | None, retriever: FAQRetriever | None
) -> tuple[FAQRetriever, TuningData]:
    """What ``walletfaq tune --store URL [--since ...]`` tunes and learns from: ``retriever``
    (default: one built from the store's latest revision with ``model``) and the labelled
    queries of the store's query log asked since ``since`` (all without)."""
    from walletfaq.quality.traffic_window import report_window
    from walletfaq.quality.tuning.data import store_tuning_data
    from walletfaq.retrieval.retriever import FAQRetriever
    from walletfaq.store import open_store

    start = None if since is None else report_window(since).since  # before the store opens
    with open_store(location) as store:
        if retriever is None:
            retriever = FAQRetriever.from_store(store, model=model)
        data = store_tuning_data(store, start, retriever.corpus.ids)
    return retriever, data
