"""save()/load() round-trips an index and detects any mismatch instead of using it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walletfaq import (
    Corpus,
    FAQRetriever,
    IndexFormatError,
    IndexMismatchError,
)
from walletfaq.store import MANIFEST_FILE, METADATA_FILE

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
    assert manifest["format_version"] == 1
    assert manifest["model"] == "hash-test" and manifest["dim"] == 64
    assert manifest["entry_count"] == 5 and manifest["vector_count"] == 15
    assert len(manifest["corpus_hash"]) == 64


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
    with pytest.raises(IndexFormatError, match="do not match the manifest's corpus hash"):
        FAQRetriever.load(saved, model=encoder)


@pytest.mark.parametrize("name", ["index.faiss", "manifest.json", "metadata.json"])
def test_missing_or_corrupt_files_are_reported(saved: Path, encoder, name: str) -> None:
    (saved / name).write_bytes(b"\x00garbage")
    with pytest.raises(IndexFormatError, match="rebuild"):
        FAQRetriever.load(saved, model=encoder)
    (saved / name).unlink()
    with pytest.raises(IndexFormatError):
        FAQRetriever.load(saved, model=encoder)


def test_unknown_format_version_is_refused(saved: Path, encoder) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="format_version 99 is not supported"):
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
    with pytest.raises(IndexFormatError, match="not a walletfaq index"):
        FAQRetriever.build(tiny_corpus, model=encoder).save(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


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
