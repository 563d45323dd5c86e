"""save()/load() round-trips an index and detects any mismatch instead of using it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import walletfaq.index.directory as index_directory
from walletfaq import (
    Corpus,
    FAQRetriever,
    IndexFormatError,
    IndexMismatchError,
    IndexWriteError,
)
from walletfaq.data.contacts import contact_entries, load_bundled_contacts
from walletfaq.data.integrity import sha256_file
from walletfaq.encoders.presets import cache_dir
from walletfaq.index.directory import CONTACTS_FILE, INDEX_FILE, MANIFEST_FILE, METADATA_FILE

from .conftest import TINY_ENTRIES, HashEncoder


@pytest.fixture
def saved(tmp_path: Path, tiny_corpus, encoder) -> Path:
    return FAQRetriever.build(tiny_corpus, model=encoder).save(tmp_path / "idx")


def test_round_trip_gives_identical_answers(saved: Path, tiny_corpus, encoder) -> None:
    original = FAQRetriever.build(tiny_corpus, model=encoder)
    loaded = FAQRetriever.load(saved, model=encoder)
    for question in ["登不上去", "怎么退款", "收费吗"]:
        assert loaded.ask(question, k=5) == original.ask(question, k=5)


def test_saved_directory_holds_index_metadata_and_manifest_only(saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [
        "index.faiss",
        "manifest.json",
        "metadata.json",
    ]
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    assert manifest["format"] == "walletfaq-index" and manifest["format_version"] == 2
    assert manifest["model"] == "hash-test" and manifest["dim"] == 64
    assert manifest["entry_count"] == 5 and manifest["vector_count"] == 15
    assert len(manifest["corpus_hash"]) == 64
    assert set(manifest["files"]) == {"index.faiss", "metadata.json"}
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def test_hnsw_index_round_trips(tmp_path: Path, tiny_corpus, encoder) -> None:
    built = FAQRetriever.build(tiny_corpus, model=encoder, index="hnsw")
    loaded = FAQRetriever.load(built.save(tmp_path / "h"), model=encoder)
    assert loaded.index_spec.kind == "hnsw"
    assert loaded.ask("怎么退款", k=3) == built.ask("怎么退款", k=3)


def test_loading_with_a_different_model_is_refused(saved: Path) -> None:
    with pytest.raises(IndexMismatchError, match="built with model 'hash-test'"):
        FAQRetriever.load(saved, model=HashEncoder(salt="other weights"))


def test_loading_against_a_changed_corpus_is_refused(saved: Path, encoder) -> None:
    changed = Corpus.from_entries([*TINY_ENTRIES[:-1], {**TINY_ENTRIES[-1], "answer": "新的"}])
    with pytest.raises(IndexMismatchError, match="different corpus"):
        FAQRetriever.load(saved, model=encoder, corpus=changed)


def test_edited_metadata_is_detected(saved: Path, encoder) -> None:
    meta = json.loads((saved / METADATA_FILE).read_text())
    meta["entries"][0]["answer"] = "tampered"
    (saved / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match="metadata.json differs.*rebuild"):
        FAQRetriever.load(saved, model=encoder)


@pytest.mark.parametrize("name", ["index.faiss", "manifest.json", "metadata.json"])
def test_missing_or_corrupt_files_are_reported(saved: Path, encoder, name: str) -> None:
    (saved / name).write_bytes(b"\x00garbage")
    with pytest.raises(IndexFormatError, match="rebuild"):
        FAQRetriever.load(saved, model=encoder)
    (saved / name).unlink()
    with pytest.raises(IndexFormatError):
        FAQRetriever.load(saved, model=encoder)


def _flip_bytes(path: Path, offsets: list[int]) -> None:
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("count", [1, 7, 50])
def test_flipped_bytes_in_the_vectors_are_refused(saved: Path, encoder, count: int) -> None:
    size = (saved / INDEX_FILE).stat().st_size
    _flip_bytes(saved / INDEX_FILE, [size - 4 - 13 * i for i in range(count)])  # vector data
    with pytest.raises(IndexFormatError, match="index.faiss differs"):
        FAQRetriever.load(saved, model=encoder)


def test_edited_contacts_are_refused(tmp_path: Path, tiny_corpus, encoder) -> None:
    contacts = load_bundled_contacts()
    built = FAQRetriever.build(
        tiny_corpus.merged(contact_entries(contacts)), model=encoder, contacts=contacts
    )
    saved = built.save(tmp_path / "idx")
    path = saved / CONTACTS_FILE
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("95188", "95000"), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="contacts.json differs"):
        FAQRetriever.load(saved, model=encoder)
    path.unlink()
    with pytest.raises(IndexFormatError, match="contacts.json is missing"):
        FAQRetriever.load(saved, model=encoder)
    path.write_text(original, encoding="utf-8")
    assert FAQRetriever.load(saved, model=encoder).contacts.contacts == contacts.contacts  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "field, value",
    [
        ("index", {"kind": "hnsw", "hnsw_m": 32, "ef_construction": 200, "ef_search": 128}),
        ("vector_count", 10**12),
        ("dim", "64"),
        ("model", None),
        ("settings", {"threshold": "high"}),
    ],
)
def test_an_edited_manifest_is_refused(saved: Path, encoder, field: str, value: object) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest[field] = value
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="manifest"):
        FAQRetriever.load(saved, model=encoder)


def test_a_manifest_with_wrong_types_is_refused_even_with_a_matching_checksum(
    saved: Path, encoder
) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["entry_count"] = "five"
    manifest["checksum"] = index_directory._checksum(manifest)
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="'entry_count' should be an integer"):
        FAQRetriever.load(saved, model=encoder)


def test_an_index_of_another_kind_than_the_manifest_says_is_refused(
    saved: Path, tmp_path: Path, tiny_corpus, encoder
) -> None:
    hnsw = FAQRetriever.build(tiny_corpus, model=encoder, index="hnsw").save(tmp_path / "h")
    shutil.copy(hnsw / INDEX_FILE, saved / INDEX_FILE)
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["files"][INDEX_FILE] = sha256_file(saved / INDEX_FILE)
    manifest["checksum"] = index_directory._checksum(manifest)
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="holds a IndexHNSWFlat"):
        FAQRetriever.load(saved, model=encoder)


def test_duplicate_keys_and_deep_nesting_in_metadata_are_refused(saved: Path, encoder) -> None:
    for text in ['{"entries": [], "entries": []}', "[" * 100_000 + "]" * 100_000]:
        (saved / METADATA_FILE).write_text(text)
        manifest = json.loads((saved / MANIFEST_FILE).read_text())
        manifest["files"][METADATA_FILE] = sha256_file(saved / METADATA_FILE)
        manifest["checksum"] = index_directory._checksum(manifest)
        (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
        with pytest.raises(IndexFormatError, match="duplicate key|nested too deeply"):
            FAQRetriever.load(saved, model=encoder)


def test_unknown_format_version_is_refused(saved: Path, encoder) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="version 99 is not supported"):
        FAQRetriever.load(saved, model=encoder)


def test_answer_settings_are_saved_with_the_index(tmp_path: Path, tiny_corpus, encoder) -> None:
    built = FAQRetriever.build(tiny_corpus, model=encoder)
    built.threshold = 0.42
    built.fallback = "请联系图书馆服务台。"
    loaded = FAQRetriever.load(built.save(tmp_path / "idx"), model=encoder)
    assert loaded.threshold == 0.42 and loaded.fallback == "请联系图书馆服务台。"


def test_the_index_version_survives_save_and_load(tmp_path: Path, tiny_corpus, encoder) -> None:
    built = FAQRetriever.build(tiny_corpus, model=encoder)
    built.remove(["fees"])
    built.update({**TINY_ENTRIES[0], "answer": "重置密码。"})
    assert built.version == 3
    loaded = FAQRetriever.load(built.save(tmp_path / "idx"), model=encoder)
    assert loaded.version == 3
    loaded.remove(["safety"])
    assert FAQRetriever.load(loaded.save(tmp_path / "idx"), model=encoder).version == 4


def rewrite_metadata(saved: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Edit metadata.json and re-sign the manifest, as an older walletfaq would have written."""
    metadata = json.loads((saved / METADATA_FILE).read_text())
    change(metadata)
    (saved / METADATA_FILE).write_text(json.dumps(metadata, ensure_ascii=False))
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["files"][METADATA_FILE] = sha256_file(saved / METADATA_FILE)
    manifest["checksum"] = index_directory._checksum(manifest)
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_an_index_saved_without_a_version_loads_as_version_one(saved: Path, encoder) -> None:
    rewrite_metadata(saved, lambda metadata: metadata.pop("version"))
    assert FAQRetriever.load(saved, model=encoder).version == 1


