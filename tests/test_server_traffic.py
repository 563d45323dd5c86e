"""The traffic loop over HTTP, in process: every question the service answers is logged under
the request id it returns (body and ``X-Request-Id``), with personal details masked before the
store sees them; ``POST /v1/feedback`` records a verdict on it (right after the answer too,
idempotent); the log never slows or fails a request (counted in ``/metrics`` and ``/readyz``);
a retention period deletes old rows; admins accept or reject gap proposals
(``/v1/proposals``) and stage edits (``?stage=true``) that nothing serves until a publish.

Tests marked with the ``store`` fixture run on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import functools
import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sqlalchemy import select  # noqa: E402

import walletfaq.retrieval.traffic as traffic_package  # noqa: E402
from tests import replica_support  # noqa: E402
from tests.conftest import HashEncoder  # noqa: E402
from tests.replica_support import faq, new_store, wait_for  # noqa: E402
from tests.store_support import PostgresCluster, store_with_small_corpus  # noqa: E402, F401
from walletfaq import FAQRetriever  # noqa: E402
from walletfaq.errors import WalletFAQError  # noqa: E402
from walletfaq.retrieval.traffic import QueryLog  # noqa: E402
from walletfaq.service import ServerSettings, app_from_environment, create_app  # noqa: E402
from walletfaq.service.run import WORKER_CONFIG_ENV  # noqa: E402
from walletfaq.service.traffic import ServiceLog, issued_at, new_request_id  # noqa: E402
from walletfaq.store import (  # noqa: E402
    NewProposal,
    QueryHit,
    QueryRecord,
    Store,
    UnknownRequestError,
    open_store,
)
from walletfaq.store import schema as store_schema  # noqa: E402

outage_cluster = replica_support.outage_cluster  # a cluster the outage test stops and restarts

TOKENS = (("alice", "alice-token-1"), ("bob", "bob-token-2"))
ALICE = {"Authorization": "Bearer alice-token-1"}
BOB = {"Authorization": "Bearer bob-token-2"}
PHONE = "13812345678"
RESULTS = ("written", "dropped", "failed", "rejected")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A new SQLite store holding q1..q5 as revision 1."""
    created = new_store(str(tmp_path / "faq.db"))
    yield created
    created.close()


class Services:
    """Apps started in process (their lifespan runs), serving a store (a replica of it, with
    the tiny encoder) or a retriever; :meth:`stop` shuts one down, the fixture the rest."""

    def __init__(self) -> None:
        self.started: list[tuple[TestClient, FAQRetriever]] = []

    def __call__(self, source: Store | FAQRetriever, **options: Any) -> TestClient:
        retriever = (
            source
            if isinstance(source, FAQRetriever)
            else FAQRetriever.from_store(source, model=HashEncoder())
        )
        values = {"workers": 2, "admin_tokens": TOKENS, **options}
        client = TestClient(create_app(retriever, ServerSettings(**values)))  # type: ignore[arg-type]
        client.__enter__()
        self.started.append((client, retriever))
        return client

    def stop(self, client: TestClient) -> None:
        """Shut ``client``'s app down (its lifespan ends: the log is written and closed)."""
        for started in self.started:
            if started[0] is client:
                self.started.remove(started)
                client.__exit__(None, None, None)
                started[1].close()
                return


Make = Services


@pytest.fixture
def serve() -> Iterator[Services]:
    services = Services()
    yield services
    for client, _retriever in reversed(services.started):
        services.stop(client)


@pytest.fixture
def slow_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps made from now on write their log only when asked to (a 30 s flush interval): a
    record is still queued right after its answer."""
    monkeypatch.setattr(
        traffic_package, "QueryLog", functools.partial(QueryLog, flush_interval_s=30.0)
    )


def logged(store: Store, request_id: str) -> Any:
    """The logged query ``request_id``, once the app's log wrote it (bounded wait)."""
    found: list[Any] = []

    def written() -> bool:
        try:
            found.append(store.query(request_id))
        except UnknownRequestError:
            return False
        return True

    wait_for(written, f"query {request_id} logged", limit_s=10)
    return found[0]


