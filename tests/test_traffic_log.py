"""The query log in-process: ``LoggedRetriever`` logs every question through a ``QueryLog``
that writes to the store of record in the background (SQLite and PostgreSQL): what one question
logs, feedback, a full queue, a failing store, closing, a killed process, many threads."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.conftest import HashEncoder
from tests.store_support import PostgresCluster
from walletfaq import Answer, Corpus, FAQRetriever, Hit, QueryError, StoreError, WalletFAQError
from walletfaq.retrieval.traffic import (
    LoggedAnswer,
    LoggedHits,
    LoggedRetriever,
    QueryLog,
    logged_hits,
    purge_older_than,
)
from walletfaq.store import QueryHit, QueryRecord, Store, UnknownRequestError, open_store

ROOT = Path(__file__).resolve().parents[1]
FAST = {"flush_interval_s": 0.01, "retry_delay_s": 0.01}


@pytest.fixture
def retriever(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    built = FAQRetriever.build(tiny_corpus, model=encoder)
    built.threshold = 0.5
    return built


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    """An empty store on each backend."""
    opened = open_store(store_location, create=True)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "faq.db"), create=True)
    yield opened
    opened.close()


@pytest.fixture
def query_log(store: Store) -> Iterator[QueryLog]:
    with QueryLog(store, **FAST) as log:
        yield log


@pytest.fixture
def logged(retriever: FAQRetriever, query_log: QueryLog) -> LoggedRetriever:
    return LoggedRetriever(retriever, query_log)


def record(request_id: str, decision: str = "answer", **fields: object) -> QueryRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "question": "充值不到账怎么办",
        "decision": decision,
        "hits": (QueryHit("topup", 0.9),),
        "latency_ms": 1.0,
        **fields,
    }
    return QueryRecord(**values)  # type: ignore[arg-type]


# --- what one question logs --------------------------------------------------------------


def test_an_answer_is_logged_once_with_its_decision_hits_and_latency(
    logged: LoggedRetriever, store: Store
) -> None:
    before = datetime.now(timezone.utc)
    answer = logged.answer("充值不到账怎么办")
    assert logged.log.flush(10)
    [row] = store.queries()
    assert row.request_id == answer.request_id
    assert (row.question, row.decision, row.source) == ("充值不到账怎么办", "answer", "python")
    assert [h.entry_id for h in row.hits] == [h.id for h in answer.candidates]
    assert row.top_score == pytest.approx(answer.candidates[0].score)
    assert row.margin == pytest.approx(answer.candidates[0].score - answer.candidates[1].score)
    assert 0 < row.latency_ms < 10_000 and row.revision is None
    assert before <= row.created_at <= datetime.now(timezone.utc)


def test_a_handoff_is_logged_as_a_handoff(logged: LoggedRetriever, store: Store) -> None:
    answer = logged.answer("今天天气怎么样", threshold=0.99)
    assert logged.log.flush(10)
    assert answer.decision == "handoff"
    assert store.query(answer.request_id).decision == "handoff"


def test_ask_logs_its_k_hits_and_answer_when_the_top_score_reaches_the_threshold(
    logged: LoggedRetriever, store: Store
) -> None:
    hits = logged.ask("充值不到账怎么办", k=4)
    assert logged.log.flush(10)
    row = store.query(hits.request_id)
    assert [h.entry_id for h in row.hits] == [h.id for h in hits] and len(hits) == 4
    assert hits[0].score >= logged.threshold and row.decision == "answer"


def test_ask_logs_a_handoff_when_the_top_score_is_below_the_threshold(
    retriever: FAQRetriever, query_log: QueryLog, store: Store
) -> None:
    retriever.threshold = 0.99
    hits = LoggedRetriever(retriever, query_log).ask("今天天气怎么样")
    assert query_log.flush(10)
    assert hits[0].score < 0.99 and store.query(hits.request_id).decision == "handoff"


def test_personal_details_in_a_question_are_masked_in_the_stored_row(
    logged: LoggedRetriever, store: Store
) -> None:
    answer = logged.answer("我的手机13812345678充值不到账")
    assert logged.log.flush(10)
    question = store.query(answer.request_id).question
    assert "13812345678" not in question and question == "我的手机[手机号]充值不到账"


def test_the_logged_question_is_cleaned_and_cut_as_the_retriever_searched_it(
    logged: LoggedRetriever, store: Store
) -> None:
    answer = logged.answer("  充值\u200b不到账   怎么办 " + "啊" * 3000)
    assert logged.log.flush(10)
    question = store.query(answer.request_id).question
    assert question.startswith("充值不到账 怎么办 啊") and len(question) == 2000


def test_an_unusable_question_is_logged_as_refused_and_still_raises(
    logged: LoggedRetriever, store: Store
) -> None:
    with pytest.raises(QueryError, match="empty"):
        logged.answer("   \u200b ")
    assert logged.log.flush(10)
    [row] = store.queries()
    assert (row.decision, row.question, row.hits) == ("refuse", "", ())


def test_a_bad_k_is_the_callers_error_and_is_not_logged(
    logged: LoggedRetriever, store: Store
) -> None:
    with pytest.raises(QueryError, match="k must be"):
        logged.ask("充值不到账怎么办", k=0)
    assert logged.log.flush(10)
    assert store.queries() == ()


def test_the_revision_callable_is_logged_with_each_question(
    retriever: FAQRetriever, query_log: QueryLog, store: Store
) -> None:
    served = iter([7, 8])
    wrapper = LoggedRetriever(retriever, query_log, source="http", revision=lambda: next(served))
    first, second = wrapper.ask("怎么退款"), wrapper.answer("怎么退款")
    assert query_log.flush(10)
    assert [store.query(r).revision for r in (first.request_id, second.request_id)] == [7, 8]
    assert store.query(first.request_id).source == "http"


def test_a_failing_revision_callable_logs_no_revision_and_the_question_is_answered(
    retriever: FAQRetriever, query_log: QueryLog, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> int:
        raise RuntimeError("no head")

    answer = LoggedRetriever(retriever, query_log, revision=broken).answer("怎么退款")
    assert query_log.flush(10)
    assert answer.decision == "answer" and store.query(answer.request_id).revision is None
    assert "revision callable failed (no head)" in caplog.text


def test_a_source_that_breaks_the_stores_rule_is_refused_up_front(
    retriever: FAQRetriever, sqlite_store: Store
) -> None:
    with pytest.raises(StoreError, match="source 'Web App' is not valid"):
        LoggedRetriever(retriever, QueryLog(sqlite_store), source="Web App")


# --- what the caller gets ----------------------------------------------------------------


def test_a_logged_answer_is_the_retrievers_answer_with_a_request_id(
    retriever: FAQRetriever, logged: LoggedRetriever
) -> None:
    plain, answer = retriever.answer("充值不到账怎么办"), logged.answer("充值不到账怎么办")
    assert isinstance(answer, Answer) and isinstance(answer, LoggedAnswer)
    assert all(getattr(answer, f.name) == getattr(plain, f.name) for f in fields(plain))
    assert answer.to_dict() == {"request_id": answer.request_id, **plain.to_dict()}
    assert len(answer.request_id) == 32 and int(answer.request_id, 16) >= 0


def test_a_logged_retriever_wrapped_again_logs_twice_and_returns_the_outer_id(
    retriever: FAQRetriever, query_log: QueryLog, store: Store
) -> None:
    inner = LoggedRetriever(retriever, query_log, source="inner")
    answer = LoggedRetriever(inner, query_log, source="outer").answer("怎么退款")
    assert query_log.flush(10)
    assert {q.source for q in store.queries()} == {"inner", "outer"}
    assert store.query(answer.request_id).source == "outer"


def test_logged_hits_are_the_list_ask_returns_with_a_request_id(
    retriever: FAQRetriever, logged: LoggedRetriever
) -> None:
    hits = logged.ask("怎么退款", k=3)
    assert isinstance(hits, LoggedHits) and hits == retriever.ask("怎么退款", k=3)
    assert hits.request_id != logged.ask("怎么退款", k=3).request_id


def test_request_ids_are_unique_across_threads(
    retriever: FAQRetriever, sqlite_store: Store
) -> None:
    wrapper = LoggedRetriever(retriever, QueryLog(sqlite_store, enabled=False))
    ids = _in_threads(
        8, lambda _: [wrapper.ask(f"问题{i % 7}", k=1).request_id for i in range(300)]
    )
    assert len({i for chunk in ids for i in chunk}) == 8 * 300


def test_logged_hits_keep_the_leading_run_in_score_order_and_the_first_hit_always() -> None:
    def hit(entry_id: str, score: float) -> Hit:
        return Hit(entry_id, "q", "a", score, "c")

    fused = [hit("a", 0.8), hit("b", 0.8), hit("c", 0.9), hit("d", 0.1)]  # a fused order
    assert logged_hits(fused) == (QueryHit("a", 0.8), QueryHit("b", 0.8))
    assert len(logged_hits([hit(f"e{n}", 1 - n / 500) for n in range(300)])) == 100


# --- feedback ----------------------------------------------------------------------------


def test_feedback_reaches_the_store_masked_and_labels_the_query(
    logged: LoggedRetriever, store: Store
) -> None:
    answer = logged.answer("怎么退款")
    given = logged.feedback(answer.request_id, False, "refund", "打我电话13812345678")
    assert (given.helpful, given.entry_id, given.comment) == (False, "refund", "打我电话[手机号]")
    assert store.feedback() == (given,)
    assert [(q.query, q.gold) for q in store.labelled_queries()] == [("怎么退款", ("refund",))]


def test_the_same_feedback_twice_is_one_row(logged: LoggedRetriever, store: Store) -> None:
    answer = logged.answer("怎么退款")
    first = logged.feedback(answer.request_id, True)
    again = logged.feedback(answer.request_id, True)
    assert again == first and len(store.feedback()) == 1


def test_feedback_on_an_unknown_request_id_is_an_error_naming_it(
    logged: LoggedRetriever,
) -> None:
    with pytest.raises(UnknownRequestError, match="'never-asked'"):
        logged.feedback("never-asked", True)


def test_feedback_on_a_question_still_queued_writes_the_question_first(
    retriever: FAQRetriever, store: Store
) -> None:
    with QueryLog(store, batch_size=1000, flush_interval_s=3600) as log:
        answer = LoggedRetriever(retriever, log).answer("怎么退款")
        assert log.pending == 1
        assert log.feedback(answer.request_id, True).helpful
        assert log.pending == 0 and store.query(answer.request_id).decision == "answer"


def test_feedback_without_logging_says_the_log_is_off(
    retriever: FAQRetriever, sqlite_store: Store
) -> None:
    wrapper = LoggedRetriever(retriever, QueryLog(sqlite_store, enabled=False))
    with pytest.raises(StoreError, match="the query log is off"):
        wrapper.feedback(wrapper.answer("怎么退款").request_id, True)


# --- the queue ---------------------------------------------------------------------------


def test_a_disabled_log_writes_nothing_and_starts_no_thread(
    retriever: FAQRetriever, sqlite_store: Store
) -> None:
    before = threading.active_count()
    log = QueryLog(sqlite_store, enabled=False)
    answer = LoggedRetriever(retriever, log).answer("怎么退款")
    assert answer.decision == "answer" and not log.record(record("r1"))
    assert log.close() and threading.active_count() == before
    assert sqlite_store.queries() == () and (log.written, log.dropped) == (0, 0)


def test_a_full_queue_drops_and_counts_records_and_questions_stay_fast(
    retriever: FAQRetriever, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "faq.db"
    store = open_store(str(path), create=True)
    log = QueryLog(store, batch_size=1, flush_interval_s=0, max_queue=5)
    wrapper = LoggedRetriever(retriever, log)
    blocker = _hold_write_lock(path)  # the writer waits for it (SQLite's busy timeout: 60 s)
    slowest = 0.0
    for n in range(21):
        started = time.perf_counter()
        wrapper.ask(f"问题{n}")
        slowest = max(slowest, time.perf_counter() - started)
    # 5 queued, and one more if the writer had taken one before the lock stopped it
    assert log.dropped in (15, 16) and log.dropped + log.pending == 21 and slowest < 0.5
    assert caplog.text.count("a record was dropped") == 1  # at most one warning a minute
    blocker.rollback()
    kept = log.pending
    assert log.close(30) and log.written == kept and len(store.queries()) == kept
    store.close()


def test_close_writes_everything_queued(retriever: FAQRetriever, store: Store) -> None:
    log = QueryLog(store, batch_size=1000, flush_interval_s=3600)
    wrapper = LoggedRetriever(retriever, log)
    asked = {wrapper.ask(f"问题{n}", k=2).request_id for n in range(50)}
    assert log.pending == 50 and store.queries() == ()
    assert log.close()
    assert {q.request_id for q in store.queries()} == asked and log.written == 50


def test_a_record_after_close_is_dropped_and_the_question_answered(
    logged: LoggedRetriever, store: Store
) -> None:
    logged.log.close()
    assert logged.answer("怎么退款").decision == "answer"
    assert logged.log.dropped == 1 and store.queries() == ()


def test_a_bad_record_is_left_out_and_the_rest_of_its_batch_written(store: Store) -> None:
    with QueryLog(store, batch_size=4, flush_interval_s=3600) as log:
        for request_id in ("a", "b", "c"):
            log.record(record(request_id))
        log.record(record("bad", decision="perhaps"))
        assert log.flush(10)
        assert (log.written, log.rejected, log.failed) == (3, 1, 0)
    assert [q.request_id for q in store.queries()] == ["a", "b", "c"]


def test_a_request_id_recorded_twice_is_written_once(store: Store) -> None:
    with QueryLog(store, flush_interval_s=0.01) as log:
        log.record(record("same"))
        assert log.flush(10)
        log.record(record("same", decision="handoff"))
        log.record(record("other"))
        assert log.flush(10)
        assert (log.written, log.rejected) == (2, 1)
    assert store.query("same").decision == "answer"


def test_a_batch_committed_whose_answer_was_lost_is_counted_once(store: Store) -> None:
    class LostAnswer:
        """The store, but the first commit's answer never arrives (a dropped connection)."""

        def __init__(self) -> None:
            self.calls = 0

        def log_queries(self, records: list[QueryRecord]) -> None:
            self.calls += 1
            store.log_queries(records)
            if self.calls == 1:
                raise StoreError("the store failed: server closed the connection")

        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

    with QueryLog(LostAnswer(), batch_size=10, **FAST) as log:  # type: ignore[arg-type]
        for n in range(10):
            log.record(record(f"r{n}"))
        assert log.flush(10)
        assert (log.written, log.failed, log.rejected) == (10, 0, 0)
    assert len(store.queries()) == 10


