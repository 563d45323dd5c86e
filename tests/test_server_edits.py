"""Live FAQ edits over HTTP: admin token, add/replace/remove, persisted before the answer."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402

from walletfaq import FAQRetriever  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402

from .conftest import TINY_ENTRIES, HashEncoder  # noqa: E402

ADMIN = {"Authorization": "Bearer admin-secret"}
NEW = {
    "id": "repay",
    "category": "money",
    "question": "怎么用钱包还信用卡",
    "answer": "在还款入口添加信用卡后还款。",
    "alt_questions": ["信用卡还款"],
}


@pytest.fixture
def saved(tmp_path: Path, tiny_corpus) -> Path:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder()).save(tmp_path / "idx")


@pytest.fixture
def live(saved: Path) -> FAQRetriever:
    return FAQRetriever.load(saved, model=HashEncoder())


@pytest.fixture
def client(live: FAQRetriever, saved: Path) -> Iterator[TestClient]:
    settings = ServerSettings(workers=2, admin_token="admin-secret", persist_dir=saved)
    with TestClient(create_app(live, settings)) as test_client:
        yield test_client


def reloaded(saved: Path) -> FAQRetriever:
    return FAQRetriever.load(saved, model=HashEncoder())


def test_edits_are_disabled_without_an_admin_token(live) -> None:
    with TestClient(create_app(live, ServerSettings(workers=1))) as client:
        response = client.post("/v1/entries", json=NEW, headers=ADMIN)
    assert response.status_code == 403 and "WALLETFAQ_ADMIN_TOKEN" in response.json()["detail"]
    assert "repay" not in live.corpus


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer read-only"}]
)
def test_a_missing_wrong_or_read_token_is_401_on_edits(live, saved, headers) -> None:
    settings = ServerSettings(
        workers=1, admin_token="admin-secret", read_token="read-only", persist_dir=saved
    )
    with TestClient(create_app(live, settings)) as client:
        response = client.delete("/v1/entries/login", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert "login" in live.corpus


def test_post_adds_an_entry_that_is_asked_and_persisted_before_the_answer(
    client, live, saved
) -> None:
    response = client.post("/v1/entries", json=NEW, headers=ADMIN)
    assert response.status_code == 201
    assert response.json() == {
        "id": "repay",
        "action": "added",
        "version": 2,
        "persisted": True,
        "revision": None,
    }
    assert "repay" in reloaded(saved).corpus  # on disk when the answer came
    hits = client.post("/v1/ask", json={"question": "信用卡还款", "k": 1}).json()["hits"]
    assert hits[0]["id"] == "repay"


def test_post_of_an_existing_id_is_409(client) -> None:
    response = client.post("/v1/entries", json={**NEW, "id": "login"}, headers=ADMIN)
    assert response.status_code == 409 and "PUT" in response.json()["detail"]


def test_put_replaces_or_adds_and_equals_a_rebuild(client, live, saved) -> None:
    changed = {**TINY_ENTRIES[2], "answer": "新的退款说明。"}
    body = {k: v for k, v in changed.items() if k != "id"}
    response = client.put("/v1/entries/refund", json=body, headers=ADMIN)
    assert response.json()["action"] == "replaced"
    assert client.put("/v1/entries/repay", json=NEW, headers=ADMIN).json()["action"] == "added"
    entries = [*TINY_ENTRIES[:2], changed, *TINY_ENTRIES[3:], NEW]
    rebuilt = FAQRetriever.build(
        FAQRetriever.load(saved, model=HashEncoder()).corpus, model=HashEncoder()
    )
    assert [e.to_dict() for e in rebuilt.corpus] == [
        {**e, "alt_questions": list(e.get("alt_questions", []))} for e in entries
    ]
    for question in ["怎么退款", "信用卡还款", "登不上去"]:
        assert live.ask(question, k=5) == rebuilt.ask(question, k=5)


def test_put_with_a_different_id_in_the_body_is_400(client) -> None:
    response = client.put("/v1/entries/refund", json={**NEW, "id": "other"}, headers=ADMIN)
    assert response.status_code == 400 and "differs" in response.json()["detail"]


def test_delete_removes_and_persists_and_unknown_ids_are_404(client, live, saved) -> None:
    assert client.delete("/v1/entries/fees", headers=ADMIN).json()["action"] == "removed"
    assert "fees" not in live.corpus and "fees" not in reloaded(saved).corpus
    assert client.delete("/v1/entries/fees", headers=ADMIN).status_code == 404


def test_an_invalid_entry_is_400_and_changes_nothing(client, live) -> None:
    response = client.post("/v1/entries", json={**NEW, "question": "\u200b"}, headers=ADMIN)
    assert response.status_code == 400 and "question" in response.json()["detail"]
    assert live.version == 1


@pytest.mark.parametrize(
    "content",
    [
        b'{"id": "x\\ud800", "category": "a", "question": "q", "answer": "a"}',
        b'{"id": "x", "category": "a", "question": "q", "answer": "a", "alt_questions": '
        b'["\\ud800"]}',
    ],
)
def test_an_entry_with_a_lone_surrogate_is_422_and_changes_nothing(client, live, content) -> None:
    headers = {**ADMIN, "content-type": "application/json"}
    response = client.post("/v1/entries", content=content, headers=headers)
    assert response.status_code == 422 and "surrogate" in response.text
    assert live.version == 1


def test_an_edit_that_cannot_be_persisted_is_500_and_not_applied(live, tmp_path) -> None:
    foreign = tmp_path / "not-an-index"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    settings = ServerSettings(workers=1, admin_token="admin-secret", persist_dir=foreign)
    with TestClient(create_app(live, settings)) as client:
        response = client.post("/v1/entries", json=NEW, headers=ADMIN)
    assert response.status_code == 500 and "not applied" in response.json()["detail"]
    assert "repay" not in live.corpus


def test_asks_during_edits_all_succeed_with_the_top_answer_of_a_version(client, live) -> None:
    answers = {
        FAQRetriever.build(live.corpus, model=HashEncoder()).ask("信用卡还款", k=3)[0].id,
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        asks = [
            pool.submit(client.post, "/v1/ask", json={"question": "信用卡还款", "k": 3})
            for _ in range(40)
        ]
        for _ in range(5):
            assert client.put("/v1/entries/repay", json=NEW, headers=ADMIN).status_code == 200
            assert client.delete("/v1/entries/repay", headers=ADMIN).status_code == 200
        results = [future.result() for future in asks]
    answers.add("repay")
    assert all(r.status_code == 200 for r in results)
    assert {r.json()["hits"][0]["id"] for r in results} <= answers