def tiny_retriever(tiny_corpus: Any) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder())


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} not in /metrics")


def every_stored_text(store: Store) -> str:
    """Every value of every walletfaq table, as one text."""
    with store.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in store_schema.metadata.sorted_tables
            for row in connection.execute(select(table))
        )


# ----------------------------------------------------------------------------- logging
def test_an_answer_is_logged_with_its_request_id_decision_hits_and_revision(
    serve: Make, store: Store
) -> None:
    client = serve(store)
    response = client.post("/v1/answer", json={"question": "问题3怎么办", "k": 2})
    body = response.json()
    assert response.status_code == 200 and body["request_id"] == response.headers["X-Request-Id"]
    row = logged(store, body["request_id"])
    assert (row.question, row.decision, row.revision, row.source) == (
        "问题3怎么办",
        body["decision"],
        1,
        "http",
    )
    assert [(h.entry_id, h.score) for h in row.hits] == [
        (c["id"], pytest.approx(c["score"])) for c in body["candidates"]
    ]
    assert row.latency_ms > 0


def test_an_ask_is_logged_as_answered_when_its_top_score_reaches_the_threshold(
    serve: Make, sqlite_store: Store
) -> None:
    answered = serve(sqlite_store, threshold=-1.0).post("/v1/ask", json={"question": "问题2"})
    handed_off = serve(sqlite_store, threshold=1.0).post("/v1/ask", json={"question": "问题2"})
    for response, decision in ((answered, "answer"), (handed_off, "handoff")):
        row = logged(sqlite_store, response.json()["request_id"])
        assert row.decision == decision
        assert [h.entry_id for h in row.hits] == [h["id"] for h in response.json()["hits"]]


def test_each_question_of_a_batch_is_logged_under_its_own_request_id(
    serve: Make, sqlite_store: Store
) -> None:
    questions = ["问题1怎么办", "问题4怎么办", "question 5"]
    body = serve(sqlite_store).post("/v1/ask_batch", json={"questions": questions}).json()
    assert len(set(body["request_ids"])) == 3
    rows = [logged(sqlite_store, request_id) for request_id in body["request_ids"]]
    assert [row.question for row in rows] == questions
    assert [row.hits[0].entry_id for row in rows] == [hits[0]["id"] for hits in body["results"]]


def test_request_ids_are_unique_and_carry_their_time_of_issue(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store, query_log=False)
    before = time.time()
    ids = [
        client.post("/v1/ask", json={"question": f"问题{n}"}).json()["request_id"]
        for n in range(40)
    ]
    after = time.time()
    assert len(set(ids)) == 40
    assert all(before - 0.002 <= (issued_at(i) or 0) <= after + 0.002 for i in ids)


def test_personal_details_in_questions_and_comments_never_reach_the_store(
    serve: Make, store: Store
) -> None:
    client = serve(store)
    asked = client.post("/v1/answer", json={"question": f"我的手机{PHONE}充值没到账"}).json()
    comment = f"打 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]} 或发 zhang.san@example.com"
    feedback = {"request_id": asked["request_id"], "helpful": False, "comment": comment}
    recorded = client.post("/v1/feedback", json=feedback).json()
    assert recorded["comment"] == "打 [手机号] 或发 [邮箱]"
    assert logged(store, asked["request_id"]).question == "我的手机[手机号]充值没到账"
    stored = every_stored_text(store)
    assert PHONE not in stored and PHONE[3:7] not in stored and "zhang.san" not in stored


def test_an_unusable_question_is_logged_as_refused_with_an_empty_question(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store)
    assert client.post("/v1/answer", json={"question": "   "}).status_code == 400
    wait_for(lambda: sqlite_store.queries(decision="refuse"), "the refusal logged")
    (row,) = sqlite_store.queries(decision="refuse")
    assert (row.question, row.hits) == ("", ())


def test_with_no_log_nothing_is_written_and_feedback_is_409(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store, query_log=False)
    asked = client.post("/v1/answer", json={"question": "问题1怎么办"})
    assert asked.status_code == 200 and asked.headers["X-Request-Id"]
    response = client.post(
        "/v1/feedback", json={"request_id": asked.json()["request_id"], "helpful": True}
    )
    assert response.status_code == 409 and "logging is off" in response.json()["detail"]
    assert client.get("/readyz").json()["log"]["enabled"] is False
    serve.stop(client)  # anything queued would be written now
    assert sqlite_store.queries() == ()


