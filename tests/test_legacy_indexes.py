"""Indexes saved by walletfaq before the layout-by-layer move load and answer as they did.

tests/fixtures/legacy/ was written by tests/fixtures/make_legacy_indexes.py with the code of
commit 5cd704e (a plain index, an index tuned with an adapter, and a hybrid index with BM25,
all over the tiny corpus and the hash test encoder), together with the hits that code gave.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import HashEncoder
from walletfaq import FAQRetriever, HybridRetriever

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text("utf-8"))


def _hits(retriever: FAQRetriever | HybridRetriever) -> list[list[tuple[str, float]]]:
    return [[(h.id, h.score) for h in retriever.ask(q, k=3)] for q in EXPECTED["questions"]]


def _assert_same(got: list[list[tuple[str, float]]], name: str) -> None:
    want = EXPECTED["hits"][name]
    assert [[hit_id for hit_id, _ in row] for row in got] == [
        [hit["id"] for hit in row] for row in want
    ]
    for got_row, want_row in zip(got, want, strict=True):
        for (_, score), hit in zip(got_row, want_row, strict=True):
            assert score == pytest.approx(hit["score"], abs=1e-5)


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A writable copy (loading never writes, but a test must not touch the fixtures)."""
    return Path(shutil.copytree(LEGACY, tmp_path / "legacy"))


@pytest.mark.parametrize("name", ["plain", "tuned"])
def test_an_index_saved_before_the_move_loads_and_answers_the_same(legacy: Path, name: str):
    retriever = FAQRetriever.load(legacy / name, model=HashEncoder())
    _assert_same(_hits(retriever), name)


def test_a_tuned_index_saved_before_the_move_keeps_its_adapter(legacy: Path):
    retriever = FAQRetriever.load(legacy / "tuned", model=HashEncoder())
    assert type(retriever.encoder).__name__ == "AdaptedEncoder"


def test_a_hybrid_index_saved_before_the_move_loads_and_answers_the_same(legacy: Path):
    pytest.importorskip("jieba")
    retriever = HybridRetriever.load(legacy / "hybrid", models=[HashEncoder()])
    _assert_same(_hits(retriever), "hybrid")
