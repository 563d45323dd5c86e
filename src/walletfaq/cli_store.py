"""``walletfaq store ...`` and ``walletfaq publish``: the store of record on the command line
(needs the ``store`` extra, imported only when a store command runs). :mod:`walletfaq.cli`
registers these.

``walletfaq store stage`` / ``staged`` / ``discard`` manage the staged changes;
``walletfaq publish`` checks them with the quality gate (:mod:`walletfaq.quality.gate`) and
publishes them as one revision. Its exit status: 0 published, 2 a user error (one line, as every
command; nothing staged is one), 3 refused by the gate (nothing published, the staged changes
kept), 4 the store changed while the gate ran or after the changes were staged (nothing
published; the line says what to do).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    from walletfaq.data.corpus import Corpus
    from walletfaq.quality.gate import GateResult
    from walletfaq.store import StagedChange, Store

EXIT_REFUSED = 3
"""``walletfaq publish``: the quality gate refused the staged changes; nothing was published."""
EXIT_CONFLICT = 4
"""``walletfaq publish``: the store changed while the gate ran (a revision, or other staged
changes), or an entry changed after it was staged; nothing was published."""
_MAX_USER_REASON = 1_490  # with "; " and the gate's headline (<= 500): the store's 2,000


def add_store_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    store = commands.add_parser(
        "store", help="the store of record: entries and their history (needs the [store] extra)"
    )
    actions = store.add_subparsers(dest="store_command", required=True)
    where = {"required": True, "help": "an SQLite file path or a postgresql://USER@HOST/DB URL"}
    init = actions.add_parser("init", help="create a store and import a corpus as revision 1")
    init.add_argument("--store", **where)  # type: ignore[arg-type]
    init.add_argument(
        "--corpus", help="a .jsonl, .csv or .xlsx FAQ file (default: the bundled corpus)"
    )
    init.add_argument("--author", default="walletfaq", help="who imports (default walletfaq)")
    init.add_argument("--reason", help="why (recorded in the log)")
    log = actions.add_parser("log", help="list the revisions: number, time, author, reason")
    log.add_argument("--store", **where)  # type: ignore[arg-type]
    log.add_argument("--json", action="store_true", help="one JSON object per revision")
    rollback = actions.add_parser(
        "rollback", help="write a new revision that restores an earlier revision's content"
    )
    rollback.add_argument("--store", **where)  # type: ignore[arg-type]
    rollback.add_argument("--to", type=int, required=True, metavar="REV", help="the revision")
    rollback.add_argument("--author", default="walletfaq", help="who rolls back")
    rollback.add_argument("--reason", help="why (recorded in the log)")
    export = actions.add_parser("export", help="write the latest entries as JSONL, CSV or XLSX")
    export.add_argument("--store", **where)  # type: ignore[arg-type]
    export.add_argument("--out", required=True, help="the file (.jsonl, .csv or .xlsx)")
    export.add_argument("--revision", type=int, help="an earlier revision (default: the latest)")
    stage = actions.add_parser(
        "stage",
        help="stage entries to add or replace, and removals, for the next `walletfaq publish`",
    )
    stage.add_argument("--store", **where)  # type: ignore[arg-type]
    stage.add_argument(
        "--corpus", help="a .jsonl, .csv or .xlsx file of entries to add (new id) or replace"
    )
    stage.add_argument("--delete", nargs="+", default=[], metavar="ID", help="entry ids to remove")
    stage.add_argument("--author", default="walletfaq", help="who stages (default walletfaq)")
    stage.add_argument("--reason", help="why (recorded with the staged changes)")
    staged = actions.add_parser("staged", help="list the staged changes, oldest first")
    staged.add_argument("--store", **where)  # type: ignore[arg-type]
    staged.add_argument("--json", action="store_true", help="one JSON object per change")
    discard = actions.add_parser("discard", help="delete every staged change")
    discard.add_argument("--store", **where)  # type: ignore[arg-type]
    _add_publish_command(commands, where)


def _add_publish_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    where: dict[str, object],
) -> None:
    publish = commands.add_parser(
        "publish",
        help="check the staged changes with the quality gate and publish them as one revision "
        "(exit 3: refused by the gate, nothing published)",
    )
    publish.add_argument("--store", **where)  # type: ignore[arg-type]
    publish.add_argument(
        "--gate",
        metavar="FILE",
        help="gate queries: JSONL of {query, gold[, style]} (default: the bundled evaluation set)",
    )
    publish.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        help="largest fall of Recall@1 or MRR@10 that passes, in points (default 0.5)",
    )
    publish.add_argument(
        "--force",
        action="store_true",
        help="publish even if the gate refuses (recorded in the history as forced)",
    )
    publish.add_argument("--model", help="model preset, hub name or path (default: e5-small)")
    publish.add_argument(
        "--contacts",
        help="the contacts JSON the service adds as hotline entries (walletfaq serve "
        "--contacts); default none",
    )
    publish.add_argument("--author", default="walletfaq", help="who publishes")
    publish.add_argument("--reason", help="why (recorded with the gate's verdict)")
    publish.add_argument(
        "--json",
        action="store_true",
        help="print {status, revision, store, head, gate} as JSON",
    )


def run_store_command(args: argparse.Namespace) -> int:
    from walletfaq.store import open_store
    from walletfaq.store.imports import read_entries, write_entries

    if args.command == "publish":
        return _publish(args)
    if args.store_command in ("stage", "staged", "discard"):
        return _staging_command(args)
    if args.store_command == "init":
        from walletfaq.data.corpus import bundled_corpus_path

        corpus = read_entries(args.corpus or bundled_corpus_path())  # before creating anything
        with open_store(args.store, create=True) as store:
            revision = store.init(corpus, author=args.author, reason=args.reason)
            print(f"{store.url}: revision {revision.number}, {len(corpus)} entries imported")
        return 0
    if args.store_command == "rollback":
        with open_store(args.store) as store:
            revision = store.rollback(args.to, author=args.author, reason=args.reason)
            print(
                f"{store.url}: revision {revision.number} restores revision {args.to} "
                f"({revision.changes} entries changed)"
            )
        return 0
    if args.store_command == "export":
        with open_store(args.store) as store:
            corpus = store.entries(args.revision)
        path = write_entries(corpus.entries, args.out)
        print(f"wrote {len(corpus)} entries ({corpus.source}) to {path}")
        return 0
    with open_store(args.store) as store:
        revisions = store.log()
    for revision in revisions:
        if args.json:
            print(json.dumps(revision.to_dict(), ensure_ascii=False))
            continue
        what = f"restores {revision.restores}" if revision.restores else revision.kind
        what += " (forced past its gate)" if revision.forced else ""
        reason = f"  {revision.reason}" if revision.reason else ""
        print(
            f"{revision.number:>6}  {revision.created_at:%Y-%m-%d %H:%M:%S}Z  {revision.author}  "
            f"{what}, {revision.changes} entries{reason}"
        )
    return 0


# --- staging -------------------------------------------------------------------------------


def _staging_command(args: argparse.Namespace) -> int:
    from walletfaq.store import open_store

    if args.store_command == "stage":
        return _stage(args)
    with open_store(args.store) as store:
        if args.store_command == "discard":
            count = store.discard_staged()
            print(
                f"{store.url}: discarded {count} staged change{'' if count == 1 else 's'}"
                if count
                else f"{store.url}: nothing staged"
            )
            return 0
        changes, head_ids = store.staged(), set(store.entries().ids) if store.head() else set()
    for change in changes:
        if args.json:
            record = {
                "position": change.position,
                "op": change.op,
                "id": change.entry_id,
                "entry": change.entry.to_dict() if change.entry is not None else None,
                "base_revision": change.base_revision,
                "author": change.author,
                "reason": change.reason,
                "proposal": change.proposal_id,
                "time": change.created_at.isoformat(),
            }
            print(json.dumps(record, ensure_ascii=False))
            continue
        what = "remove" if change.op == "delete" else "replace"
        what = "add" if change.op == "put" and change.entry_id not in head_ids else what
        extra = f"  proposal {change.proposal_id}" if change.proposal_id else ""
        extra += f"  {change.reason}" if change.reason else ""
        print(
            f"{change.position:>6}  {change.created_at:%Y-%m-%d %H:%M:%S}Z  {change.author}  "
            f"{what} {change.entry_id} (on revision {change.base_revision}){extra}"
        )
    if not args.json:
        print(
            f"{len(changes)} staged change{'' if len(changes) == 1 else 's'}; `walletfaq publish "
            "--store URL` checks and publishes them"
            if changes
            else "nothing staged"
        )
    return 0


def _stage(args: argparse.Namespace) -> int:
    from walletfaq.store import Change, open_store
    from walletfaq.store.imports import read_entries

    if not args.corpus and not args.delete:
        raise WalletFAQError(
            "store stage needs --corpus FILE (entries to add or replace) and/or --delete ID ..."
        )
    entries = read_entries(args.corpus).entries if args.corpus else ()  # before the store
    removals = [Change.remove(entry_id) for entry_id in args.delete]
    both = sorted({e.id for e in entries} & {c.entry_id for c in removals})
    if both:
        raise WalletFAQError(f"{both} are both in --corpus and --delete; stage one or the other")
    with open_store(args.store) as store:
        pending = {e.id: e for e in store.staged_corpus().entries}
        puts = [
            Change.update(e) if e.id in pending else Change.add(e)
            for e in entries
            if pending.get(e.id) != e
        ]
        unchanged = len(entries) - len(puts)
        if not puts and not removals:
            print(
                f"{store.url}: nothing to stage: the {unchanged} entries of {args.corpus} "
                "are already so"
            )
            return 0
        store.stage([*puts, *removals], author=args.author, reason=args.reason)
        total = len(store.staged())
    added = sum(1 for c in puts if c.op == "add")
    print(
        f"{store.url}: staged {added} to add, {len(puts) - added} to replace, {len(removals)} "
        f"to remove"
        + (f" ({unchanged} unchanged entries skipped)" if unchanged else "")
        + f"; {total} staged in all: `walletfaq publish --store URL` checks and publishes them"
    )
    return 0


# --- publish -------------------------------------------------------------------------------


def _publish(args: argparse.Namespace) -> int:
    from walletfaq.data.queries import load_queries
    from walletfaq.errors import StoreConflictError
    from walletfaq.quality.gate import check_gate, check_tolerance
    from walletfaq.store import PublishConflictError, StagedChangedError, open_store
    from walletfaq.store.writer import clean_author, clean_reason

    # every argument is checked before the store is read and before any model loads
    tolerance = check_tolerance(args.tolerance)
    author, reason = clean_author(args.author), clean_reason(args.reason)
    if reason is not None and len(reason) > _MAX_USER_REASON:
        raise WalletFAQError(
            f"--reason is {len(reason)} characters; keep it to {_MAX_USER_REASON} (the revision's "
            "reason also records the gate's verdict)"
        )
    queries = load_queries(args.gate)  # the bundled set when None; file:line:field errors
    with open_store(args.store) as store:
        head, staged, current, candidate = _staged_snapshot(store)
        result = check_gate(
            current,
            candidate,
            model=args.model,
            gate_queries=queries,
            tolerance=tolerance,
            contacts=args.contacts,
        )
        out: dict[str, object] = {
            "status": "refused",
            "revision": None,
            "store": store.url,
            "head": head,
        }
        if not result.passed and not args.force:
            _print_outcome(args, out, result)
            print(
                f"walletfaq: refused by the quality gate: {'; '.join(result.reasons)}; nothing "
                "was published, the staged changes are kept (fix or discard them, or publish "
                "with --force)",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        forced = not result.passed
        recorded = result.headline() + (", published with --force" if forced else "")
        recorded += f"; {reason}" if reason else ""
        try:
            revision = store.publish(
                author=author,
                reason=recorded,
                forced=forced,
                expected_head=head,
                expected_staged=staged,
            )
        except StoreConflictError as exc:
            out["status"] = "conflict"
            _print_outcome(args, out, result)
            advice = (
                ""
                if isinstance(exc, (PublishConflictError, StagedChangedError))
                else " (discard the staged changes with `walletfaq store discard` and stage them "
                "again on the latest revision)"
            )
            print(f"walletfaq: conflict: {_one_line(exc)}{advice}", file=sys.stderr)
            return EXIT_CONFLICT
        out.update(status="forced" if forced else "published", revision=revision.number)
        _print_outcome(args, out, result)
    return 0


def _staged_snapshot(store: Store) -> tuple[int, tuple[StagedChange, ...], Corpus, Corpus]:
    """The head, the staged changes, the published content and the staged content, read
    consistently (read again while another writer moves the head or the staged changes).

    Raises:
        StoreError: an empty store, nothing staged, staged changes that change nothing, or a
            store that kept changing.
    """
    from walletfaq.errors import StoreError

    for _attempt in range(5):
        head, staged = store.head(), store.staged()
        if not head:
            raise StoreError(f"{store.url} is empty; import a corpus first (walletfaq store init)")
        if not staged:
            raise StoreError(
                f"nothing is staged in {store.url}; nothing to publish (stage changes with "
                "`walletfaq store stage`)"
            )
        current, candidate = store.entries(head), store.staged_corpus()
        if store.head() != head or store.staged() != staged:
            continue
        if {e.id: e for e in current.entries} == {e.id: e for e in candidate.entries}:
            raise StoreError(
                f"the {len(staged)} staged changes leave revision {head}'s content as it is; "
                "nothing to publish (discard them with `walletfaq store discard`)"
            )
        return head, staged, current, candidate
    raise StoreError(f"{store.url} kept changing while the staged changes were read; try again")


def _print_outcome(args: argparse.Namespace, out: dict[str, object], result: GateResult) -> None:
    if args.json:
        print(json.dumps({**out, "gate": result.to_dict()}, ensure_ascii=False, indent=1))
        return
    print(result.summary())
    if out["status"] in ("published", "forced"):
        how = "forced past the quality gate" if out["status"] == "forced" else "gate passed"
        print(f"{out['store']}: published revision {out['revision']} ({how})")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