def test_a_service_without_a_store_logs_only_with_a_log_store(
    serve: Make, tiny_corpus: Any
) -> None:
    client = serve(tiny_retriever(tiny_corpus))
    log = client.get("/readyz").json()["log"]
    assert log["enabled"] is False and "--log-store" in log["reason"]
    response = client.post("/v1/feedback", json={"request_id": "r1", "helpful": True})
    assert response.status_code == 409 and "--log-store" in response.json()["detail"]


def test_a_log_store_is_created_in_an_empty_database_and_logs_without_a_revision(
    serve: Make, store_location: str, tiny_corpus: Any
) -> None:
    client = serve(tiny_retriever(tiny_corpus), log_store=store_location)
    request_id = client.post("/v1/answer", json={"question": "怎么退款"}).json()["request_id"]
    with open_store(store_location) as log_store:
        row = logged(log_store, request_id)
        assert (row.revision, log_store.head()) == (None, 0)  # a log only: no entries


def test_shutdown_writes_the_queued_records(
    serve: Make, sqlite_store: Store, slow_flush: None
) -> None:
    client = serve(sqlite_store)
    ids = [
        client.post("/v1/ask", json={"question": f"问题{n}"}).json()["request_id"] for n in (1, 2)
    ]
    assert client.get("/readyz").json()["log"]["pending"] == 2  # queued: the flush is 30 s away
    serve.stop(client)
    assert {q.request_id for q in sqlite_store.queries()} == set(ids)


def test_each_worker_process_logs_through_a_log_of_its_own(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"workers": 1, "reload_interval_s": 0, "log_store": str(tmp_path / "log.db")}
    config = {"index": str(index_dir), "model": None, "log_level": "warning", "settings": settings}
    monkeypatch.setenv(WORKER_CONFIG_ENV, json.dumps(config))
    first, second = TestClient(app_from_environment()), TestClient(app_from_environment())
    with first, second:
        assert first.app.state.traffic is not second.app.state.traffic  # type: ignore[attr-defined]
        ids = [
            c.post("/v1/ask", json={"question": "怎么退款"}).json()["request_id"]
            for c in (first, second)
        ]
    with open_store(str(tmp_path / "log.db")) as log_store:
        assert {q.request_id for q in log_store.queries()} == set(ids)


# ----------------------------------------------------------------------------- feedback
def test_feedback_right_after_the_answer_is_recorded_though_its_record_was_queued(
    serve: Make, store: Store, slow_flush: None
) -> None:
    client = serve(store)
    request_id = client.post("/v1/answer", json={"question": "问题2怎么办"}).json()["request_id"]
    with pytest.raises(UnknownRequestError):
        store.query(request_id)  # not written yet
    response = client.post(
        "/v1/feedback", json={"request_id": request_id, "helpful": True, "entry_id": "q2"}
    )
    assert response.status_code == 200
    assert (response.json()["request_id"], response.json()["entry_id"]) == (request_id, "q2")
    assert [(f.request_id, f.helpful) for f in store.feedback()] == [(request_id, True)]


