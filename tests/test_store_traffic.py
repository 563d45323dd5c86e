"""The query log, feedback and retention in the store of record, on SQLite and PostgreSQL:
what is written (masked), read back, refused, replaced, purged; writers at once; a logging
process killed mid-stream; a store of the first schema upgraded on open."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select, text

from tests.store_support import small_corpus, store_with_small_corpus  # noqa: F401 (fixture)
from walletfaq import StoreError
from walletfaq.data.queries import LabelledQuery
from walletfaq.store import (
    QueryHit,
    QueryRecord,
    Store,
    UnknownProposalError,
    UnknownRequestError,
    open_store,
    schema,
)
from walletfaq.store.engine import make_engine, store_url, write_transaction
from walletfaq.store.migrate import VERSION_TABLE, alembic_config
from walletfaq.store.queries import version_row

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
HITS = (QueryHit("q1", 0.91), QueryHit("q2", 0.72), QueryHit("q3", 0.5))


def record(request_id: str = "r1", **fields: object) -> QueryRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "question": "问题1怎么办",
        "decision": "answer",
        "hits": HITS,
        "latency_ms": 12.5,
        "revision": 1,
        "source": "http",
        "created_at": T0,
        **fields,
    }
    return QueryRecord(**values)  # type: ignore[arg-type]


# --- the query log -----------------------------------------------------------------------


def test_a_logged_query_reads_back_with_every_field(store: Store) -> None:
    store.log_query(record())
    logged = store.query("r1")
    assert (logged.request_id, logged.question, logged.decision) == ("r1", "问题1怎么办", "answer")
    assert logged.hits == HITS
    assert logged.top_score == 0.91
    assert logged.margin == pytest.approx(0.91 - 0.72)
    assert (logged.revision, logged.latency_ms, logged.source) == (1, 12.5, "http")
    assert logged.created_at == T0 and logged.created_at.tzinfo is not None


def test_a_query_without_hits_has_no_top_score_and_no_margin(store: Store) -> None:
    store.log_query(record(hits=(), decision="handoff", revision=None))
    logged = store.query("r1")
    assert (logged.top_score, logged.margin, logged.revision) == (None, None, None)


def test_an_empty_question_is_logged_only_as_a_refused_one(store: Store) -> None:
    store.log_query(record(question=" \u200b ", decision="refuse", hits=()))
    assert store.query("r1").question == ""
    with pytest.raises(StoreError, match="the question is empty"):
        store.log_query(record("r2", question="", decision="handoff"))


def test_a_query_logged_without_a_time_gets_the_current_utc_time(store: Store) -> None:
    store.log_query(record(created_at=None))
    assert abs(store.query("r1").created_at - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_the_store_masks_personal_details_in_the_question_itself(store: Store) -> None:
    question = "我的手机１３８ １２３４ ５６７８绑卡6222 0212 3456 7890失败"
    store.log_query(record(question=question))
    assert store.query("r1").question == "我的手机[手机号]绑卡[银行卡号]失败"
    with store.engine.connect() as conn:
        stored = conn.execute(select(schema.queries.c.question)).scalar_one()
    assert "5678" not in stored and "６７８" not in stored


def test_queries_are_listed_oldest_first_within_a_time_window(store: Store) -> None:
    for n in range(5):
        store.log_query(record(f"r{n}", created_at=T0 + timedelta(hours=n)))
    window = store.queries(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=4))
    assert [q.request_id for q in window] == ["r1", "r2", "r3"]


def test_queries_since_a_time_in_another_zone_compare_in_utc(store: Store) -> None:
    store.log_query(record("early", created_at=T0))
    store.log_query(record("late", created_at=T0 + timedelta(hours=2)))
    beijing = timezone(timedelta(hours=8))
    since = (T0 + timedelta(hours=1)).astimezone(beijing)
    assert [q.request_id for q in store.queries(since=since)] == ["late"]


def test_queries_filter_by_decision_and_stop_at_the_limit(store: Store) -> None:
    for n, decision in enumerate(["answer", "handoff", "answer", "clarify", "answer"]):
        store.log_query(record(f"r{n}", decision=decision, created_at=T0 + timedelta(minutes=n)))
    assert [q.request_id for q in store.queries(decision="answer")] == ["r0", "r2", "r4"]
    assert [q.request_id for q in store.queries(decision="answer", limit=2)] == ["r0", "r2"]


def test_queries_logged_together_are_written_in_one_transaction(store: Store) -> None:
    store.log_queries([record("r1"), record("r2", question="第二个问题")])
    assert [q.request_id for q in store.queries()] == ["r1", "r2"]


def test_a_batch_with_one_bad_record_logs_none_of_them(store: Store) -> None:
    with pytest.raises(StoreError, match="query 1: decision must be one of"):
        store.log_queries([record("r1"), record("r2", decision="maybe")])
    with pytest.raises(StoreError, match="'r3' is twice in one log_queries call"):
        store.log_queries([record("r3"), record("r3")])
    store.log_query(record("r4"))
    with pytest.raises(StoreError, match="'r4' is already in the query log"):
        store.log_queries([record("r5"), record("r4")])
    assert [q.request_id for q in store.queries()] == ["r4"]


def test_an_unknown_request_id_is_an_error_naming_it(store: Store) -> None:
    with pytest.raises(UnknownRequestError, match="no logged query with request id 'nope'"):
        store.query("nope")


def test_a_request_id_logged_twice_is_refused_and_the_first_is_kept(store: Store) -> None:
    store.log_query(record(question="第一次"))
    with pytest.raises(StoreError, match="'r1' is already in the query log"):
        store.log_query(record(question="第二次"))
    assert store.query("r1").question == "第一次"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"request_id": ""}, "request_id '' is not valid"),
        ({"request_id": "x" * 65}, "request_id 'x+' is not valid: it must be 1 to 64 characters"),
        ({"request_id": "a/b"}, "request_id 'a/b' is not valid"),
        ({"request_id": 7}, "request_id must be a string"),
        ({"decision": "maybe"}, "decision must be one of answer, clarify, handoff, refuse"),
        ({"hits": (QueryHit("q1", math.nan),)}, "hit 0's score must be a finite number"),
        ({"hits": (QueryHit("q1", True),)}, "hit 0's score must be a number"),
        ({"hits": (QueryHit("Q 1", 0.5),)}, "hit 0's entry_id is not a valid entry id"),
        ({"hits": (QueryHit("q1", 0.2), QueryHit("q2", 0.9))}, "log hits best first"),
        ({"hits": tuple(QueryHit("q1", 0.1) for _ in range(101))}, "at most 100"),
        ({"latency_ms": math.inf}, "latency_ms must be a finite number"),
        ({"latency_ms": -1.0}, "latency_ms must be at least 0"),
        ({"revision": -1}, "revision must be a revision number"),
        ({"source": "HTTP!"}, "source 'HTTP!' is not valid"),
        ({"question": " \u200b "}, "the question is empty"),
        ({"question": "问" * 2001}, "the question is 2,001 characters; keep it to 2,000"),
        ({"created_at": datetime(2026, 5, 1)}, "created_at 2026-05-01T00:00:00 has no time zone"),
    ],
)
def test_a_query_record_breaking_a_rule_is_refused_naming_the_field(
    store: Store, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        store.log_query(record(**fields))
    assert store.queries() == ()


def test_queries_refuse_an_unknown_decision_and_a_naive_time(store: Store) -> None:
    with pytest.raises(StoreError, match="decision must be one of"):
        store.queries(decision="maybe")
    with pytest.raises(StoreError, match="since .* has no time zone"):
        store.queries(since=datetime(2026, 5, 1))


# --- feedback ----------------------------------------------------------------------------


def test_feedback_on_a_logged_query_is_recorded(store: Store) -> None:
    store.log_query(record())
    given_back = store.add_feedback("r1", helpful=False, entry_id="q2", comment="不是这个")
    assert (given_back.helpful, given_back.entry_id, given_back.comment) == (
        False,
        "q2",
        "不是这个",
    )
    assert given_back.created_at == given_back.updated_at
    assert store.feedback() == (given_back,)


def test_feedback_on_an_unknown_request_is_refused_naming_it(store: Store) -> None:
    with pytest.raises(UnknownRequestError, match="'ghost'"):
        store.add_feedback("ghost", helpful=True)
    assert store.feedback() == ()


def test_the_same_feedback_again_changes_nothing(store: Store) -> None:
    store.log_query(record())
    first = store.add_feedback("r1", helpful=True, comment="有用，谢谢")
    again = store.add_feedback("r1", helpful=True, comment="有用，谢谢")
    assert again == first
    assert store.feedback() == (first,)


def test_different_feedback_replaces_it_and_moves_updated_at(store: Store) -> None:
    store.log_query(record())
    first = store.add_feedback("r1", helpful=True)
    second = store.add_feedback("r1", helpful=False, entry_id="q3")
    assert (second.helpful, second.entry_id) == (False, "q3")
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert store.feedback() == (second,)


def test_a_feedback_comment_is_masked_and_length_limited(store: Store) -> None:
    store.log_query(record())
    given_back = store.add_feedback("r1", helpful=False, comment="打我电话13912345678或发zs@qq.com")
    assert given_back.comment == "打我电话[手机号]或发[邮箱]"
    with pytest.raises(StoreError, match="comment is 2,001 characters; keep it to 2,000"):
        store.add_feedback("r1", helpful=False, comment="长" * 2001)
    assert store.feedback()[0].comment == "打我电话[手机号]或发[邮箱]"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"helpful": 1}, "helpful must be True or False"),
        ({"helpful": True, "entry_id": "Q1"}, "entry_id is not a valid entry id"),
        ({"helpful": True, "comment": 5}, "comment must be text"),
    ],
)
def test_feedback_breaking_a_rule_is_refused(
    store: Store, kwargs: dict[str, object], message: str
) -> None:
    store.log_query(record())
    with pytest.raises(StoreError, match=message):
        store.add_feedback("r1", **kwargs)  # type: ignore[arg-type]
    assert store.feedback() == ()


def test_threads_sending_feedback_on_one_request_leave_one_row(store: Store) -> None:
    store.log_query(record())
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def send(helpful: bool) -> None:
        barrier.wait()
        try:
            store.add_feedback("r1", helpful=helpful, comment="同时")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n % 2 == 0,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    (row,) = store.feedback()
    assert row.request_id == "r1" and row.comment == "同时"


def test_feedback_since_lists_what_was_given_or_changed_since(store: Store) -> None:
    store.log_query(record("r1"))
    store.log_query(record("r2"))
    store.add_feedback("r1", helpful=True)
    cut = datetime.now(timezone.utc)
    store.add_feedback("r2", helpful=False)
    assert [f.request_id for f in store.feedback(since=cut)] == ["r2"]


def test_labelled_queries_come_from_named_entries_and_helpful_answers(store: Store) -> None:
    cases = {
        "named": ("answer", False, "q3"),  # the user names the right entry
        "confirmed": ("answer", True, None),  # helpful answer: its top hit
        "helpful-handoff": ("handoff", True, None),  # no single entry: left out
        "unhelpful": ("answer", False, None),  # nothing to learn which entry is right
    }
    for n, (request_id, (decision, helpful, entry_id)) in enumerate(cases.items()):
        store.log_query(
            record(request_id, decision=decision, question=f"问法{n}", created_at=T0 + timedelta(n))
        )
        store.add_feedback(request_id, helpful=helpful, entry_id=entry_id)
    assert store.labelled_queries() == (
        LabelledQuery("问法0", ("q3",), "feedback"),
        LabelledQuery("问法1", ("q1",), "helpful"),
    )
    assert store.labelled_queries(since=T0 + timedelta(hours=1)) == (
        LabelledQuery("问法1", ("q1",), "helpful"),
    )


# --- retention ---------------------------------------------------------------------------


def test_purge_deletes_older_queries_with_their_feedback_and_keeps_the_rest(store: Store) -> None:
    for n in range(4):
        store.log_query(record(f"r{n}", created_at=T0 + timedelta(days=n)))
        store.add_feedback(f"r{n}", helpful=True)
    assert store.purge_traffic(T0 + timedelta(days=2)) == 2
    assert [q.request_id for q in store.queries()] == ["r2", "r3"]
    assert [f.request_id for f in store.feedback()] == ["r2", "r3"]
    with pytest.raises(UnknownRequestError):
        store.add_feedback("r0", helpful=False)


def test_purge_needs_a_time_with_a_zone(store: Store) -> None:
    with pytest.raises(StoreError, match="older_than .* has no time zone"):
        store.purge_traffic(datetime(2026, 1, 1))


# --- the request id grammar at every entry point (hypothesis) ----------------------------

REQUEST_ID_CHARS = "abcXYZ019_-"
GRAMMAR = re.compile(r"[A-Za-z0-9_-]{1,64}")
OUTSIDE_THE_GRAMMAR = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=70),
    st.text(st.sampled_from(REQUEST_ID_CHARS), min_size=65, max_size=90),
    st.tuples(
        st.text(st.sampled_from(REQUEST_ID_CHARS), max_size=30),
        st.sampled_from([" ", "/", ".", "é", "号", "\x00", "\u200b", "１"]),
        st.text(st.sampled_from(REQUEST_ID_CHARS), max_size=30),
    ).map("".join),
).filter(lambda s: GRAMMAR.fullmatch(s) is None)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    valid=st.text(st.sampled_from(REQUEST_ID_CHARS), min_size=1, max_size=64),
    other=OUTSIDE_THE_GRAMMAR,
)
def test_every_entry_point_applies_the_request_id_grammar(valid: str, other: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(str(Path(folder) / "faq.db"), create=True)
        store.log_query(record(valid))
        assert store.query(valid).request_id == valid
        assert store.add_feedback(valid, helpful=True).request_id == valid
        with pytest.raises(UnknownProposalError):
            store.proposal(valid)
        for entry_point in (
            lambda: store.log_query(record(other)),
            lambda: store.log_queries([record(valid + "x"), record(other)]),
            lambda: store.query(other),
            lambda: store.add_feedback(other, helpful=True),
            lambda: store.proposal(other),
            lambda: store.decide_proposal(other, False, author="carol"),
        ):
            with pytest.raises(StoreError, match="must be .*1 to 64 characters") as caught:
                entry_point()
            assert not isinstance(caught.value, (UnknownRequestError, UnknownProposalError))
        assert [q.request_id for q in store.queries()] == [valid]
        store.close()


# --- crashes and upgrades ----------------------------------------------------------------

LOGGER_SCRIPT = """
import sys
from walletfaq.store import QueryHit, QueryRecord, open_store
store = open_store(sys.argv[1])
n = 0
while True:
    store.log_query(QueryRecord(f"k{n}", f"问题{n}，手机13812345678", "answer",
                                (QueryHit("q1", 0.9),), 1.0))
    print(f"k{n}", flush=True)  # acknowledged: log_query returned
    n += 1
