"""The service serving a store of record (``walletfaq serve --store``), in process: admin edits
are store revisions (author = the token's name, ``?reason=``, ``If-Match``), answered with the
revision and served by the replica that took them before the answer; ``/readyz`` reports the
revision, the store's head and the lag; with the store down, reads go on, ``/readyz`` says
degraded and why, and edits answer 503 with ``Retry-After``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402

from tests import replica_support  # noqa: E402
from tests.conftest import HashEncoder  # noqa: E402
from tests.replica_support import faq, new_store, wait_for  # noqa: E402
from tests.store_support import PostgresCluster  # noqa: E402
from walletfaq import FAQRetriever  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402
from walletfaq.store import Change, Store  # noqa: E402

outage_cluster = replica_support.outage_cluster  # a cluster these tests stop and restart

TOKENS = (("alice", "alice-token-1"), ("bob", "bob-token-2"))
ALICE = {"Authorization": "Bearer alice-token-1"}
BOB = {"Authorization": "Bearer bob-token-2"}
NEW = faq("repay", "信用卡还款怎么操作", "在还款页操作。")


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    created = new_store(str(tmp_path / "faq.db"))
    yield created
    created.close()


def client_of(store: Store, **settings: object) -> tuple[TestClient, FAQRetriever]:
    retriever = FAQRetriever.from_store(store, model=HashEncoder())
    options = {"workers": 2, "admin_tokens": TOKENS, **settings}
    return TestClient(create_app(retriever, ServerSettings(**options))), retriever  # type: ignore[arg-type]


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    test_client, retriever = client_of(store)
    with test_client, retriever:
        yield test_client


def test_an_edit_is_a_store_revision_by_the_tokens_name_served_before_the_answer(
    client: TestClient, store: Store
) -> None:
    response = client.post("/v1/entries", json=NEW, headers=ALICE, params={"reason": "新业务"})
    assert response.status_code == 201
    assert response.json() == {
        "id": "repay",
        "action": "added",
        "version": 2,
        "persisted": True,
        "revision": 2,
    }
    logged = store.log()[-1]
    assert (logged.number, logged.author, logged.reason, logged.changes) == (
        2,
        "alice",
        "新业务",
        1,
    )
    hits = client.post("/v1/ask", json={"question": "信用卡还款怎么操作", "k": 1}).json()["hits"]
    assert hits[0]["id"] == "repay"  # read-your-writes: no wait


def test_put_replaces_or_adds_and_delete_removes_each_as_one_revision(
    client: TestClient, store: Store
) -> None:
    q1 = {**store.entry("q1").to_dict(), "answer": "新的答案。"}
    replaced = client.put("/v1/entries/q1", json=q1, headers=BOB).json()
    added = client.put("/v1/entries/repay", json=NEW, headers=BOB).json()
    removed = client.delete("/v1/entries/q2", headers=ALICE).json()
    assert [(r["action"], r["revision"]) for r in (replaced, added, removed)] == [
        ("replaced", 2),
        ("added", 3),
        ("removed", 4),
    ]
    assert [(r.number, r.author) for r in store.log()[1:]] == [(2, "bob"), (3, "bob"), (4, "alice")]
    assert store.entry("q1").answer == "新的答案。" and "q2" not in store.entries().ids
    assert client.get("/v1/entries/q2").status_code == 404


def test_adding_an_existing_id_is_409_and_removing_an_unknown_one_404(
    client: TestClient, store: Store
) -> None:
    assert client.post("/v1/entries", json=faq("q1", "重复"), headers=ALICE).status_code == 409
    assert client.delete("/v1/entries/nothing", headers=ALICE).status_code == 404
    assert store.head() == 1  # nothing written


def test_an_edit_decides_on_the_stores_latest_revision_not_a_stale_replica(
    client: TestClient, store: Store
) -> None:
    store.apply([Change.add(faq("elsewhere", "别的副本加的"))], author="bob")  # not synced
    response = client.post("/v1/entries", json=faq("elsewhere", "又加一次"), headers=ALICE)
    assert response.status_code == 409 and store.head() == 2


def test_a_get_carries_the_revision_as_etag_and_if_match_makes_an_edit_conditional(
    client: TestClient, store: Store
) -> None:
    got = client.get("/v1/entries/q3")
    assert got.headers["ETag"] == '"1"'
    edited = {**got.json(), "answer": "甲的答案。"}
    first = client.put("/v1/entries/q3", json=edited, headers={**ALICE, "If-Match": '"1"'})
    assert first.status_code == 200 and first.json()["revision"] == 2
    second = client.put(
        "/v1/entries/q3", json={**edited, "answer": "乙的答案。"}, headers={**BOB, "If-Match": "1"}
    )
    assert second.status_code == 412
    assert "changed in revision 2, after revision 1" in second.json()["detail"]
    assert store.entry("q3").answer == "甲的答案。" and store.head() == 2


def test_if_match_on_an_unchanged_entry_succeeds(client: TestClient, store: Store) -> None:
    client.delete("/v1/entries/q5", headers=ALICE)  # revision 2 touches another entry
    q3 = store.entry("q3").to_dict()
    response = client.put("/v1/entries/q3", json=q3, headers={**ALICE, "If-Match": "1"})
    assert response.status_code == 200 and response.json()["revision"] == 3


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", 'W/"1"', "*", "1 2"])
def test_a_malformed_if_match_is_400_naming_the_rule(client: TestClient, value: str) -> None:
    response = client.delete("/v1/entries/q1", headers={**ALICE, "If-Match": value})
    assert response.status_code == 400 and "If-Match" in response.json()["detail"]


def test_an_if_match_newer_than_the_store_is_412(client: TestClient, store: Store) -> None:
    response = client.delete("/v1/entries/q1", headers={**ALICE, "If-Match": "7"})
    assert response.status_code == 412 and "newer than the store" in response.json()["detail"]
    assert store.head() == 1


def test_a_reason_over_2000_characters_is_422_and_nothing_written(
    client: TestClient, store: Store
) -> None:
    response = client.delete("/v1/entries/q1", headers=ALICE, params={"reason": "x" * 2001})
    assert response.status_code == 422 and store.head() == 1


def test_reason_and_if_match_without_a_store_are_400(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with TestClient(create_app(retriever, ServerSettings(workers=1, admin_token="t"))) as client:
        auth = {"Authorization": "Bearer t"}
        with_reason = client.delete("/v1/entries/login", headers=auth, params={"reason": "x"})
        with_if_match = client.delete("/v1/entries/login", headers={**auth, "If-Match": "1"})
    for response in (with_reason, with_if_match):
        assert response.status_code == 400 and "need a store" in response.json()["detail"]
    assert "login" in retriever.corpus


def test_the_single_admin_token_is_named_admin(store: Store) -> None:
    test_client, retriever = client_of(store, admin_token="single-token", admin_tokens=())
    with test_client, retriever:
        headers = {"Authorization": "Bearer single-token"}
        assert test_client.delete("/v1/entries/q4", headers=headers).status_code == 200
    assert store.log()[-1].author == "admin"


def test_readyz_reports_the_revision_the_head_and_the_lag(client: TestClient, store: Store) -> None:
    store.apply([Change.remove("q5")], author="bob")  # not followed: the replica lags
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["store"]["revision"] == 1 and ready["store"]["lag"]["revisions"] == 0
    client.delete("/v1/entries/q4", headers=ALICE)  # syncs first, then writes revision 3
    store_status = client.get("/readyz").json()["store"]
    assert (store_status["revision"], store_status["store_head"]) == (3, 3)
    assert store_status["lag"] == {"revisions": 0, "seconds": 0.0}
    assert store_status["degraded_reason"] is None and store_status["url"] == store.url
    assert client.get("/v1/entries", params={"limit": 1}).json()["revision"] == 3


def test_readyz_without_a_store_has_no_store_section(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with TestClient(create_app(retriever, ServerSettings(workers=1))) as client:
        ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["store"] is None


def test_with_postgresql_down_reads_go_on_readyz_is_degraded_and_edits_are_503(
    outage_cluster: PostgresCluster,
) -> None:
    url = outage_cluster.new_database()
    writer = new_store(url)
    retriever = FAQRetriever.from_store(url, model=HashEncoder(), follow=True, poll_interval=0.2)
    settings = ServerSettings(workers=2, admin_tokens=TOKENS, retry_after_s=3)
    with TestClient(create_app(retriever, settings)) as client, retriever:
        outage_cluster.stop_server()
        try:
            wait_for(lambda: client.get("/readyz").json()["status"] == "degraded", "degraded")
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["store"]["degraded_reason"]
            asked = client.post("/v1/ask", json={"question": "问题1怎么办", "k": 1})
            assert asked.status_code == 200 and asked.json()["hits"][0]["id"] == "q1"
            edit = client.post("/v1/entries", json=NEW, headers=ALICE)
            assert edit.status_code == 503 and edit.headers["Retry-After"] == "3"
            assert "not applied" in edit.json()["detail"]
        finally:
            outage_cluster.start()
        writer.apply([Change.add(faq("after", "恢复之后的问题"))], author="bob")
        wait_for(lambda: client.get("/v1/entries/after").status_code == 200, "caught up")
        wait_for(lambda: client.get("/readyz").json()["status"] == "ready", "ready again")
        assert client.post("/v1/entries", json=NEW, headers=ALICE).status_code == 201
    assert [r.author for r in writer.log()] == ["alice", "bob", "alice"]
    writer.close()


def test_a_worker_process_is_a_replica_of_the_store_its_environment_names(
    store: Store, routed_encoder: HashEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each of ``walletfaq serve --store URL --workers N``'s processes runs."""
    import json
    from dataclasses import asdict

    from walletfaq.service.run import WORKER_CONFIG_ENV, app_from_environment

    settings = asdict(ServerSettings(workers=1, admin_tokens=TOKENS))
    config = {"store": store.url, "model": "hash-test", "poll_interval": 0.05, "listen": True}
    monkeypatch.setenv(WORKER_CONFIG_ENV, json.dumps({**config, "settings": settings}))
    app = app_from_environment()
    retriever = app.state.index.current.retriever
    with TestClient(app) as client, retriever:
        assert retriever.follower is not None and retriever.follower.following
        assert client.delete("/v1/entries/q2", headers=BOB).json()["revision"] == 2
        store.apply([Change.add(faq("other", "另一个进程加的"))], author="alice")
        wait_for(lambda: client.get("/v1/entries/other").status_code == 200, "followed")
    assert store.log()[1].author == "bob"


def test_serve_takes_one_of_index_corpus_and_store(capsys: pytest.CaptureFixture[str]) -> None:
    from walletfaq.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--store", "a.db", "--index", "idx"])
    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_serve_with_a_missing_store_is_one_line_before_any_model_loads(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_server_live import free_port
    from walletfaq.cli import main

    missing = tmp_path / "missing.db"
    assert main(["serve", "--store", str(missing), "--port", str(free_port())]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"walletfaq: error: no walletfaq store at {missing}")
    assert error.count("\n") == 1