def test_feedback_sent_to_another_worker_waits_until_the_answering_one_writes_it(
    serve: Make, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(
            traffic_package, "QueryLog", functools.partial(QueryLog, flush_interval_s=0.5)
        )
        answering = serve(sqlite_store, timeout_s=2.0)
    other = serve(sqlite_store, timeout_s=2.0)
    request_id = answering.post("/v1/answer", json={"question": "问题4"}).json()["request_id"]
    with pytest.raises(UnknownRequestError):
        sqlite_store.query(request_id)
    response = other.post("/v1/feedback", json={"request_id": request_id, "helpful": False})
    assert response.status_code == 200 and response.json()["helpful"] is False


def test_feedback_on_an_id_not_issued_recently_is_404_at_once(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store)
    started = time.monotonic()
    for request_id in (uuid.uuid4().hex, new_request_id(time.time() - 3600), "r1"):
        response = client.post("/v1/feedback", json={"request_id": request_id, "helpful": True})
        assert response.status_code == 404 and "request_id" in response.json()["detail"]
    assert time.monotonic() - started < 2.0


def test_feedback_on_a_fresh_id_never_logged_is_404_after_the_grace(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store, timeout_s=0.5)  # grace: the timeout + 2 s
    started = time.monotonic()
    response = client.post("/v1/feedback", json={"request_id": new_request_id(), "helpful": True})
    assert response.status_code == 404
    assert 2.0 <= time.monotonic() - started < 6.0


def test_the_same_feedback_twice_gives_the_same_answer(serve: Make, store: Store) -> None:
    client = serve(store)
    request_id = client.post("/v1/answer", json={"question": "问题1"}).json()["request_id"]
    body = {"request_id": request_id, "helpful": True, "comment": "有用"}
    first, second = (client.post("/v1/feedback", json=body) for _ in range(2))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len(store.feedback()) == 1


def test_different_feedback_replaces_the_first_keeping_its_creation_time(
    serve: Make, store: Store
) -> None:
    client = serve(store)
    request_id = client.post("/v1/answer", json={"question": "问题1"}).json()["request_id"]
    first = client.post("/v1/feedback", json={"request_id": request_id, "helpful": True}).json()
    second = client.post(
        "/v1/feedback", json={"request_id": request_id, "helpful": False, "entry_id": "q3"}
    ).json()
    assert (second["helpful"], second["entry_id"]) == (False, "q3")
    assert (
        second["created_at"] == first["created_at"] and second["updated_at"] >= first["updated_at"]
    )
    assert [(f.helpful, f.entry_id) for f in store.feedback()] == [(False, "q3")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"request_id": "r", "helpful": true', 422),  # not JSON
        (b'{"request_id": "r", "helpful": true, "entry_id": NaN}', 422),
        (b'{"request_id": "r", "helpful": true, "rating": 5}', 422),  # unknown field
        (b'{"request_id": "r", "helpful": "yes"}', 422),
        (b'{"request_id": "r"}', 422),
        (b'{"request_id": "r", "helpful": true, "comment": "\\ud800"}', 422),
        (b'{"request_id": "a b", "helpful": true}', 400),
        (json.dumps({"request_id": "r" * 65, "helpful": True}).encode(), 400),
        (b'{"request_id": "r", "helpful": true, "entry_id": "a/b"}', 400),
        (b'{"request_id": "r", "helpful": true, "entry_id": "fees\\n"}', 400),
        (json.dumps({"request_id": "r", "helpful": True, "comment": "长" * 2001}).encode(), 413),
    ],
)
def test_feedback_outside_the_rules_is_refused_and_nothing_recorded(
    serve: Make, sqlite_store: Store, body: bytes, status: int
) -> None:
    client = serve(sqlite_store)
    planted = QueryRecord("r", "问题1", "answer", (QueryHit("q1", 0.9),), 1.0)
    sqlite_store.log_query(planted)
    response = client.post(
        "/v1/feedback", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert sqlite_store.feedback() == ()


def test_a_comment_of_exactly_the_limit_is_recorded(serve: Make, sqlite_store: Store) -> None:
    client = serve(sqlite_store)
    sqlite_store.log_query(QueryRecord("r", "问题1", "answer", (QueryHit("q1", 0.9),), 1.0))
    body = {"request_id": "r", "helpful": True, "comment": "长" * 2000}
    assert client.post("/v1/feedback", json=body).json()["comment"] == "长" * 2000


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    request_id=st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=70),
        st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    )
)
def test_a_request_id_is_400_outside_the_grammar_and_404_when_unknown_inside(
    serve_once: TestClient, request_id: str
) -> None:
    from walletfaq.store.traffic_records import check_request_id

    try:
        check_request_id(request_id)
        expected = 200 if request_id == "r" else 404  # "r": the one logged query
    except WalletFAQError:
        expected = 400
    response = serve_once.post("/v1/feedback", json={"request_id": request_id, "helpful": True})
    assert response.status_code == expected