def test_settings_out_of_range_are_refused_naming_them(sqlite_store: Store) -> None:
    for setting, value in (
        ("batch_size", 0),
        ("max_queue", True),
        ("flush_interval_s", -1.0),
        ("retry_delay_s", float("nan")),
        ("retries", -1),
    ):
        with pytest.raises(WalletFAQError, match=setting):
            QueryLog(sqlite_store, **{setting: value})  # type: ignore[arg-type]


# --- a failing store ---------------------------------------------------------------------


def test_a_locked_sqlite_store_fails_batches_answers_questions_and_recovers(
    retriever: FAQRetriever, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("walletfaq.store.engine.SQLITE_BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "faq.db"
    store = open_store(str(path), create=True)
    log = QueryLog(store, retries=1, **FAST)
    wrapper = LoggedRetriever(retriever, log)
    blocker = _hold_write_lock(path)  # another writer holds the lock past the busy timeout
    answers = [wrapper.answer(f"问题{n}") for n in range(5)]
    assert log.flush(30) and log.failed == 5 and log.written == 0
    assert all(a.decision in ("answer", "handoff") for a in answers)
    blocker.rollback()
    later = wrapper.answer("怎么退款")
    assert log.close(30) and log.written == 1
    assert [q.request_id for q in store.queries()] == [later.request_id]
    store.close()


def test_a_postgresql_store_down_fails_batches_answers_questions_and_recovers(
    retriever: FAQRetriever, postgres_cluster: PostgresCluster
) -> None:
    url = postgres_cluster.new_database()
    store = open_store(url, create=True)
    log = QueryLog(store, retries=1, **FAST)
    wrapper = LoggedRetriever(retriever, log)
    wrapper.answer("怎么退款")
    assert log.flush(30) and log.written == 1
    _allow_connections(postgres_cluster, url, False)  # the database goes away
    try:
        down = [wrapper.answer(f"问题{n}") for n in range(5)]
        assert log.flush(30) and log.failed == 5 and len(down) == 5
    finally:
        _allow_connections(postgres_cluster, url, True)
    later = wrapper.ask("怎么退款")
    assert log.close(30) and log.written == 2
    assert later.request_id in {q.request_id for q in store.queries()}
    store.close()


# --- crashes and threads -----------------------------------------------------------------

STREAM_SCRIPT = """
import sys, time
from walletfaq.retrieval.traffic import QueryLog
from walletfaq.store import QueryHit, QueryRecord, open_store
log = QueryLog(open_store(sys.argv[1]), batch_size=10, flush_interval_s=3600)
n = 0
while True:
    log.record(QueryRecord(f"k{n:06d}", f"问题{n}，手机13812345678", "answer",
                           (QueryHit("q1", 0.9),), 1.0))
    n += 1
    time.sleep(0.0005)
"""


def test_a_process_killed_while_logging_leaves_whole_batches_in_order(
    store_location: str,
) -> None:
    open_store(store_location, create=True).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", STREAM_SCRIPT, store_location], env=env, stderr=subprocess.PIPE
    )
    with open_store(store_location) as watcher:
        seen = _eventually(lambda: len(watcher.queries()) >= 60 or child.poll() is not None, 60)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert seen and child.returncode == -signal.SIGKILL, child.stderr and child.stderr.read()
    with open_store(store_location) as after:
        logged = [q.request_id for q in after.queries()]
        assert sorted(logged) == [f"k{n:06d}" for n in range(len(logged))]  # a prefix
        assert len(logged) >= 60 and len(logged) % 10 == 0  # whole batches only
        assert all(q.question.endswith("手机[手机号]") for q in after.queries())
        if after.engine.dialect.name == "sqlite":
            with after.engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        after.log_query(record("after-crash"))


def test_eight_threads_asking_200_times_log_exactly_1600_rows(
    retriever: FAQRetriever, store: Store
) -> None:
    log = QueryLog(store)
    wrapper = LoggedRetriever(retriever, log)
    ids = _in_threads(
        8, lambda worker: [wrapper.ask(f"问题{worker}-{i}", k=3).request_id for i in range(200)]
    )
    assert log.close(60)
    assert (log.written, log.dropped, log.failed, log.rejected) == (1600, 0, 0, 0)
    assert {q.request_id for q in store.queries()} == {i for chunk in ids for i in chunk}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    question=st.text(max_size=40)
    | st.from_regex(r"[0-9０-９ +@.a-z一-龥]{0,40}", fullmatch=True)
    | st.sampled_from(["\ud800问题", "", "\x00\u200b", "问题" * 1500])
)
def test_whatever_a_user_types_the_store_takes_the_record(
    retriever: FAQRetriever, sqlite_store: Store, question: str
) -> None:
    with QueryLog(sqlite_store, flush_interval_s=0) as log:
        wrapper = LoggedRetriever(retriever, log)
        try:
            wrapper.answer(question)
        except QueryError:
            pass
        assert log.flush(10)
        assert (log.written, log.rejected, log.failed) == (1, 0, 0)


