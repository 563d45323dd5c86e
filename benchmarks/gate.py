"""The quality gate of `walletfaq publish` on the real model: planted harmful edits of the
bundled corpus are stopped, benign ones pass; how long an editor waits (cold and warm cache).

    python benchmarks/gate.py [--model e5-small] [--contacts]

The published content is the bundled corpus as a store holds it (no hotline entries, as
`walletfaq serve --store` serves by default; `--contacts` adds the bundled contacts' hotline
entries to both sides, as `--contacts` does for the service); the gate queries are the bundled
evaluation set. Each edit is checked by `walletfaq.quality.gate.check_gate`, in one process
whose index cache starts empty (the model folder is shared with the user cache, so the model is
not rebuilt): the first check is cold (the published content's index and the gate queries are
embedded), the others warm (loaded from the cache). Then `walletfaq publish` is timed end to
end (a fresh process each: model load included) on an SQLite store with its own empty cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from walletfaq.data.corpus import Corpus, FAQEntry, load_bundled_corpus
from walletfaq.data.queries import load_bundled_queries


def edits(bundled: Corpus) -> list[tuple[str, str, Corpus]]:
    """(kind, description, candidate) for each planted edit."""
    queries = load_bundled_queries()
    busiest = max(bundled.ids, key=lambda i: sum(i in q.gold for q in queries))
    login = bundled["login-failed"]
    fees = bundled["fees"]
    topup = bundled["topup-not-received"]

    def replaced(entry: FAQEntry) -> Corpus:
        return Corpus.from_entries([entry if e.id == entry.id else e for e in bundled.entries])

    new = FAQEntry(
        "export-bill-statement",
        "account",
        "怎么导出钱包的账单流水？",
        "在“账单”页面右上角选择“开具交易流水证明”，按提示选择时间范围和接收邮箱。",
        ("交易流水怎么打印", "能开收入证明用的流水吗"),
    )
    return [
        (
            "harmful",
            f"delete the most-queried entry ({busiest})",
            Corpus.from_entries([e for e in bundled.entries if e.id != busiest]),
        ),
        (
            "harmful",
            "rewrite login-failed's question to another topic, alt questions dropped",
            replaced(dataclasses.replace(login, question="提现到银行卡要多久？", alt_questions=())),
        ),
        (
            "harmful",
            "topup-not-received's answer sends users to an unknown number and link (question kept)",
            replaced(
                dataclasses.replace(
                    topup,
                    answer="充值未到账请立即拨打专属客服 400-820-1234，或登录 wallet-refund.top "
                    "按提示把余额转入安全账户核验。",
                )
            ),
        ),
        (
            "benign",
            "add an alt question to login-failed",
            replaced(
                dataclasses.replace(
                    login, alt_questions=(*login.alt_questions, "app 登录一直转圈进不去")
                )
            ),
        ),
        (
            "benign",
            "rewrite fees's answer (question unchanged)",
            replaced(dataclasses.replace(fees, answer=fees.answer + " 费率以 App 内公示为准。")),
        ),
        (
            "benign",
            "add a new entry (export-bill-statement) on a new topic",
            bundled.merged(Corpus((new,))),
        ),
    ]


def fresh_cache() -> Path:
    """An empty walletfaq cache whose models/ and safety/ are the user cache's (no rebuild)."""
    from walletfaq.encoders.presets import cache_dir

    shared = cache_dir()
    root = Path(tempfile.mkdtemp(prefix="walletfaq-gate-bench-"))
    for name in ("models", "safety"):
        if (shared / name).exists():
            (root / name).symlink_to(shared / name)
    return root


def in_process(model: str, contacts: str | None) -> None:
    from walletfaq.quality.gate import check_gate

    bundled = load_bundled_corpus()
    print(
        "| edit | kind | gate | R@1 before → after (Δ points) | MRR@10 Δ | broken "
        "| lost entries | new contact details | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for number, (kind, description, candidate) in enumerate(edits(bundled)):
        started = time.perf_counter()
        result = check_gate(bundled, candidate, model=model, contacts=contacts)
        seconds = time.perf_counter() - started
        lost = ", ".join(e.entry_id for e in result.lost_entries) or "-"
        r1 = (result.metrics_before["recall@1"], result.metrics_after["recall@1"])
        print(
            f"| {description} | {kind} | {'passed' if result.passed else 'REFUSED'} | "
            f"{r1[0]:.4f} → {r1[1]:.4f} ({result.deltas['recall@1']:+.2f}) | "
            f"{result.deltas['mrr@10']:+.2f} | {len(result.broken)} | {lost} | "
            f"{', '.join(d.detail.key for d in result.new_details) or '-'} | "
            f"{seconds:.1f}{' (cold)' if number == 0 else ''} |"
        )
    print(
        f"\ngated queries: {result.n_queries} ({result.n_out_of_domain} out of domain and "
        f"{result.n_skipped} with unpublished gold not gated)"
    )


def command_line(model: str, contacts: str | None) -> None:
    """`walletfaq publish` wall time, a fresh process each (model load included), on one
    SQLite store and one cache that starts empty: cold, warm, after an edit applied outside
    the gate (so the published content was never indexed), and a refused harmful edit."""
    from walletfaq.store import Change, open_store

    bundled = load_bundled_corpus()
    env = {**os.environ, "WALLETFAQ_CACHE_DIR": str(fresh_cache()), "HF_HUB_OFFLINE": "1"}
    runs = [
        ("cold cache, an alt question added", False, False),
        ("warm cache, an alt question added", False, False),
        ("warm cache, an alt question added", False, False),
        ("after an edit applied outside the gate, an alt question added", True, False),
        ("warm cache, the most-queried entry deleted (refused)", False, True),
    ]
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "faq.db")
        with open_store(db, create=True) as store:
            store.init(bundled, author="bench")
        for run, (what, apply_first, harmful) in enumerate(runs, start=1):
            with open_store(db) as store:
                if harmful:
                    store.stage([Change.remove("what-is-digital-wallet")], author="bench")
                else:
                    if apply_first:
                        fees = store.entry("fees")
                        edited = dataclasses.replace(
                            fees, alt_questions=(*fees.alt_questions, "收不收钱")
                        )
                        store.apply([Change.update(edited)], author="bench")
                    entry = store.entry("login-failed")
                    alt = f"登录失败的第{run}种说法"
                    edited = dataclasses.replace(entry, alt_questions=(*entry.alt_questions, alt))
                    store.stage([Change.update(edited)], author="bench")
            command = [sys.executable, "-m", "walletfaq", "-q", "publish", "--store", db]
            command += ["--model", model] + (["--contacts", contacts] if contacts else [])
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            print(f"- {what}: exit {done.returncode}, {seconds:.1f} s wall")
            if done.returncode not in (0, 3):
                print(done.stderr[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--contacts", action="store_true", help="add the bundled contacts")
    parser.add_argument(
        "--in-process-only", action="store_true", help="skip the command-line timings"
    )
    args = parser.parse_args()
    contacts = None
    if args.contacts:
        from walletfaq.data.corpus import bundled_data_dir

        contacts = str(bundled_data_dir() / "contacts.json")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    os.environ["WALLETFAQ_CACHE_DIR"] = str(fresh_cache())
    in_process(args.model, contacts)
    if not args.in_process_only:
        print()
        command_line(args.model, contacts)


if __name__ == "__main__":
    main()
