"""Property-based tests: whatever the input, a clean result or one of our errors.

- the corpus loader, on generated malformed JSONL: a :class:`Corpus` or :class:`CorpusError`;
- ``ask``/``ask_batch``, on arbitrary Unicode, sizes and ``k``: hits with scores in [0, 1]
  (cosines of non-negative vectors here) or :class:`QueryError`;
- ``load`` of a saved index with bytes flipped, files truncated or fields changed:
  :class:`IndexFormatError`/:class:`IndexMismatchError`, or exactly the original answers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from walletfaq import (
    Corpus,
    CorpusError,
    FAQRetriever,
    IndexFormatError,
    IndexMismatchError,
    QueryError,
    load_corpus,
)

from .conftest import TINY_ENTRIES, HashEncoder

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=40)  # surrogates too
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _mutated_record() -> st.SearchStrategy[bytes]:
    def mutate(entry: dict[str, object], key: str, value: object) -> bytes:
        changed = dict(entry)
        changed[key] = value
        return json.dumps(changed, ensure_ascii=False).encode("utf-8", "surrogatepass")

    fields = st.sampled_from(["id", "category", "question", "answer", "alt_questions", "x"])
    return st.builds(mutate, st.sampled_from(TINY_ENTRIES), fields, JSON_VALUES)


LINES = st.lists(
    st.one_of(
        st.binary(max_size=60),
        ANY_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
        JSON_VALUES.map(
            lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        _mutated_record(),
        st.sampled_from(TINY_ENTRIES).map(
            lambda entry: json.dumps(entry, ensure_ascii=False).encode()
        ),
    ),
    max_size=6,
)


@SETTINGS
@given(lines=LINES)
def test_the_corpus_loader_gives_a_corpus_or_a_corpus_error(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "faq.jsonl"
        path.write_bytes(b"\n".join(lines))
        try:
            corpus = load_corpus(path)
        except CorpusError as error:
            assert str(error).startswith(str(path))
        else:
            assert isinstance(corpus, Corpus) and len(corpus) >= 1


@pytest.fixture(scope="module")
def retriever() -> FAQRetriever:
    return FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=HashEncoder())


@SETTINGS
@given(question=ANY_TEXT | st.text(max_size=3000), k=st.integers(-2, 30))
def test_ask_gives_scored_hits_or_a_query_error(retriever, question: str, k: int) -> None:
    try:
        hits = retriever.ask(question, k=k)
    except QueryError:
        return
    assert 1 <= len(hits) <= min(k, len(retriever.corpus))
    assert len({hit.id for hit in hits}) == len(hits)
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


@SETTINGS
@given(questions=st.lists(ANY_TEXT, max_size=12), k=st.integers(1, 6))
def test_ask_batch_equals_ask_or_raises_a_query_error(retriever, questions, k: int) -> None:
    try:
        batch = retriever.ask_batch(questions, k=k)
    except QueryError:
        with pytest.raises(QueryError):
            for question in questions:
                retriever.ask(question, k=k)
        return
    assert batch == [retriever.ask(question, k=k) for question in questions]


QUESTIONS = ["登不上去", "怎么退款", "收费吗", "防诈骗"]


@pytest.fixture(scope="module")
def saved_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[object]]:
    contacts_free = FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=HashEncoder())
    path = contacts_free.save(tmp_path_factory.mktemp("prop") / "idx")
    return path, [contacts_free.ask(q, k=5) for q in QUESTIONS]


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.integers(0, 10**6), min_size=1, max_size=50)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("field"), st.tuples(ANY_TEXT, JSON_VALUES)),
)


@SETTINGS
@given(name=st.sampled_from(["index.faiss", "metadata.json", "manifest.json"]), mutation=MUTATIONS)
def test_a_mutated_index_is_refused_or_answers_exactly_as_saved(
    saved_index, name: str, mutation: tuple[str, object]
) -> None:
    original, expected = saved_index
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(shutil.copytree(original, Path(folder) / "idx"))
        _mutate(copy / name, *mutation)
        try:
            loaded = FAQRetriever.load(copy, model=HashEncoder())
        except (IndexFormatError, IndexMismatchError):
            return
        assert [loaded.ask(q, k=5) for q in QUESTIONS] == expected


def _mutate(path: Path, kind: str, how: object) -> None:
    data = bytearray(path.read_bytes())
    if kind == "flip":
        for offset in how:  # type: ignore[attr-defined]
            data[offset % len(data)] ^= 1 << (offset % 8)
    elif kind == "truncate":
        del data[how % len(data) :]  # type: ignore[operator]
    elif kind == "append":
        data += how  # type: ignore[operator]
    else:
        key, value = how  # type: ignore[misc]
        try:
            parsed = json.loads(data)
        except ValueError:
            return
        parsed[key if key else "entries"] = value
        data = bytearray(json.dumps(parsed, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    path.write_bytes(bytes(data))