# --- retention ---------------------------------------------------------------------------


def test_purging_deletes_the_queries_older_than_the_retention_period(store: Store) -> None:
    now = datetime(2026, 5, 10, tzinfo=timezone.utc)
    store.log_query(record("old", created_at=now - timedelta(days=8)))
    store.log_query(record("new", created_at=now - timedelta(days=6)))
    assert purge_older_than(store, 7, now=now) == 1
    assert [q.request_id for q in store.queries()] == ["new"]


def test_a_retention_period_that_is_not_positive_is_refused(sqlite_store: Store) -> None:
    for days in (0, -1, float("inf"), True):
        with pytest.raises(StoreError, match="days must be"):
            purge_older_than(sqlite_store, days)  # type: ignore[arg-type]


# --- helpers -----------------------------------------------------------------------------


def _in_threads(count: int, work: Callable[[int], list[str]]) -> list[list[str]]:
    """``work(n)`` for n in ``range(count)``, each in a thread of its own, all at once."""
    results: list[list[str]] = [[] for _ in range(count)]

    def run(worker: int) -> None:
        results[worker] = work(worker)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another writer holding the SQLite database's write lock (release: ``rollback()``)."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    return connection


def _allow_connections(cluster: PostgresCluster, url: str, allow: bool) -> None:
    """Open or close ``url``'s database to connections (closing also ends the open ones)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
