"""What the traffic report tests share: traffic planted in a store (``Planted``,
``week_of_traffic``, ``hostile_report``) and a fresh SQLite store (``sqlite_store``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.store_support import small_corpus
from walletfaq.quality.traffic_report import TrafficReport, traffic_report
from walletfaq.store import QueryHit, QueryRecord, Store, open_store

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
WEEK = (T0, T0 + timedelta(days=7))
HOSTILE = (
    "<script>window.__pwned = 1</script>怎么退款",
    '<img src=x onerror="window.__pwned = 2">提现',
    "\"'></td></table><b>粗体</b>",
    "&lt;已经转义&gt; 的文字",
    r"$\frac{1}{0}$ 和 $ 美元",
)


class Planted:
    """Queries to log: ``add`` one, ``log`` them all in one transaction (request ids
    ``<prefix>0``, ``<prefix>1``...)."""

    def __init__(self, prefix: str = "r") -> None:
        self.prefix = prefix
        self.records: list[QueryRecord] = []

    def add(
        self,
        at: datetime,
        decision: str = "answer",
        entry: str = "q1",
        *,
        question: str = "问题1怎么办",
        score: float = 0.9,
        latency_ms: float = 10.0,
    ) -> str:
        request_id = f"{self.prefix}{len(self.records)}"
        hits = () if decision == "refuse" else (QueryHit(entry, score), QueryHit("q5", 0.1))
        self.records.append(
            QueryRecord(request_id, question, decision, hits, latency_ms, created_at=at)  # type: ignore[arg-type]
        )
        return request_id

    def log(self, store: Store) -> None:
        store.log_queries(self.records)


@pytest.fixture(name="sqlite_store")
def sqlite_store_with_small_corpus(tmp_path: Path) -> Iterator[Store]:
    """A new SQLite store holding the five entries q1..q5 as revision 1."""
    created = open_store(str(tmp_path / "faq.db"), create=True)
    created.init(small_corpus(), author="alice")
    yield created
    created.close()


def week_of_traffic(store: Store) -> None:
    """12 queries over a week: 7 answered (q1 five times, q2 twice), 2 asked back, 2 handed
    off, 1 refused; feedback on four answers and one hand-off."""
    planted = Planted()
    day = timedelta(days=1)
    answers = [planted.add(T0 + timedelta(hours=h)) for h in (1, 2, 3, 30, 31)]
    answers += [planted.add(T0 + 2 * day, entry="q2"), planted.add(T0 + 2 * day, entry="q2")]
    planted.add(T0 + 3 * day, "clarify", "q3")
    planted.add(T0 + 3 * day, "clarify", "q3")
    handoff = planted.add(T0 + 4 * day, "handoff", "q4", question="怎么开发票", score=0.4)
    planted.add(T0 + 6 * day, "handoff", "q4", question="怎么开发票", score=0.5)
    planted.add(T0 + 6 * day, "refuse", question="")
    planted.log(store)
    store.add_feedback(answers[0], True)
    store.add_feedback(answers[1], True)
    store.add_feedback(answers[2], False, entry_id="q3")
    store.add_feedback(answers[5], True)
    store.add_feedback(handoff, False, entry_id="q4")


def hostile_report(store: Store) -> TrafficReport:
    planted = Planted()
    for number, question in enumerate(HOSTILE):
        planted.add(T0 + timedelta(hours=number), "handoff", question=question)
    planted.add(T0, "answer")
    planted.log(store)
    return traffic_report(store, *WEEK)