@pytest.fixture
def serve_once(serve: Make, sqlite_store: Store) -> TestClient:
    """One app for every example of a Hypothesis test, with one logged query ``r``."""
    sqlite_store.log_query(QueryRecord("r", "问题1", "answer", (QueryHit("q1", 0.9),), 1.0))
    return serve(sqlite_store)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(comment=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1_990, max_size=2_010))
def test_a_comment_is_413_exactly_when_longer_than_2000_characters(
    serve_once: TestClient, comment: str
) -> None:
    body = {"request_id": "r", "helpful": True, "comment": comment}
    response = serve_once.post("/v1/feedback", json=body)
    assert response.status_code == (413 if len(comment) > 2000 else 200)


def test_feedback_needs_the_read_token_when_the_service_has_one(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store, read_token="reader-token")
    reader = {"Authorization": "Bearer reader-token"}
    request_id = client.post("/v1/ask", json={"question": "问题1"}, headers=reader).json()[
        "request_id"
    ]
    body = {"request_id": request_id, "helpful": True}
    assert client.post("/v1/feedback", json=body).status_code == 401
    assert client.post("/v1/feedback", json=body, headers=BOB).status_code == 200  # admins read
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/v1/feedback", json=body, headers=wrong).status_code == 401


# ----------------------------------------------------------------------------- the log's health
def test_metrics_export_the_log_counters_with_the_same_labels_whether_on_or_off(
    serve: Make, sqlite_store: Store
) -> None:
    on, off = serve(sqlite_store), serve(sqlite_store, query_log=False)
    request_id = on.post("/v1/ask", json={"question": "问题1"}).json()["request_id"]
    logged(sqlite_store, request_id)
    wait_for(
        lambda: metric(on, 'walletfaq_query_log_records_total{result="written"}') == 1, "1 written"
    )
    for client, enabled in ((on, 1), (off, 0)):
        labels = [
            line.split("{")[1].split("}")[0]
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("walletfaq_query_log_records_total{")
        ]
        assert labels == [f'result="{result}"' for result in RESULTS]
        assert metric(client, "walletfaq_query_log_enabled") == enabled


def test_readyz_reports_the_log_store_counts_and_retention(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store, log_retention_days=30)
    logged(sqlite_store, client.post("/v1/ask", json={"question": "问题1"}).json()["request_id"])
    log = client.get("/readyz").json()["log"]
    assert (log["enabled"], log["store"], log["reason"], log["retention_days"]) == (
        True,
        sqlite_store.url,
        None,
        30,
    )
    assert (log["written"], log["dropped"], log["failed"], log["pending"]) == (1, 0, 0, 0)


