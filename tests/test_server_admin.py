"""What an operator and an admin UI need from the service: a paged list of the entries, the
schema and the docs' files labelled as themselves in the metrics, and no lock file left
beside the index directory after a clean shutdown."""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402

from walletfaq import Corpus, FAQRetriever  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402
from walletfaq.service.holder import LOCK_SUFFIX, ServedIndex  # noqa: E402
from walletfaq.service.routes.entries import MAX_PAGE  # noqa: E402

from .conftest import TINY_ENTRIES, HashEncoder  # noqa: E402

ADMIN = {"Authorization": "Bearer admin"}
NEW = {"id": "repay", "category": "money", "question": "怎么还信用卡", "answer": "在还款入口还。"}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    corpus = Corpus.from_entries(TINY_ENTRIES)
    return FAQRetriever.build(corpus, model=HashEncoder()).save(tmp_path / "idx")


def serve(saved: Path, **settings: object) -> TestClient:
    retriever = FAQRetriever.load(saved, model=HashEncoder())
    options = {"workers": 1, "admin_token": "admin", "persist_dir": saved, **settings}
    options.setdefault("reload_interval_s", 0)
    return TestClient(create_app(retriever, ServerSettings(**options)))  # type: ignore[arg-type]


@pytest.fixture
def client(saved: Path, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.delenv("WALLETFAQ_READ_TOKEN", raising=False)
    with serve(saved) as test_client:
        yield test_client


# ----------------------------------------------------------------------------- GET /v1/entries
def test_entries_are_listed_a_page_at_a_time_with_the_total(client) -> None:
    first = client.get("/v1/entries", params={"limit": 2}).json()
    assert [e["id"] for e in first["entries"]] == ["login", "topup"]
    assert (first["total"], first["offset"], first["limit"]) == (5, 0, 2)
    rest = client.get("/v1/entries", params={"offset": 2, "limit": 10}).json()
    assert [e["id"] for e in rest["entries"]] == ["refund", "fees", "safety"]
    assert rest["entries"][0] == client.get("/v1/entries/refund").json()


def test_a_page_past_the_end_is_empty_and_still_gives_the_total(client) -> None:
    page = client.get("/v1/entries", params={"offset": 99}).json()
    assert page["entries"] == [] and page["total"] == 5


@pytest.mark.parametrize(
    "params", [{"offset": -1}, {"limit": 0}, {"limit": MAX_PAGE + 1}, {"offset": "x"}]
)
def test_a_bad_offset_or_limit_is_422(client, params) -> None:
    assert client.get("/v1/entries", params=params).status_code == 422


def test_the_list_follows_edits_and_gives_the_version_it_was_read_from(client) -> None:
    assert client.get("/v1/entries").json()["version"] == 1
    assert client.post("/v1/entries", json=NEW, headers=ADMIN).status_code == 201
    page = client.get("/v1/entries").json()
    assert page["total"] == 6 and page["entries"][-1]["id"] == "repay" and page["version"] == 2


def test_the_list_needs_the_read_token_when_one_is_set(saved, monkeypatch) -> None:
    monkeypatch.setenv("WALLETFAQ_READ_TOKEN", "s3cret")
    retriever = FAQRetriever.load(saved, model=HashEncoder())
    with TestClient(create_app(retriever)) as client:
        assert client.get("/v1/entries").status_code == 401
        headers = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/entries", headers=headers).json()["total"] == 5


def test_the_schema_lists_the_entries_page(client) -> None:
    schema = client.get("/openapi.json").json()
    assert "get" in schema["paths"]["/v1/entries"]
    names = {p["name"] for p in schema["paths"]["/v1/entries"]["get"]["parameters"]}
    assert names == {"offset", "limit"}


# ----------------------------------------------------------------------------- metrics labels
def test_the_schema_and_the_docs_files_are_labelled_as_themselves(client) -> None:
    client.get("/openapi.json")
    client.get("/docs/assets/swagger-ui.css")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    labels = set(re.findall(r'walletfaq_requests_total\{endpoint="([^"]+)"', text))
    assert {"/openapi.json", "/docs/assets/{name}", "unmatched"} <= labels
    unmatched = re.findall(r'walletfaq_requests_total\{endpoint="unmatched"[^}]*\} (\S+)', text)
    assert sum(float(n) for n in unmatched) == 1.0  # only the unknown page


# ----------------------------------------------------------------------------- the lock file
def lock_file(saved: Path) -> Path:
    return saved.parent / f".{saved.name}{LOCK_SUFFIX}"


def test_a_clean_shutdown_removes_the_lock_file_beside_the_directory(saved) -> None:
    with serve(saved) as client:
        client.post("/v1/entries", json=NEW, headers=ADMIN)
        assert lock_file(saved).is_file()
    assert not lock_file(saved).exists()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["idx"]


def test_the_lock_file_held_by_another_process_is_left_at_shutdown(saved) -> None:
    with serve(saved) as client:
        client.post("/v1/entries", json=NEW, headers=ADMIN)
        other = os.open(lock_file(saved), os.O_RDWR)  # another process, in the middle of an edit
        fcntl.flock(other, fcntl.LOCK_EX)
    try:
        assert lock_file(saved).is_file()
    finally:
        os.close(other)


def open_descriptors(path: Path) -> int:
    """How many file descriptors of this process are open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_an_edit_waiting_on_a_removed_lock_file_locks_a_new_one(saved) -> None:
    served = ServedIndex(FAQRetriever.load(saved, model=HashEncoder()), saved)
    path = lock_file(saved)
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # a process about to shut down
    fcntl.flock(holder, fcntl.LOCK_EX)
    seen: dict[str, bool] = {}

    def change(retriever: FAQRetriever, directory: Path | None) -> None:
        probe = os.open(path, os.O_RDWR)  # the file at the path now is the one locked
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen["locked"] = False
        except BlockingIOError:
            seen["locked"] = True
        finally:
            os.close(probe)
        retriever.add([NEW], persist_to=directory)

    editing = threading.Thread(target=served.edit, args=(change,))
    editing.start()
    deadline = time.monotonic() + 20
    while open_descriptors(path) < 2:  # the edit has opened the file and waits on its lock
        assert time.monotonic() < deadline, "the edit never opened the lock file"
        time.sleep(0.01)
    path.unlink()  # the shutting-down process removes the file while the edit waits on it
    os.close(holder)
    editing.join(timeout=20)
    assert not editing.is_alive() and seen == {"locked": True}
    assert "repay" in FAQRetriever.load(saved, model=HashEncoder()).corpus.ids
