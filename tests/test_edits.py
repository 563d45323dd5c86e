"""Live edits: add, update and remove entries without a rebuild.

Each edit embeds only the changed texts, and the edited retriever answers exactly like one
built from scratch from the edited corpus. Readers see the old or the new corpus, never a mix.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from walletfaq import Corpus, CorpusError, FAQRetriever, load_corpus
from walletfaq.data.contacts import contact_entries, load_bundled_contacts

from .conftest import TINY_ENTRIES, HashEncoder

QUESTIONS = ["登不上去", "怎么退款", "收费吗", "防诈骗", "信用卡还款", "充值不到账怎么办"]
NEW = {
    "id": "repay",
    "category": "money",
    "question": "怎么用钱包还信用卡",
    "answer": "在还款入口添加信用卡后还款。",
    "alt_questions": ["信用卡还款", "repay credit card"],
}


def rebuilt(entries: list[dict[str, object]], **options: object) -> FAQRetriever:
    return FAQRetriever.build(Corpus.from_entries(entries), model=HashEncoder(), **options)


def answers(retriever: FAQRetriever, category: str | None = None) -> list[object]:
    return [retriever.ask(q, k=5, category=category) for q in QUESTIONS]


@pytest.fixture
def live(tiny_corpus) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder())


def test_add_embeds_only_the_new_texts_and_equals_a_rebuild(live) -> None:
    before = live.encoder.texts_encoded
    live.add([NEW])
    assert live.encoder.texts_encoded - before == 3
    expected = rebuilt([*TINY_ENTRIES, NEW])
    assert answers(live) == answers(expected)
    assert answers(live, "money") == answers(expected, "money")
    assert live.version == 2


def test_update_replaces_in_place_and_equals_a_rebuild(live) -> None:
    changed = {**TINY_ENTRIES[2], "answer": "新的退款说明。", "alt_questions": ["退钱"]}
    before = live.encoder.texts_encoded
    assert live.update(changed) is True
    assert live.encoder.texts_encoded - before == 1  # "退钱": the question is unchanged
    entries = [*TINY_ENTRIES[:2], changed, *TINY_ENTRIES[3:]]
    assert live.corpus.ids == Corpus.from_entries(entries).ids
    assert answers(live) == answers(rebuilt(entries))


def test_update_of_an_unchanged_entry_embeds_nothing(live) -> None:
    before = live.encoder.texts_encoded
    live.update(TINY_ENTRIES[0])
    assert live.encoder.texts_encoded == before


def test_an_answer_only_change_embeds_nothing_and_equals_a_rebuild(live) -> None:
    changed = {**TINY_ENTRIES[2], "answer": "各项费用以官方说明为准。"}
    before = live.encoder.texts_encoded
    live.update(changed)
    assert live.encoder.texts_encoded == before
    entries = [*TINY_ENTRIES[:2], changed, *TINY_ENTRIES[3:]]
    assert answers(live) == answers(rebuilt(entries))
    assert live.ask("怎么退款", k=1)[0].answer == "各项费用以官方说明为准。"


def test_an_answer_change_with_answers_indexed_embeds_only_the_answer_row(tiny_corpus) -> None:
    live = FAQRetriever.build(tiny_corpus, model=HashEncoder(), index_answers=True)
    changed = {**TINY_ENTRIES[2], "answer": "各项费用以官方说明为准。"}
    before = live.encoder.texts_encoded
    live.update(changed)
    assert live.encoder.texts_encoded - before == 1
    entries = [*TINY_ENTRIES[:2], changed, *TINY_ENTRIES[3:]]
    assert answers(live) == answers(rebuilt(entries, index_answers=True))


def test_a_new_alt_question_embeds_only_that_text(live) -> None:
    changed = {**TINY_ENTRIES[0], "alt_questions": [*TINY_ENTRIES[0]["alt_questions"], "进不去"]}
    before = live.encoder.texts_encoded
    live.update(changed)
    assert live.encoder.texts_encoded - before == 1
    assert live.ask("进不去", k=1)[0].id == "login"


def test_update_with_a_new_id_adds_the_entry(live) -> None:
    assert live.update(NEW) is False
    assert live.corpus.ids[-1] == "repay"


def test_remove_equals_a_rebuild_without_the_entries(live) -> None:
    live.remove(["fees", "login"])
    remaining = [e for e in TINY_ENTRIES if e["id"] not in ("fees", "login")]
    assert answers(live) == answers(rebuilt(remaining))


def test_an_edited_answer_is_not_served_from_the_old_cache(live) -> None:
    assert live.ask("怎么退款", k=1)[0].answer == "先联系商户申请退款。"
    live.update({**TINY_ENTRIES[2], "answer": "已更新。"})
    assert live.ask("怎么退款", k=1)[0].answer == "已更新。"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.add([TINY_ENTRIES[0]]), "already exists; use update"),
        (lambda r: r.add([{"id": "x", "category": "c", "question": "q"}]), "answer"),
        (lambda r: r.add({"id": "x"}), "expected a list of entries"),
        (lambda r: r.remove(["login", "nope"]), r"unknown entry id\(s\) \['nope'\]"),
        (lambda r: r.remove([e["id"] for e in TINY_ENTRIES]), "empty corpus"),
    ],
)
def test_a_bad_edit_is_a_corpus_error_and_changes_nothing(live, edit, message) -> None:
    expected = answers(live)
    with pytest.raises(CorpusError, match=message):
        edit(live)
    assert answers(live) == expected and live.version == 1


def test_edits_are_saved_and_exported(live, tmp_path: Path) -> None:
    live.add([NEW])
    live.remove("fees")
    loaded = FAQRetriever.load(live.save(tmp_path / "idx"), model=HashEncoder())
    assert answers(loaded) == answers(live)
    exported = load_corpus(live.export(tmp_path / "faq.jsonl"))
    assert exported.entries == live.corpus.entries


def test_export_leaves_out_generated_hotline_entries_unless_asked(tiny_corpus, tmp_path) -> None:
    contacts = load_bundled_contacts()
    full = tiny_corpus.merged(contact_entries(contacts))
    live = FAQRetriever.build(full, model=HashEncoder(), contacts=contacts)
    assert load_corpus(live.export(tmp_path / "a.jsonl")).ids == tiny_corpus.ids
    everything = live.export(tmp_path / "b.jsonl", include_contacts=True)
    assert load_corpus(everything).ids == full.ids


def test_hnsw_edits_match_a_rebuild(tiny_corpus) -> None:
    live = FAQRetriever.build(tiny_corpus, model=HashEncoder(), index="hnsw")
    live.add([NEW])
    expected = rebuilt([*TINY_ENTRIES, NEW], index="hnsw")
    assert [h[0].id for h in answers(live)] == [h[0].id for h in answers(expected)]


def test_readers_never_see_half_an_edit(live) -> None:
    """Four readers ask while a writer cycles through four versions of the corpus 15 times:
    every answer equals the answer of one whole version."""
    changed = {**TINY_ENTRIES[2], "answer": "版本 B 的退款说明。"}
    versions = [
        list(TINY_ENTRIES),
        [*TINY_ENTRIES[:2], changed, *TINY_ENTRIES[3:]],
        [*TINY_ENTRIES[:2], changed, *TINY_ENTRIES[3:], NEW],
        [*TINY_ENTRIES, NEW],
    ]
    allowed = {q: [rebuilt(v).ask(q, k=5) for v in versions] for q in QUESTIONS}
    stop = threading.Event()
    seen: list[tuple[str, object]] = []

    def read() -> None:
        while not stop.is_set():
            for question in QUESTIONS:
                seen.append((question, live.ask(question, k=5)))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for _ in range(15):
        live.update(changed)
        live.add([NEW])
        live.update(TINY_ENTRIES[2])
        live.remove("repay")
    stop.set()
    for reader in readers:
        reader.join()
    assert len(seen) > len(QUESTIONS)
    for question, hits in seen:
        assert hits in allowed[question]


def test_an_edit_persisted_to_a_directory_is_saved_before_it_is_applied(
    live, tmp_path: Path
) -> None:
    saved = live.save(tmp_path / "idx")
    live.add([NEW], persist_to=saved)
    assert FAQRetriever.load(saved, model=HashEncoder()).corpus.ids == live.corpus.ids
    live.remove("repay", persist_to=saved)
    assert "repay" not in FAQRetriever.load(saved, model=HashEncoder()).corpus


def test_an_edit_whose_save_fails_is_not_applied(live, tmp_path: Path) -> None:
    from walletfaq import IndexFormatError

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("not an index")
    expected = answers(live)
    with pytest.raises(IndexFormatError):
        live.add([NEW], persist_to=tmp_path / "notes")
    assert answers(live) == expected and live.version == 1