@pytest.mark.parametrize("version", [0, -3, "2", True, 1.5])
def test_a_saved_version_that_is_not_a_positive_integer_is_refused(
    saved: Path, encoder, version: object
) -> None:
    rewrite_metadata(saved, lambda metadata: metadata.update(version=version))
    with pytest.raises(IndexFormatError, match="version must be a positive integer"):
        FAQRetriever.load(saved, model=encoder)


def test_missing_directory_says_how_to_build_one(tmp_path: Path, encoder) -> None:
    with pytest.raises(IndexFormatError, match="no such index directory"):
        FAQRetriever.load(tmp_path / "absent", model=encoder)


def test_save_replaces_an_existing_index(saved: Path, tiny_corpus, encoder) -> None:
    smaller = Corpus.from_entries(TINY_ENTRIES[:2])
    FAQRetriever.build(smaller, model=encoder).save(saved)
    assert len(FAQRetriever.load(saved, model=encoder).corpus) == 2
    assert [p.name for p in saved.parent.iterdir() if p.name.startswith(".")] == []


def test_save_refuses_to_overwrite_a_directory_that_is_not_an_index(
    tmp_path: Path, tiny_corpus, encoder
) -> None:
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(IndexFormatError, match="holds files walletfaq did not write"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_a_foreign_manifest_does_not_make_a_directory_an_index(
    tmp_path: Path, tiny_corpus, encoder
) -> None:
    """The web-app case: a manifest.json of another tool beside its sources."""
    app = tmp_path / "w"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "pwa"}')
    (app / "src" / "app.js").write_text("x")
    with pytest.raises(IndexFormatError, match=r"holds files walletfaq did not write \(src/\)"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(app)
    assert (app / "src" / "app.js").read_text() == "x"
    (app / "src" / "app.js").unlink()
    (app / "src").rmdir()
    with pytest.raises(IndexFormatError, match="manifest.json is not ours"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(app)
    assert (app / "manifest.json").read_text() == '{"name": "pwa"}'


def test_files_a_user_put_beside_an_index_block_the_save(saved: Path, tiny_corpus, encoder) -> None:
    (saved / "README.txt").write_text("my notes")
    with pytest.raises(IndexFormatError, match=r"README.txt"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(saved)
    assert (saved / "README.txt").read_text() == "my notes"
    assert FAQRetriever.load(saved, model=encoder).ask("怎么退款", k=1)[0].id == "refund"


def test_saving_over_a_file_is_refused(tmp_path: Path, tiny_corpus, encoder) -> None:
    (tmp_path / "idx").write_text("a file")
    with pytest.raises(IndexFormatError, match="not a directory"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(tmp_path / "idx")
    assert (tmp_path / "idx").read_text() == "a file"


def test_os_errors_while_saving_are_index_write_errors(tmp_path: Path, tiny_corpus, encoder):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    with pytest.raises(IndexWriteError, match="cannot write the index"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(tmp_path / "blocker" / "idx")


def test_from_corpus_reuses_the_cached_index(tiny_corpus_file: Path, encoder) -> None:
    FAQRetriever.from_corpus(tiny_corpus_file, model=encoder)
    embedded = encoder.texts_encoded
    assert embedded == 15
    again = FAQRetriever.from_corpus(tiny_corpus_file, model=encoder)
    assert encoder.texts_encoded == embedded
    assert again.ask("怎么退款", k=1)[0].id == "refund"


def test_from_corpus_rebuilds_when_the_corpus_changes(tmp_path: Path, encoder) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps(TINY_ENTRIES[0], ensure_ascii=False) + "\n", encoding="utf-8")
    assert len(FAQRetriever.from_corpus(path, model=encoder).corpus) == 1
    path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in TINY_ENTRIES), encoding="utf-8"
    )
    assert len(FAQRetriever.from_corpus(path, model=encoder).corpus) == 5


def test_a_broken_cached_index_is_rebuilt_with_a_warning(
    tiny_corpus_file: Path, encoder, caplog
) -> None:
    FAQRetriever.from_corpus(tiny_corpus_file, model=encoder)
    (cached,) = (cache_dir() / "indexes").iterdir()
    manifest = json.loads((cached / MANIFEST_FILE).read_text())
    manifest["index"]["kind"] = "hnsw"
    (cached / MANIFEST_FILE).write_text(json.dumps(manifest))
    with caplog.at_level("WARNING", logger="walletfaq"):
        again = FAQRetriever.from_corpus(tiny_corpus_file, model=encoder)
    assert again.ask("怎么退款", k=1)[0].id == "refund"
    assert "unusable" in caplog.text
    assert FAQRetriever.load(cached, model=encoder).index_spec.kind == "flat"  # replaced


def test_garbage_in_the_cache_location_is_replaced(tiny_corpus_file: Path, encoder) -> None:
    FAQRetriever.from_corpus(tiny_corpus_file, model=encoder)
    (cached,) = (cache_dir() / "indexes").iterdir()
    (cached / "index.faiss").write_bytes(b"\xff" * 64)
    (cached / "stray.txt").write_text("junk")
    assert FAQRetriever.from_corpus(tiny_corpus_file, model=encoder).ask("收费吗", k=1)[0].id
    assert not (cached / "stray.txt").exists()


def test_an_unwritable_cache_answers_from_memory_with_a_warning(
    tiny_corpus_file: Path, encoder, tmp_path: Path, monkeypatch, caplog
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file, so nothing can be created under it (root ignores chmod)")
    monkeypatch.setenv("WALLETFAQ_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level("WARNING", logger="walletfaq"):
        retriever = FAQRetriever.from_corpus(tiny_corpus_file, model=encoder)
    assert retriever.ask("怎么退款", k=1)[0].id == "refund"
    assert "answering from memory" in caplog.text
