"""The store of record, behaviour by behaviour, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from tests.store_support import small_corpus
from walletfaq import StoreConflictError, StoreError
from walletfaq.data.corpus import FAQEntry, load_bundled_corpus
from walletfaq.errors import CorpusError
from walletfaq.store import Change, Store, open_store

NEW_ENTRY = {
    "id": "new",
    "category": "money",
    "question": "新问题",
    "answer": "新答案。",
    "alt_questions": ["新的问法"],
}


@pytest.fixture
def store(store_location: str) -> Store:
    created = open_store(store_location, create=True)
    created.init(small_corpus(), author="alice", reason="first import")
    yield created
    created.close()


def _edited(entry: FAQEntry, answer: str) -> FAQEntry:
    return dataclasses.replace(entry, answer=answer)


def test_init_imports_the_bundled_corpus_as_revision_1(store_location: str) -> None:
    with open_store(store_location, create=True) as store:
        revision = store.init(load_bundled_corpus(), author="alice")
        assert revision.number == 1
        assert revision.kind == "import"
        assert revision.changes == 170
        assert store.head() == 1
        assert store.entries().entries == load_bundled_corpus().entries


def test_revision_records_utc_time_author_and_reason(store: Store) -> None:
    (first,) = store.log()
    assert (first.number, first.author, first.reason) == (1, "alice", "first import")
    assert first.created_at.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - first.created_at) < timedelta(minutes=5)


def test_apply_adds_updates_and_removes_in_one_new_revision(store: Store) -> None:
    before = store.entries()
    revision = store.apply(
        [
            Change.add(NEW_ENTRY),
            Change.update(_edited(before["q1"], "改过的答案。")),
            Change.remove("q2"),
        ],
        author="bob",
        reason="weekly review",
    )
    after = store.entries()
    assert revision.number == 2 and revision.changes == 3
    assert after.ids == ("q1", "q3", "q4", "q5", "new")
    assert after["q1"].answer == "改过的答案。"
    assert store.entries(1).entries == before.entries


def test_an_updated_entry_keeps_its_place_and_a_new_one_comes_last(store: Store) -> None:
    store.apply([Change.update(_edited(store.entry("q3"), "x"))], author="bob")
    store.apply([Change.add(NEW_ENTRY)], author="bob")
    assert store.entries().ids == ("q1", "q2", "q3", "q4", "q5", "new")


def test_log_lists_every_revision_in_order(store: Store) -> None:
    store.apply([Change.remove("q5")], author="bob", reason="obsolete")
    store.apply([Change.add(NEW_ENTRY)], author="carol")
    log = store.log()
    assert [(r.number, r.author, r.reason, r.changes) for r in log] == [
        (1, "alice", "first import", 5),
        (2, "bob", "obsolete", 1),
        (3, "carol", None, 1),
    ]


def test_history_of_an_entry_lists_its_versions_and_its_removal(store: Store) -> None:
    store.apply([Change.update(_edited(store.entry("q1"), "v2"))], author="bob")
    store.apply([Change.remove("q1")], author="bob")
    history = store.history("q1")
    assert [(v.revision, v.deleted) for v in history] == [(1, False), (2, False), (3, True)]
    assert history[1].entry is not None and history[1].entry.answer == "v2"


def test_entry_at_an_old_revision_is_its_content_then(store: Store) -> None:
    original = store.entry("q1")
    store.apply([Change.update(_edited(original, "v2"))], author="bob")
    assert store.entry("q1", revision=1) == original
    assert store.entry("q1").answer == "v2"


def test_diff_names_added_removed_and_changed_entries(store: Store) -> None:
    store.apply(
        [
            Change.add(NEW_ENTRY),
            Change.remove("q2"),
            Change.update(_edited(store.entry("q3"), "z")),
        ],
        author="bob",
    )
    diff = store.diff(1, 2)
    assert [d.entry_id for d in diff.added] == ["new"]
    assert [d.entry_id for d in diff.removed] == ["q2"]
    assert [(d.entry_id, d.after.answer if d.after else None) for d in diff.changed] == [
        ("q3", "z")
    ]
    assert not store.diff(2, 2)


def test_rollback_writes_a_new_revision_equal_in_content_to_the_target(store: Store) -> None:
    original = store.entries()
    store.apply([Change.remove("q2"), Change.add(NEW_ENTRY)], author="bob")
    store.apply([Change.update(_edited(store.entry("q1"), "bad edit"))], author="bob")
    revision = store.rollback(1, author="carol", reason="undo the bad edits")
    assert (revision.number, revision.kind, revision.restores) == (4, "rollback", 1)
    assert store.entries().entries == original.entries  # same content, same order
    assert [r.number for r in store.log()] == [1, 2, 3, 4]  # history is kept


def test_rollback_to_the_latest_content_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="nothing to roll back"):
        store.rollback(1, author="carol")


def test_rollback_to_a_missing_revision_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="no revision 9"):
        store.rollback(9, author="carol")


def test_change_feed_lists_each_changed_entry_after_a_revision(store: Store) -> None:
    store.apply([Change.update(_edited(store.entry("q1"), "v2"))], author="bob")
    store.apply([Change.remove("q2"), Change.add(NEW_ENTRY)], author="bob")
    feed = store.changes_since(1)
    assert [(c.revision, c.entry_id, c.deleted) for c in feed] == [
        (2, "q1", False),
        (3, "q2", True),
        (3, "new", False),
    ]
    assert store.changes_since(3) == ()


def test_change_feed_applied_to_an_old_copy_gives_the_latest_content(store: Store) -> None:
    copy = {e.id: e for e in store.entries(1)}
    store.apply([Change.update(_edited(store.entry("q4"), "v2"))], author="bob")
    store.apply([Change.remove("q5"), Change.add(NEW_ENTRY)], author="bob")
    for change in store.changes_since(1):
        if change.entry is None:
            del copy[change.entry_id]
        else:
            copy[change.entry_id] = change.entry
    assert sorted(copy.values(), key=lambda e: e.id) == sorted(store.entries(), key=lambda e: e.id)


def test_change_feed_batches_never_split_a_revision(store: Store) -> None:
    store.apply([Change.remove("q1"), Change.remove("q2")], author="bob")
    store.apply([Change.remove("q3")], author="bob")
    assert [c.revision for c in store.changes_since(1, limit=2)] == [2, 2]
    assert [c.revision for c in store.changes_since(1, limit=1)] == [2, 2]  # the first, whole
    assert [c.revision for c in store.changes_since(2, limit=1)] == [3]


def test_change_feed_from_beyond_the_head_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="ahead of its store"):
        store.changes_since(5)


def test_if_match_with_the_current_revision_succeeds(store: Store) -> None:
    store.apply([Change.update(_edited(store.entry("q2"), "v2"))], author="bob")
    revision = store.apply(
        [Change.update(_edited(store.entry("q1"), "v3"))], author="carol", if_match=2
    )
    assert revision.number == 3


def test_if_match_older_than_the_entrys_last_change_is_a_conflict(store: Store) -> None:
    store.apply([Change.update(_edited(store.entry("q1"), "bob's"))], author="bob")
    with pytest.raises(StoreConflictError) as caught:
        store.apply(
            [Change.update(_edited(store.entry("q1"), "carol's"))], author="carol", if_match=1
        )
    assert (caught.value.entry_id, caught.value.if_match, caught.value.changed_at) == ("q1", 1, 2)
    assert store.entry("q1").answer == "bob's" and store.head() == 2


def test_a_failed_change_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="no entry 'missing' to update"):
        store.apply(
            [Change.remove("q1"), Change.update({**NEW_ENTRY, "id": "missing"})], author="bob"
        )
    assert store.head() == 1 and "q1" in store.entries()


def test_adding_an_existing_id_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="already exists"):
        store.apply([Change.add({**NEW_ENTRY, "id": "q1"})], author="bob")


def test_removing_every_entry_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="at least one"):
        store.apply([Change.remove(f"q{n}") for n in range(1, 6)], author="bob")


def test_an_entry_is_validated_like_a_corpus_line(store: Store) -> None:
    with pytest.raises(CorpusError, match="answer"):
        Change.add({**NEW_ENTRY, "answer": "   "})


def test_a_change_needs_an_author(store: Store) -> None:
    with pytest.raises(StoreError, match="author"):
        store.apply([Change.remove("q1")], author=" ")


def test_init_into_a_store_with_revisions_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="already holds 1 revision"):
        store.init(small_corpus(), author="alice")


def test_reopening_sees_the_same_store(store: Store, store_location: str) -> None:
    store.apply([Change.remove("q1")], author="bob")
    with open_store(store_location) as again:
        assert again.head() == 2
        assert again.entries().ids == ("q2", "q3", "q4", "q5")


def test_an_entry_id_outside_the_id_grammar_is_refused_before_the_store_sees_it(
    store: Store,
) -> None:
    with pytest.raises(CorpusError, match="more than 64"):
        store.apply([Change.add({**NEW_ENTRY, "id": "x" * 501})], author="bob")
    assert store.head() == 1
