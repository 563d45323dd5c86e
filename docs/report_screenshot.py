"""Retake ``docs/traffic_report.png``: the traffic report of a week of simulated traffic.

    python docs/report_screenshot.py [--out PNG] [--html FILE] [--seed N]

Creates a throwaway SQLite store holding the bundled corpus, logs a week of *simulated* queries
into it (questions from the corpus, answered or asked back; questions it does not cover, handed
off; a few refused; more by day than by night in China's time; made-up scores and latencies,
feedback on some answers: no model runs), writes ``walletfaq.traffic_report`` of that week as
HTML and saves the page as Debian's headless Chromium draws it (``apt-get install chromium
fonts-noto-cjk``; playwright drives it). The page loads nothing from the network.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from playwright.sync_api import sync_playwright

from walletfaq import load_corpus, open_store, traffic_report
from walletfaq.data.corpus import FAQEntry, bundled_corpus_path
from walletfaq.store import QueryHit, QueryRecord, Store

CHROMIUM = "/usr/bin/chromium"
OUT = Path(__file__).resolve().parent / "traffic_report.png"
START = datetime(2026, 5, 4, tzinfo=timezone.utc)
UNCOVERED = (
    "数字人民币钱包怎么开通",
    "境外消费可以退税吗",
    "我的手机13812345678收不到验证码",
    "亲属卡怎么解绑",
    "转账到了对方没收到怎么查",
    "发票抬头填错了能改吗",
    "老年人可以用语音操作吗",
    "银行卡6222020012345678901被冻结了",
)


def simulate(store: Store, seed: int) -> int:
    """Log a week of simulated traffic into ``store``; the number of queries logged."""
    rng = random.Random(seed)
    entries = store.entries().entries
    popular = rng.sample(entries, 25)  # a few entries get most of the questions
    records: list[QueryRecord] = []
    for hour in range(7 * 24):
        local = (hour + 8) % 24  # China's time
        rate = 2 + (30 if 9 <= local <= 22 else 4) * (1.3 if hour // 24 in (5, 6) else 1.0)
        for _ in range(rng.randint(int(rate * 0.7), int(rate * 1.3))):
            at = START + timedelta(hours=hour, seconds=rng.randrange(3600))
            records.append(_query(rng, popular, f"q{len(records):06d}", at, hour / (7 * 24)))
    store.log_queries(records)
    for record in records:
        if record.decision == "answer" and rng.random() < 0.25:
            helpful = rng.random() < (0.55 if record.hits[0].entry_id == popular[0].id else 0.85)
            store.add_feedback(record.request_id, helpful)
    return len(records)


def _query(
    rng: random.Random, popular: list[FAQEntry], request_id: str, at: datetime, progress: float
) -> QueryRecord:
    draw = rng.random()
    latency = rng.lognormvariate(3.0, 0.35) * (1.4 if progress > 0.7 else 1.0)
    if draw < 0.04:
        return QueryRecord(request_id, "", "refuse", (), latency, source="http", created_at=at)
    entry = popular[min(int(rng.expovariate(0.25)), len(popular) - 1)]
    second = rng.choice(popular)
    if draw < 0.04 + 0.16 * (1.2 - progress):  # fewer hand-offs as the week goes on
        question = UNCOVERED[min(int(rng.expovariate(0.45)), len(UNCOVERED) - 1)]
        hits = (QueryHit(entry.id, rng.uniform(0.70, 0.80)), QueryHit(second.id, 0.69))
        return QueryRecord(request_id, question, "handoff", hits, latency, 1, "http", at)
    question = rng.choice((entry.question, *entry.alt_questions))
    top = rng.uniform(0.86, 0.97)
    if draw < 0.30:
        hits = (QueryHit(entry.id, top), QueryHit(second.id, top - rng.uniform(0.0, 0.004)))
        return QueryRecord(request_id, question, "clarify", hits, latency, 1, "http", at)
    hits = (QueryHit(entry.id, top), QueryHit(second.id, top - rng.uniform(0.02, 0.1)))
    return QueryRecord(request_id, question, "answer", hits, latency, 1, "http", at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help="the screenshot (PNG)")
    parser.add_argument("--html", help="also keep the report page here")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="walletfaq-report-"))
    with open_store(str(folder / "faq.db"), create=True) as store:
        store.init(load_corpus(bundled_corpus_path()), author="walletfaq")
        logged = simulate(store, args.seed)
        report = traffic_report(store, START, START + timedelta(days=7))
    page_path = report.to_html(Path(args.html) if args.html else folder / "report.html")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(page_path.as_uri())
        Path(args.out).write_bytes(page.screenshot(full_page=True))
        browser.close()
    print(f"{logged} simulated queries; wrote {page_path} and {args.out}")


if __name__ == "__main__":
    main()