"""


def test_a_logging_process_killed_mid_stream_loses_no_acknowledged_row(tmp_path: Path) -> None:
    location = str(tmp_path / "faq.db")
    open_store(location, create=True).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", LOGGER_SCRIPT, location],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    acknowledged = [child.stdout.readline().strip() for _ in range(150)]
    assert acknowledged[-1] == "k149", child.stderr.read() if child.stderr else ""
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    acknowledged += [line.strip() for line in child.stdout if line.strip()]
    with open_store(location) as after:
        logged = {q.request_id for q in after.queries()}
        assert set(acknowledged) <= logged
        assert len(logged) - len(acknowledged) <= 1  # at most the row being written
        assert all(q.question.endswith("手机[手机号]") for q in after.queries())
        with after.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        after.log_query(record("after-crash"))  # the killed writer's lock is gone


def _store_at_first_schema(location: str) -> None:
    """A store as walletfaq wrote it at schema 0001: revision 1 with small_corpus."""
    engine = make_engine(store_url(location))
    try:
        with write_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), "0001")
            connection.execute(
                text(
                    "INSERT INTO walletfaq_revisions (number, created_at, author, reason, kind, "
                    "restores) VALUES (1, :at, 'alice', 'import', 'import', NULL)"
                ),
                {"at": T0},
            )
            rows = [version_row(e.id, e, 1, n) for n, e in enumerate(small_corpus())]
            connection.execute(schema.entry_versions.insert(), rows)
            connection.execute(text("UPDATE walletfaq_head SET revision = 1, next_position = 5"))
    finally:
        engine.dispose()


def test_a_store_of_the_first_schema_is_upgraded_on_open_and_keeps_its_content(
    store_location: str,
) -> None:
    _store_at_first_schema(store_location)
    with open_store(store_location) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert context.get_current_revision() == "0002"
        assert compare_metadata(context, schema.metadata) == []
        tables = set(inspect(conn).get_table_names())
        assert {"walletfaq_queries", "walletfaq_feedback", "walletfaq_staged"} <= tables
        assert store.entries().entries == small_corpus().entries
        (first,) = store.log()
        assert (first.number, first.author, first.forced, first.changes) == (1, "alice", False, 5)
        store.log_query(record())
        assert store.query("r1").question == "问题1怎么办"
