"""``walletfaq store ...``: the store of record on the command line (needs the ``store``
extra, imported only when a store command runs). :mod:`walletfaq.cli` registers these."""

from __future__ import annotations

import argparse
import json


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


def run_store_command(args: argparse.Namespace) -> int:
    from walletfaq.store import open_store
    from walletfaq.store.imports import read_entries, write_entries

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
