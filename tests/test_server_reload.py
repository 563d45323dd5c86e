"""Reloading the served index: ``POST /v1/reload``, hot reload of a replaced directory, edits
from several processes on one directory, and the worker-process factory."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402

from walletfaq import Corpus, FAQRetriever  # noqa: E402
from walletfaq.errors import WalletFAQError  # noqa: E402
from walletfaq.service import ServerSettings, app_from_environment, create_app  # noqa: E402
from walletfaq.service.holder import ServedIndex, manifest_checksum  # noqa: E402
from walletfaq.service.run import WORKER_CONFIG_ENV  # noqa: E402

from .conftest import TINY_ENTRIES, HashEncoder  # noqa: E402

TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NEW = {
    "id": "repay",
    "category": "money",
    "question": "怎么用钱包还信用卡",
    "answer": "在还款入口添加信用卡后还款。",
    "alt_questions": ["信用卡还款"],
}


def save_entries(directory: Path, entries: list[dict[str, object]]) -> Path:
    """Replace ``directory`` with an index of ``entries`` (what `walletfaq build` does)."""
    corpus = Corpus.from_entries(entries, source="test")
    return FAQRetriever.build(corpus, model=HashEncoder()).save(directory)


def damage(directory: Path) -> None:
    """Overwrite the vectors file in place: its SHA-256 no longer matches the manifest."""
    (directory / "index.faiss").write_bytes(b"not a faiss index")


def saved_ids(directory: Path) -> set[str]:
    return set(FAQRetriever.load(directory, model=HashEncoder()).corpus.ids)


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit_s`` seconds (a
    bound against hanging, not a measurement)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in metrics"
    return float(match.group(1))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_entries(tmp_path / "idx", TINY_ENTRIES)


@pytest.fixture
def make_client(saved: Path) -> Iterator[Callable[..., TestClient]]:
    """Start apps serving ``saved`` (each a fresh retriever loaded from it, as a worker
    process would, with ``encoder`` or a hash encoder); all are shut down after the test."""
    clients: list[TestClient] = []

    def make(encoder: HashEncoder | None = None, **overrides: object) -> TestClient:
        options: dict[str, object] = {
            "workers": 2,
            "admin_token": TOKEN,
            "persist_dir": saved,
            "reload_interval_s": 0,
        }
        options.update(overrides)
        retriever = FAQRetriever.load(saved, model=encoder or HashEncoder())
        client = TestClient(create_app(retriever, ServerSettings(**options)))  # type: ignore[arg-type]
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# ----------------------------------------------------------------------------- POST /v1/reload
def test_reload_is_403_when_the_server_has_no_admin_token(make_client) -> None:
    client = make_client(admin_token=None)
    response = client.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 403 and "WALLETFAQ_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer read-only"}]
)
def test_reload_is_401_with_a_missing_wrong_or_read_token(make_client, headers) -> None:
    client = make_client(read_token="read-only")
    response = client.post("/v1/reload", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_reload_without_an_index_directory_is_409_saying_so(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with TestClient(create_app(retriever, ServerSettings(workers=1, admin_token=TOKEN))) as c:
        response = c.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 409
    assert "nothing on disk to reload" in response.json()["detail"]


def test_reload_of_an_unchanged_directory_loads_nothing(make_client) -> None:
    client = make_client()
    served = client.app.state.index.current
    response = client.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert (body["changed"], body["version"], body["previous_version"]) == (False, 1, 1)
    assert client.app.state.index.current is served


def test_reload_serves_a_directory_replaced_by_a_new_save(make_client, saved) -> None:
    client = make_client()
    save_entries(saved, [*TINY_ENTRIES, NEW])
    response = client.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {
        "changed": True,
        "version": 2,
        "previous_version": 1,
        "entries": 6,
        "vectors": 17,
        "index_checksum": manifest_checksum(saved)[:16],
    }
    hits = client.post("/v1/ask", json={"question": "信用卡还款", "k": 1}).json()["hits"]
    assert hits[0]["id"] == "repay"
    ready = client.get("/readyz").json()
    assert (ready["entries"], ready["index_version"]) == (6, 2)
    assert ready["index_checksum"] == manifest_checksum(saved)[:16]
    text = client.get("/metrics").text
    assert metric(text, 'walletfaq_reloads_total{result="reloaded"}') == 1
    assert metric(text, "walletfaq_index_version") == 2
    assert metric(text, "walletfaq_entries") == 6


def test_a_damaged_directory_keeps_the_old_index_and_answers_why(make_client, saved) -> None:
    client = make_client()
    save_entries(saved, [*TINY_ENTRIES, NEW])
    damage(saved)
    response = client.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "cannot reload" in detail and "still serving version 1" in detail
    assert "index.faiss" in detail
    hits = client.post("/v1/ask", json={"question": "登不上去", "k": 1}).json()["hits"]
    assert hits[0]["id"] == "login"
    assert client.get("/v1/entries/repay").status_code == 404
    ready = client.get("/readyz").json()
    assert ready["index_version"] == 1 and "index.faiss" in ready["reload_error"]
    text = client.get("/metrics").text
    assert metric(text, 'walletfaq_reloads_total{result="failed"}') == 1
    assert metric(text, "walletfaq_reload_failing") == 1


def test_a_good_save_after_a_damaged_one_is_served_and_clears_the_error(make_client, saved) -> None:
    client = make_client()
    save_entries(saved, [*TINY_ENTRIES, NEW])
    damage(saved)
    assert client.post("/v1/reload", headers=ADMIN).status_code == 500
    save_entries(saved, [*TINY_ENTRIES[:4], NEW])
    body = client.post("/v1/reload", headers=ADMIN).json()
    assert (body["changed"], body["version"], body["entries"]) == (True, 2, 5)
    assert client.get("/readyz").json()["reload_error"] is None
    assert metric(client.get("/metrics").text, "walletfaq_reload_failing") == 0


def test_a_removed_directory_keeps_the_old_index(make_client, saved) -> None:
    client = make_client()
    saved.rename(saved.with_name("moved"))
    response = client.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 500 and "no such index directory" in response.json()["detail"]
    assert client.post("/v1/ask", json={"question": "怎么退款"}).status_code == 200


def test_reload_keeps_the_question_normalizer_and_the_encoder(make_client, saved) -> None:
    client = make_client()
    before = client.app.state.index.current.retriever
    save_entries(saved, [*TINY_ENTRIES, NEW])
    client.post("/v1/reload", headers=ADMIN)
    after = client.app.state.index.current.retriever
    assert after is not before
    assert after.encoder is before.encoder and after.normalizer is before.normalizer


# ----------------------------------------------------------------------------- hot reload
def test_hot_reload_serves_a_directory_replaced_on_disk(make_client, saved) -> None:
    client = make_client(reload_interval_s=0.02)
    save_entries(saved, [*TINY_ENTRIES, NEW])
    wait_for(lambda: client.get("/readyz").json()["entries"] == 6, "the new index")
    assert client.get("/v1/entries/repay").json()["question"] == NEW["question"]
    assert client.get("/readyz").json()["index_version"] == 2


def switch(link: Path, target: Path) -> None:
    """Point the symbolic link ``link`` at ``target`` in one atomic step."""
    staged = link.with_name(f".{link.name}.next")
    staged.symlink_to(target)
    os.replace(staged, link)


def test_hot_reload_follows_a_symbolic_link_switched_to_another_index(tmp_path) -> None:
    link = tmp_path / "current"
    link.symlink_to(save_entries(tmp_path / "v1", TINY_ENTRIES))
    retriever = FAQRetriever.load(link, model=HashEncoder())
    settings = ServerSettings(workers=1, persist_dir=link, reload_interval_s=0.02)
    with TestClient(create_app(retriever, settings)) as client:
        switch(link, save_entries(tmp_path / "v2", [*TINY_ENTRIES, NEW]))
        wait_for(lambda: client.get("/readyz").json()["entries"] == 6, "the new release")


def test_hot_reload_tries_a_damaged_directory_once_and_keeps_the_old_index(
    tmp_path, caplog
) -> None:
    link = tmp_path / "current"
    link.symlink_to(save_entries(tmp_path / "v1", TINY_ENTRIES))
    damaged = save_entries(tmp_path / "v2", [*TINY_ENTRIES, NEW])
    damage(damaged)
    retriever = FAQRetriever.load(link, model=HashEncoder())
    settings = ServerSettings(workers=1, persist_dir=link, reload_interval_s=0.02)
    with TestClient(create_app(retriever, settings)) as client:
        index: ServedIndex = client.app.state.index
        switch(link, damaged)  # appears whole: no poll can see it undamaged
        wait_for(lambda: index.failing, "the failed reload")
        assert [index.poll() for _ in range(5)] == [None] * 5  # the same save: not retried
        text = client.get("/metrics").text
        assert metric(text, 'walletfaq_reloads_total{result="failed"}') == 1
        assert [r.message for r in caplog.records].count(index.last_error) == 1
        assert client.post("/v1/ask", json={"question": "登不上去"}).status_code == 200
        assert client.get("/readyz").json()["entries"] == 5
        save_entries(link, [*TINY_ENTRIES, NEW])  # a new save of the same content repairs it
        wait_for(lambda: client.get("/readyz").json()["entries"] == 6, "the repaired index")
        assert not index.failing


def test_no_poll_runs_once_the_app_has_shut_down(saved) -> None:
    retriever = FAQRetriever.load(saved, model=HashEncoder())
    settings = ServerSettings(workers=1, persist_dir=saved, reload_interval_s=0.01)
    app = create_app(retriever, settings)
    index: ServedIndex = app.state.index
    calls: list[int] = []
    original = index.poll

    def counted() -> object:
        calls.append(1)
        return original()

    index.poll = counted  # type: ignore[method-assign]
    with TestClient(app):
        wait_for(lambda: len(calls) >= 3, "the poller")
    stopped = len(calls)
    time.sleep(0.2)  # twenty intervals: a running poller would have polled again
    assert len(calls) == stopped


def test_hot_reload_is_off_with_an_interval_of_zero(make_client, saved) -> None:
    client = make_client(reload_interval_s=0)
    save_entries(saved, [*TINY_ENTRIES, NEW])
    time.sleep(0.2)
    assert client.get("/readyz").json()["entries"] == 5
    assert client.post("/v1/reload", headers=ADMIN).json()["changed"] is True


# ----------------------------------------------------------------------------- no dropped request
def test_requests_during_reloads_all_succeed_on_the_old_or_the_new_index(
    make_client, saved, tmp_path
) -> None:
    client = make_client(workers=4, queue_size=64)
    with_new = save_entries(tmp_path / "with-new", [*TINY_ENTRIES, NEW])
    without = save_entries(tmp_path / "without", TINY_ENTRIES[1:])
    expected = {  # the top answer of the question in each index served
        FAQRetriever.load(d, model=HashEncoder()).ask("信用卡还款 登不上去", k=1)[0].id
        for d in (saved, with_new, without)
    }
    stop = threading.Event()

    def ask_until_stopped() -> list[tuple[int, str]]:
        seen = []
        while not stop.is_set():
            response = client.post("/v1/ask", json={"question": "信用卡还款 登不上去", "k": 1})
            seen.append((response.status_code, response.json()["hits"][0]["id"]))
        return seen

    with ThreadPoolExecutor(max_workers=3) as askers:
        asks = [askers.submit(ask_until_stopped) for _ in range(3)]
        for round_ in range(6):
            source = with_new if round_ % 2 == 0 else without
            FAQRetriever.load(source, model=HashEncoder()).save(saved)
            assert client.post("/v1/reload", headers=ADMIN).json()["changed"] is True
        stop.set()
        seen = [outcome for future in asks for outcome in future.result()]
    assert seen and {status for status, _ in seen} == {200}
    assert {top for _, top in seen} <= expected
    assert client.get("/readyz").json()["index_version"] == 7


def test_a_request_in_flight_finishes_on_the_index_it_started_with(make_client, saved) -> None:
    client = make_client()
    index: ServedIndex = client.app.state.index
    old = index.current.retriever
    save_entries(saved, [*TINY_ENTRIES, NEW])
    index.reload()
    assert old.ask("信用卡还款", k=1)[0].id != "repay"  # the old retriever still answers
    assert index.current.retriever.ask("信用卡还款", k=1)[0].id == "repay"


# ----------------------------------------------------------------------------- edits and reloads
def test_an_edit_is_not_taken_for_a_change_on_disk(make_client, saved) -> None:
    client = make_client()
    assert client.put("/v1/entries/repay", json=NEW, headers=ADMIN).json()["version"] == 2
    index: ServedIndex = client.app.state.index
    assert index.current.checksum == manifest_checksum(saved)
    assert index.poll() is None
    body = client.post("/v1/reload", headers=ADMIN).json()
    assert (body["changed"], body["version"]) == (False, 2)
    assert client.get("/v1/entries/repay").status_code == 200


def test_hot_reload_neither_loses_nor_repeats_the_servers_own_edits(make_client, saved) -> None:
    client = make_client(reload_interval_s=0.01)
    for number in range(8):
        entry = {**NEW, "id": f"e{number}", "question": f"第{number}个问题怎么办"}
        assert client.post("/v1/entries", json=entry, headers=ADMIN).status_code == 201
    assert client.delete("/v1/entries/e3", headers=ADMIN).status_code == 200
    time.sleep(0.1)  # ten polls
    ready = client.get("/readyz").json()
    assert (ready["entries"], ready["index_version"]) == (12, 10)  # 9 edits, no reload
    assert saved_ids(saved) == set(client.app.state.index.current.retriever.corpus.ids)


def test_an_edit_applies_on_top_of_what_another_process_saved(make_client, saved) -> None:
    client = make_client()
    other = FAQRetriever.load(saved, model=HashEncoder())  # another worker process
    other.add([{**NEW, "id": "theirs"}], persist_to=saved)
    response = client.put("/v1/entries/mine", json={**NEW, "id": "mine"}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["version"] == 3  # reload + edit
    assert {"theirs", "mine"} <= saved_ids(saved)
    assert client.get("/v1/entries/theirs").status_code == 200


def test_two_servers_editing_one_directory_lose_no_edit(make_client, saved) -> None:
    first, second = make_client(reload_interval_s=0.01), make_client(reload_interval_s=0.01)

    def add(client: TestClient, name: str) -> int:
        entry = {**NEW, "id": name, "question": f"{name} 的问题"}
        return client.post("/v1/entries", json=entry, headers=ADMIN).status_code

    names = [(first if n % 2 else second, f"n{n}") for n in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda pair: add(*pair), names))
    assert statuses == [201] * 12
    wanted = {*(e["id"] for e in TINY_ENTRIES), *(name for _, name in names)}
    assert saved_ids(saved) == wanted
    for client in (first, second):
        wait_for(
            lambda c=client: set(c.app.state.index.current.retriever.corpus.ids) == wanted,
            "every edit in both servers",
        )


def test_an_edit_over_a_damaged_directory_is_refused_and_not_applied(make_client, saved) -> None:
    client = make_client()
    save_entries(saved, TINY_ENTRIES[:3])
    damage(saved)
    response = client.post("/v1/entries", json=NEW, headers=ADMIN)
    assert response.status_code == 500 and "not applied" in response.json()["detail"]
    assert client.get("/v1/entries/repay").status_code == 404
    assert (saved / "index.faiss").read_bytes() == b"not a faiss index"  # left for a person


def test_the_index_version_survives_a_restart(make_client, saved) -> None:
    first = make_client()
    first.post("/v1/entries", json=NEW, headers=ADMIN)
    first.delete("/v1/entries/fees", headers=ADMIN)
    assert first.get("/readyz").json()["index_version"] == 3
    restarted = make_client()  # a new process loading the same directory
    assert restarted.get("/readyz").json()["index_version"] == 3


def test_a_reload_takes_the_saved_version_when_another_worker_is_ahead(make_client, saved) -> None:
    client = make_client()
    other = FAQRetriever.load(saved, model=HashEncoder())
    for n in range(4):  # another process applies four edits and saves each
        other.add([{**NEW, "id": f"n{n}", "question": f"n{n} 的问题"}], persist_to=saved)
    assert client.post("/v1/reload", headers=ADMIN).json()["version"] == other.version == 5


def test_edits_leave_a_lock_file_beside_the_directory_and_nothing_inside(
    make_client, saved
) -> None:
    client = make_client()
    client.post("/v1/entries", json=NEW, headers=ADMIN)
    assert (saved.parent / ".idx.walletfaq-serve.lock").is_file()
    assert {p.name for p in saved.iterdir()} == {"manifest.json", "metadata.json", "index.faiss"}


# ----------------------------------------------------------------------------- settings, factory
def test_a_negative_reload_interval_is_refused_naming_it() -> None:
    with pytest.raises(WalletFAQError, match="reload_interval_s"):
        ServerSettings(reload_interval_s=-1)


def test_the_worker_factory_serves_the_index_its_environment_names(index_dir, monkeypatch) -> None:
    settings = {"workers": 1, "admin_token": TOKEN, "reload_interval_s": 0.02}
    config = {"index": str(index_dir), "model": None, "log_level": "warning"}
    config["settings"] = {**settings, "persist_dir": str(index_dir)}
    monkeypatch.setenv(WORKER_CONFIG_ENV, json.dumps(config))
    with TestClient(app_from_environment()) as client:
        assert client.post("/v1/ask", json={"question": "怎么退款"}).json()["hits"][0]["id"] == (
            "refund"
        )
        assert client.put("/v1/entries/repay", json=NEW, headers=ADMIN).status_code == 200
        assert client.app.state.index.directory == index_dir.absolute()
    assert "repay" in FAQRetriever.load(index_dir).corpus


@pytest.mark.parametrize("value", [None, "not json", '{"index": "x"}'])
def test_the_worker_factory_without_its_configuration_is_a_clear_error(value, monkeypatch) -> None:
    if value is None:
        monkeypatch.delenv(WORKER_CONFIG_ENV, raising=False)
    else:
        monkeypatch.setenv(WORKER_CONFIG_ENV, value)
    with pytest.raises(WalletFAQError, match=WORKER_CONFIG_ENV):
        app_from_environment()


def test_serve_with_several_workers_needs_an_index_directory(capsys) -> None:
    from walletfaq.cli import main

    assert main(["serve", "--workers", "2"]) == 2
    assert "--workers above 1 needs --index" in capsys.readouterr().err