def test_with_the_log_store_down_asks_are_answered_and_the_lost_records_counted(
    serve: Make, outage_cluster: PostgresCluster, tiny_corpus: Any
) -> None:
    url = outage_cluster.new_database()
    client = serve(tiny_retriever(tiny_corpus), log_store=url, timeout_s=2.0)
    outage_cluster.stop_server()
    try:
        answers = [client.post("/v1/answer", json={"question": "怎么退款"}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200] * 3
        wait_for(lambda: client.get("/readyz").json()["log"]["failed"] == 3, "3 records failed")
        assert metric(client, 'walletfaq_query_log_records_total{result="failed"}') == 3
        feedback = {"request_id": answers[0].json()["request_id"], "helpful": True}
        refused = client.post("/v1/feedback", json=feedback)
        assert refused.status_code == 503 and "Retry-After" in refused.headers
    finally:
        outage_cluster.start()
    request_id = client.post("/v1/ask", json={"question": "怎么退款"}).json()["request_id"]
    with open_store(url) as log_store:
        assert logged(log_store, request_id).source == "http"  # logging resumed by itself


# ----------------------------------------------------------------------------- retention
def plant(store: Store, request_id: str, age: timedelta) -> None:
    asked = datetime.now(timezone.utc) - age
    hits = (QueryHit("q1", 0.9),)
    store.log_query(QueryRecord(request_id, "问题1", "answer", hits, 1.0, created_at=asked))


def test_retention_deletes_older_queries_and_their_feedback_when_the_app_starts(
    serve: Make, store: Store
) -> None:
    plant(store, "old", timedelta(days=31))
    plant(store, "recent", timedelta(days=29))
    store.add_feedback("old", helpful=False)
    client = serve(store, log_retention_days=30)
    wait_for(lambda: client.get("/readyz").json()["log"]["purged"] == 1, "one query purged")
    assert [q.request_id for q in store.queries()] == ["recent"] and store.feedback() == ()


def test_a_retention_of_zero_keeps_every_query(serve: Make, sqlite_store: Store) -> None:
    plant(sqlite_store, "ancient", timedelta(days=3650))
    client = serve(sqlite_store, log_retention_days=0)
    assert client.get("/readyz").json()["log"]["retention_days"] is None
    assert [q.request_id for q in sqlite_store.queries()] == ["ancient"]


def test_retention_purges_again_each_interval(sqlite_store: Store) -> None:
    import asyncio

    log = ServiceLog(QueryLog(sqlite_store), retention_days=1, purge_interval_s=0.05)

    async def run() -> None:
        purging = asyncio.create_task(log.keep_purging())
        await asyncio.sleep(0.1)  # the first purge found nothing
        await asyncio.to_thread(plant, sqlite_store, "later", timedelta(days=2))
        deadline = time.monotonic() + 10
        while log.status().purged < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        purging.cancel()

    asyncio.run(run())
    assert log.status().purged == 1 and sqlite_store.queries() == ()


# ----------------------------------------------------------------------------- proposals
def propose(store: Store, *proposals: NewProposal) -> list[str]:
    return [p.id for p in store.add_proposals(list(proposals))]


ALTS = NewProposal("add_alts", ("问题一咋整啊",), target="q1")
NEW_ENTRY = NewProposal("new_entry", ("花呗怎么关", "关闭花呗"), suggested_question="怎么关闭花呗")


def test_accepting_an_add_alts_proposal_writes_a_revision_the_replica_serves(
    serve: Make, store: Store
) -> None:
    (proposal_id,) = propose(store, ALTS)
    client = serve(store)
    response = client.post(f"/v1/proposals/{proposal_id}/accept", headers=ALICE)
    assert response.status_code == 200
    body = response.json()
    assert (body["revision"], body["staged"], body["proposal"]["status"]) == (2, False, "accepted")
    assert (store.log()[-1].author, store.log()[-1].kind) == ("alice", "proposal")
    hits = client.post("/v1/ask", json={"question": "问题一咋整啊", "k": 1}).json()["hits"]
    assert (hits[0]["id"], hits[0]["matched"]) == ("q1", "问题一咋整啊")  # served, no wait


def test_accepting_a_new_entry_without_its_answer_is_422_naming_the_field(
    serve: Make, sqlite_store: Store
) -> None:
    (proposal_id,) = propose(sqlite_store, NEW_ENTRY)
    response = serve(sqlite_store).post(f"/v1/proposals/{proposal_id}/accept", headers=ALICE)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "answer"]]
    assert sqlite_store.proposal(proposal_id).status == "open" and sqlite_store.head() == 1


def test_accepting_a_new_entry_with_its_answer_serves_the_new_entry(
    serve: Make, sqlite_store: Store
) -> None:
    (proposal_id,) = propose(sqlite_store, NEW_ENTRY)
    client = serve(sqlite_store)
    body = {"answer": "在设置里关闭。", "category": "credit"}
    decided = client.post(f"/v1/proposals/{proposal_id}/accept", json=body, headers=BOB).json()
    hit = client.post("/v1/ask", json={"question": "怎么关闭花呗", "k": 1}).json()["hits"][0]
    assert (hit["answer"], hit["category"]) == ("在设置里关闭。", "credit")
    assert decided["proposal"]["decided_by"] == "bob" and sqlite_store.head() == 2


