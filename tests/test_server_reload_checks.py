"""What the served directory holds is checked, not assumed: damaged files with an unchanged
manifest are refused (and the failure clears by itself once good content is back), and an edit
never saves over a deploy that replaced the directory while it was embedding."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402

import walletfaq.index.directory as index_directory  # noqa: E402
from walletfaq import Corpus, FAQRetriever, IndexConflictError  # noqa: E402
from walletfaq.data.contacts import load_bundled_contacts  # noqa: E402
from walletfaq.index.directory import IfUnchanged, manifest_checksum  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402
from walletfaq.service.holder import ReloadError, ServedIndex  # noqa: E402

from . import test_server_reload  # noqa: E402
from .conftest import TINY_ENTRIES, HashEncoder  # noqa: E402
from .test_server_reload import (  # noqa: E402
    ADMIN,
    NEW,
    TOKEN,
    metric,
    save_entries,
    switch,
    wait_for,
)

DEPLOYED = {**NEW, "id": "deployed", "question": "新版本里的问题"}


def save_with_contacts(directory: Path) -> Path:
    """An index with every optional data file (contacts.json too)."""
    corpus = Corpus.from_entries(TINY_ENTRIES, source="test")
    retriever = FAQRetriever.build(corpus, model=HashEncoder(), contacts=load_bundled_contacts())
    return retriever.save(directory)


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_with_contacts(tmp_path / "idx")


make_client = test_server_reload.make_client
"""Apps serving ``saved`` (the fixture of test_server_reload, over this module's ``saved``)."""


@pytest.fixture(scope="module")
def pristine_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_with_contacts(tmp_path_factory.mktemp("pristine") / "idx")


def swap_in_damaged_copy(directory: Path, name: str, damage: Callable[[Path], None]) -> None:
    """Replace ``directory`` by a copy of it with ``name`` damaged: the manifest is the same."""
    copy = directory.with_name(directory.name + ".next")
    shutil.copytree(directory, copy)
    damage(copy / name)
    directory.rename(directory.with_name(directory.name + ".good"))
    copy.rename(directory)


def served_answers(client: TestClient) -> list[str]:
    questions = ["登不上去", "怎么退款", "钱充了没到"]
    return [
        client.post("/v1/ask", json={"question": q, "k": 1}).json()["hits"][0]["id"]
        for q in questions
    ]


# ----------------------------------------------------------------------------- damaged data
@pytest.mark.parametrize("how", ["swapped in", "in place"])
@pytest.mark.parametrize("damage", [flip, truncate, delete])
@pytest.mark.parametrize("name", ["index.faiss", "metadata.json", "contacts.json"])
def test_a_damaged_file_under_the_same_manifest_is_refused_not_unchanged(
    make_client, saved, name, damage, how
) -> None:
    client = make_client()
    answers = served_answers(client)
    if how == "swapped in":
        swap_in_damaged_copy(saved, name, damage)
    else:
        damage(saved / name)
    response = client.post("/v1/reload", headers=ADMIN)
    assert response.status_code == 500
    assert (
        name in response.json()["detail"] and "still serving version 1" in response.json()["detail"]
    )
    ready = client.get("/readyz").json()
    assert ready["index_version"] == 1 and name in ready["reload_error"]
    assert metric(client.get("/metrics").text, "walletfaq_reload_failing") == 1
    assert served_answers(client) == answers


def test_hot_reload_notices_a_file_damaged_in_place(make_client, saved) -> None:
    client = make_client(reload_interval_s=0.02)
    index: ServedIndex = client.app.state.index
    flip(saved / "index.faiss")
    wait_for(lambda: index.failing, "the damaged file to be noticed")
    assert "index.faiss" in client.get("/readyz").json()["reload_error"]
    assert client.post("/v1/ask", json={"question": "怎么退款"}).status_code == 200


@pytest.mark.parametrize("restore", ["renamed back", "copied back"])
def test_the_failure_clears_by_itself_when_the_good_directory_returns(
    make_client, saved, restore
) -> None:
    client = make_client(reload_interval_s=0.02)
    index: ServedIndex = client.app.state.index
    wait_for(lambda: index.poll() is None, "the first check of the served directory")
    good = saved.with_name("idx.good")
    backup = shutil.copytree(saved, saved.with_name("idx.backup"))
    swap_in_damaged_copy(saved, "metadata.json", truncate)
    wait_for(lambda: index.failing, "the failed reload")
    shutil.rmtree(saved)
    if restore == "renamed back":
        good.rename(saved)  # the very files verified before
    else:
        shutil.copytree(backup, saved)  # equal bytes, new files
    wait_for(lambda: not index.failing, "the failure to clear without POST /v1/reload")
    assert client.get("/readyz").json()["reload_error"] is None
    assert metric(client.get("/metrics").text, "walletfaq_reload_failing") == 0
    assert client.get("/readyz").json()["index_version"] == 1  # nothing new was loaded


def test_good_content_under_a_new_manifest_also_clears_the_failure(make_client, saved) -> None:
    client = make_client(reload_interval_s=0.02)
    index: ServedIndex = client.app.state.index
    flip(saved / "contacts.json")
    wait_for(lambda: index.failing, "the failed reload")
    save_entries(saved, [*TINY_ENTRIES, NEW])
    wait_for(lambda: client.get("/readyz").json()["entries"] == 6, "the new index")
    assert not index.failing and client.get("/readyz").json()["reload_error"] is None


def test_a_touched_but_intact_directory_is_verified_and_unchanged(make_client, saved) -> None:
    client = make_client()
    index: ServedIndex = client.app.state.index
    served = index.current
    os.utime(saved / "index.faiss")  # a new time, the same bytes
    result = index.poll()
    assert result is not None and not result.changed
    assert index.current is served and not index.failing


def test_an_untouched_directory_is_hashed_once_not_at_every_check(make_client, monkeypatch) -> None:
    client = make_client()
    index: ServedIndex = client.app.state.index
    calls: list[Path] = []
    original = index_directory.verify

    def counted(directory: str | Path) -> object:
        calls.append(Path(directory))
        return original(directory)

    monkeypatch.setattr(index_directory, "verify", counted)
    assert [index.poll() is None for _ in range(6)] == [False, *[True] * 5]
    assert len(calls) == 1


def test_the_same_damaged_content_is_not_verified_again(make_client, saved) -> None:
    client = make_client()
    index: ServedIndex = client.app.state.index
    flip(saved / "index.faiss")
    with pytest.raises(ReloadError, match="index.faiss"):
        index.poll()
    assert [index.poll() for _ in range(5)] == [None] * 5
    text = client.get("/metrics").text
    assert metric(text, 'walletfaq_reloads_total{result="failed"}') == 1


# ----------------------------------------------------------------------------- edits vs deploys
class BlockingEncoder(HashEncoder):
    """A hash encoder that, once armed, blocks its next encoding until released: an edit that
    takes as long as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.blocked = threading.Event()
        self.release = threading.Event()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.armed:
            self.armed = False
            self.blocked.set()
            assert self.release.wait(20), "the test never released the encoder"
        return super()._encode(texts)


def edit_during(client: TestClient, encoder: BlockingEncoder, deploy: Callable[[], None]):
    """PUT an entry and, while the edit is embedding, run ``deploy``; the PUT's response."""
    encoder.armed = True
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(client.put, "/v1/entries/repay", json=NEW, headers=ADMIN)
        assert encoder.blocked.wait(20), "the edit never started embedding"
        try:
            deploy()
        finally:
            encoder.release.set()
        return pending.result(timeout=30)


def test_a_deploy_during_an_edit_is_kept_and_the_edit_refused(make_client, saved) -> None:
    encoder = BlockingEncoder()
    client = make_client(encoder)
    deployed = [*TINY_ENTRIES[:2], DEPLOYED]
    response = edit_during(client, encoder, lambda: save_entries(saved, deployed))
    assert response.status_code == 409
    assert "not applied" in response.json()["detail"]
    on_disk = FAQRetriever.load(saved, model=HashEncoder()).corpus.ids
    assert set(on_disk) == {"login", "topup", "deployed"}
    assert client.get("/v1/entries/deployed").status_code == 200  # the new content is served
    assert client.get("/v1/entries/repay").status_code == 404
    assert client.app.state.index.current.checksum == manifest_checksum(saved)


def test_an_edit_after_the_refused_one_applies_to_the_deployed_content(make_client, saved) -> None:
    encoder = BlockingEncoder()
    client = make_client(encoder)
    edit_during(client, encoder, lambda: save_entries(saved, [*TINY_ENTRIES[:2], DEPLOYED]))
    assert client.put("/v1/entries/repay", json=NEW, headers=ADMIN).status_code == 200
    on_disk = FAQRetriever.load(saved, model=HashEncoder()).corpus.ids
    assert set(on_disk) == {"login", "topup", "deployed", "repay"}


def test_a_release_switched_in_during_an_edit_is_kept(tmp_path) -> None:
    link = tmp_path / "current"
    link.symlink_to(save_entries(tmp_path / "v1", TINY_ENTRIES))
    release = save_entries(tmp_path / "v2", [*TINY_ENTRIES[:2], DEPLOYED])
    before = manifest_checksum(release)
    encoder = BlockingEncoder()
    retriever = FAQRetriever.load(link, model=encoder)
    settings = ServerSettings(workers=1, admin_token=TOKEN, persist_dir=link, reload_interval_s=0)
    with TestClient(create_app(retriever, settings)) as client:
        response = edit_during(client, encoder, lambda: switch(link, release))
        assert response.status_code == 409
        assert manifest_checksum(release) == before
        assert client.get("/v1/entries/deployed").status_code == 200


def test_an_edit_saved_if_unchanged_refuses_a_replaced_directory(saved) -> None:
    retriever = FAQRetriever.load(saved, model=HashEncoder())
    started_from = manifest_checksum(saved)
    save_entries(saved, [*TINY_ENTRIES[:2], DEPLOYED])
    deployed = manifest_checksum(saved)
    with pytest.raises(IndexConflictError, match="replaced by another save"):
        retriever.update(NEW, persist_to=IfUnchanged(saved, started_from))
    assert manifest_checksum(saved) == deployed  # nothing written
    assert "repay" not in retriever.corpus and retriever.version == 1  # nothing applied
    retriever.update(NEW, persist_to=IfUnchanged(saved, deployed))  # the condition holds
    assert "repay" in FAQRetriever.load(saved, model=HashEncoder()).corpus


# ----------------------------------------------------------------------------- generated damage
def same_json(path: Path, original: bytes) -> bool:
    """Whether ``path`` still holds the JSON value of ``original`` (whitespace aside)."""
    try:
        return json.loads(path.read_bytes()) == json.loads(original)
    except (OSError, ValueError):
        return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["index.faiss", "metadata.json", "contacts.json", "manifest.json"]),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    kind=st.sampled_from(["flip", "truncate", "append", "delete"]),
)
def test_no_damage_to_any_file_is_ever_taken_for_the_served_index(
    pristine_index, tmp_path_factory, name, where, kind
) -> None:
    directory = Path(shutil.copytree(pristine_index, tmp_path_factory.mktemp("d") / "idx"))
    index = ServedIndex(FAQRetriever.load(directory, model=HashEncoder()), directory)
    assert index.poll() is not None and not index.failing  # verified once
    path = directory / name
    data = path.read_bytes()
    cut = int(where * len(data))
    if kind == "flip":
        path.write_bytes(data[:cut] + bytes([data[cut] ^ 0x80]) + data[cut + 1 :])
    elif kind == "truncate":
        path.write_bytes(data[:cut])
    elif kind == "append":
        path.write_bytes(data + b" ")
    else:
        path.unlink()
    served = index.current
    if name == "manifest.json" and same_json(path, data):  # e.g. its final newline cut
        assert index.poll() is not None and not index.failing  # verified: the same content
        return
    with pytest.raises(ReloadError):
        index.poll()
    assert index.failing and index.current is served  # refused; the old index still served
    shutil.rmtree(directory)
    shutil.copytree(pristine_index, directory)  # good content back: the failure clears
    index.poll()
    assert not index.failing and index.last_error is None
