"""``walletfaq report``: the traffic report of a store, as one HTML page and/or JSON (needs the
``store`` and ``eval`` extras, imported only when the command runs). :mod:`walletfaq.cli`
registers it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from walletfaq.errors import WalletFAQError
from walletfaq.quality.traffic_window import WINDOW_RULE


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
    report.add_argument("--top", type=int, help="how many hand-off questions to list (default 20)")


def run_traffic_command(args: argparse.Namespace) -> int:
    from walletfaq.quality.traffic_report import traffic_report
    from walletfaq.quality.traffic_window import report_window
    from walletfaq.store import open_store

    if not args.out and not args.json:
        raise WalletFAQError(
            "walletfaq report writes nothing without --out FILE (an HTML page) or --json; "
            "pass either or both"
        )
    window = report_window(args.since, args.until)  # a bad time fails before the store opens
    options = {} if args.top is None else {"top": args.top}
    with open_store(args.store) as store:
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

    return "\n".join(
        [
            head,
            f"answered {share('answer_rate')}, asked back {share('clarify_rate')}, handed off "
            f"{share('handoff_rate')}, refused {share('refuse_rate')}",
            f"helpful {share('helpfulness')} of {s['answers_rated']:,} rated answers; latency "
            f"p50 {ms('latency_p50_ms')}, p95 {ms('latency_p95_ms')}",
        ]
    )