@pytest.mark.parametrize("field", ["answer", "category"])
def test_an_answer_or_category_for_an_add_alts_proposal_is_422(
    serve: Make, sqlite_store: Store, field: str
) -> None:
    (proposal_id,) = propose(sqlite_store, ALTS)
    response = serve(sqlite_store).post(
        f"/v1/proposals/{proposal_id}/accept", json={field: "x"}, headers=ALICE
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


def test_a_decided_proposal_is_409_to_a_second_decision(serve: Make, sqlite_store: Store) -> None:
    (proposal_id,) = propose(sqlite_store, ALTS)
    client = serve(sqlite_store)
    rejected = client.post(f"/v1/proposals/{proposal_id}/reject", headers=BOB)
    assert rejected.status_code == 200 and rejected.json()["proposal"]["status"] == "rejected"
    for decision in ("accept", "reject"):
        again = client.post(f"/v1/proposals/{proposal_id}/{decision}", headers=ALICE)
        assert again.status_code == 409 and "already rejected by bob" in again.json()["detail"]
    assert sqlite_store.head() == 1


@pytest.mark.parametrize(("proposal_id", "status"), [("prop-000000000000", 404), ("a.b", 400)])
def test_an_unknown_proposal_is_404_and_an_id_outside_the_grammar_400(
    serve: Make, sqlite_store: Store, proposal_id: str, status: int
) -> None:
    client = serve(sqlite_store)
    for decision in ("accept", "reject"):
        response = client.post(f"/v1/proposals/{proposal_id}/{decision}", headers=ALICE)
        assert response.status_code == status


def test_proposals_are_listed_by_status_for_admins_only(serve: Make, sqlite_store: Store) -> None:
    first, second = propose(sqlite_store, ALTS, NEW_ENTRY)
    client = serve(sqlite_store, read_token="reader-token")
    client.post(f"/v1/proposals/{first}/reject", headers=ALICE)
    listed = client.get("/v1/proposals", params={"status": "open"}, headers=ALICE).json()
    assert [p["id"] for p in listed["proposals"]] == [second]
    assert len(client.get("/v1/proposals", headers=ALICE).json()["proposals"]) == 2
    reader = {"Authorization": "Bearer reader-token"}
    assert client.get("/v1/proposals", headers=reader).status_code == 401
    assert client.get("/v1/proposals").status_code == 401
    assert client.get("/v1/proposals", params={"status": "maybe"}, headers=ALICE).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        b'{"stage": true',  # not JSON
        b'{"stage": NaN}',
        b'{"stage": "true"}',  # not a boolean
        b'{"answer": "a", "votes": 1}',  # unknown field
        b'{"answer": "\\ud800"}',
        b"[]",
    ],
)
def test_an_accept_body_outside_the_rules_is_422_and_nothing_decided(
    serve: Make, sqlite_store: Store, body: bytes
) -> None:
    (proposal_id,) = propose(sqlite_store, NEW_ENTRY)
    response = serve(sqlite_store).post(
        f"/v1/proposals/{proposal_id}/accept",
        content=body,
        headers={**ALICE, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert sqlite_store.proposal(proposal_id).status == "open" and sqlite_store.head() == 1


def test_proposals_without_admin_tokens_are_403(serve: Make, sqlite_store: Store) -> None:
    (proposal_id,) = propose(sqlite_store, ALTS)
    client = serve(sqlite_store, admin_tokens=())
    assert client.get("/v1/proposals").status_code == 403
    assert client.post(f"/v1/proposals/{proposal_id}/accept").status_code == 403


def test_proposals_need_a_store_of_record_even_with_a_log_store(
    serve: Make, tiny_corpus: Any, tmp_path: Path
) -> None:
    client = serve(tiny_retriever(tiny_corpus), log_store=str(tmp_path / "log.db"))
    response = client.get("/v1/proposals", headers=ALICE)
    assert response.status_code == 409 and "serve --store" in response.json()["detail"]


def test_a_staged_acceptance_is_served_only_after_the_publish(
    serve: Make, sqlite_store: Store
) -> None:
    (proposal_id,) = propose(sqlite_store, ALTS)
    client = serve(sqlite_store)
    response = client.post(
        f"/v1/proposals/{proposal_id}/accept", json={"stage": True}, headers=ALICE
    ).json()
    assert (response["revision"], response["staged"]) == (None, True)
    ask = {"question": "问题一咋整啊", "k": 1}
    assert client.post("/v1/ask", json=ask).json()["hits"][0]["matched"] != "问题一咋整啊"
    revision = sqlite_store.publish(author="carol")
    client.app.state.index.current.retriever.follower.sync()  # type: ignore[attr-defined]
    assert client.post("/v1/ask", json=ask).json()["hits"][0]["matched"] == "问题一咋整啊"
    assert sqlite_store.proposal(proposal_id).revision == revision.number


# ----------------------------------------------------------------------------- staged edits
def test_a_staged_edit_is_202_and_served_only_after_the_publish(serve: Make, store: Store) -> None:
    client = serve(store)
    new = faq("repay", "信用卡还款怎么操作", "在还款页操作。")
    response = client.put("/v1/entries/repay", json=new, headers=ALICE, params={"stage": "true"})
    assert response.status_code == 202
    body = response.json()
    assert (body["staged"], body["op"], body["id"], body["author"], body["base_revision"]) == (
        True,
        "put",
        "repay",
        "alice",
        1,
    )
    assert client.get("/v1/entries/repay").status_code == 404 and store.head() == 1
    store.publish(author="carol")
    client.app.state.index.current.retriever.follower.sync()  # type: ignore[attr-defined]
    assert client.get("/v1/entries/repay").json()["answer"] == "在还款页操作。"


def test_staging_decides_on_the_content_with_the_changes_already_staged(
    serve: Make, sqlite_store: Store
) -> None:
    client = serve(sqlite_store)
    stage = {"stage": "true"}
    new = faq("repay", "信用卡还款怎么操作")
    assert client.post("/v1/entries", json=new, headers=ALICE, params=stage).status_code == 202
    assert client.post("/v1/entries", json=new, headers=ALICE, params=stage).status_code == 409
    assert (
        client.post("/v1/entries", json=faq("q1", "x"), headers=ALICE, params=stage).status_code
        == 409
    )
    assert client.delete("/v1/entries/nothing", headers=ALICE, params=stage).status_code == 404
    removed = client.delete("/v1/entries/repay", headers=ALICE, params=stage)
    assert (removed.status_code, removed.json()["op"]) == (202, "delete")
    assert [c.op for c in sqlite_store.staged()] == ["put", "delete"]


def test_a_stage_flag_that_is_not_a_boolean_is_422(serve: Make, sqlite_store: Store) -> None:
    client = serve(sqlite_store)
    response = client.delete("/v1/entries/q1", headers=ALICE, params={"stage": "maybe"})
    assert response.status_code == 422 and sqlite_store.staged() == () and sqlite_store.head() == 1


@pytest.mark.parametrize("with_store", [True, False])
def test_stage_with_if_match_or_without_a_store_is_400(
    serve: Make, sqlite_store: Store, tiny_corpus: Any, with_store: bool
) -> None:
    source = sqlite_store if with_store else tiny_retriever(tiny_corpus)
    client = serve(source, admin_tokens=TOKENS)
    headers = {**ALICE, "If-Match": "1"} if with_store else ALICE
    response = client.delete("/v1/entries/q1", headers=headers, params={"stage": "true"})
    assert response.status_code == 400
    assert sqlite_store.staged() == ()


# ----------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"query_log": False, "log_store": "log.db"}, "log_store"),
        ({"log_retention_days": -1}, "log_retention_days"),
        ({"log_retention_days": float("nan")}, "log_retention_days"),
        ({"log_store": "  "}, "log_store"),
        ({"query_log": 1}, "query_log"),
    ],
)
def test_log_settings_out_of_range_are_refused_naming_them(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(WalletFAQError, match=named):
        ServerSettings(**options)


def test_the_serve_command_passes_its_log_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import walletfaq.service
    from walletfaq.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(walletfaq.service, "serve_store", lambda _l, **kw: seen.update(kw))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["serve", "--store", str(tmp_path / "faq.db"), "--port", str(port)]
    assert main([*args, "--no-log", "--log-retention-days", "7"]) == 0
    options = seen["settings"]
    assert (options.query_log, options.log_store, options.log_retention_days) == (False, None, 7)
    assert main([*args, "--no-log", "--log-store", "log.db"]) == 2
