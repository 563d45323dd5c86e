"""Generated edit sequences (hypothesis) against a plain dict as the reference: the store holds
what the reference holds at every revision, refuses exactly the edits the reference refuses,
and a rollback restores any revision's content."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.store_support import small_corpus
from walletfaq import StoreError
from walletfaq.data.corpus import FAQEntry
from walletfaq.store import Change, open_store

IDS = [f"q{n}" for n in range(1, 9)]  # q1..q5 exist at revision 1; q6..q8 do not
EDIT = st.tuples(
    st.sampled_from(["add", "update", "remove"]), st.sampled_from(IDS), st.integers(0, 9)
)


def _entry(entry_id: str, version: int) -> FAQEntry:
    return FAQEntry(entry_id, "c", f"问题{entry_id}", f"答案{version}。", (f"问法{version}",))


def _change(op: str, entry_id: str, version: int) -> Change:
    if op == "remove":
        return Change.remove(entry_id)
    return getattr(Change, op)(_entry(entry_id, version))


def _reference_refuses(model: dict[str, FAQEntry], op: str, entry_id: str) -> bool:
    if op == "add":
        return entry_id in model
    return entry_id not in model


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.lists(EDIT, min_size=1, max_size=3, unique_by=lambda e: e[1]), max_size=8),
    st.data(),
)
def test_the_store_matches_a_reference_at_every_revision(edits, data) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(str(Path(folder) / "faq.db"), create=True)
        store.init(small_corpus(), author="alice")
        model = {e.id: e for e in small_corpus()}
        snapshots = {1: dict(model)}
        for batch in edits:
            after = dict(model)
            refused = False
            for op, entry_id, version in batch:
                refused = refused or _reference_refuses(after, op, entry_id)
                if op == "remove":
                    after.pop(entry_id, None)
                else:
                    after[entry_id] = _entry(entry_id, version)
            refused = refused or not after
            head = store.head()
            try:
                revision = store.apply([_change(*e) for e in batch], author="gen")
            except StoreError:
                assert refused and store.head() == head
                continue
            assert not refused and revision.number == head + 1
            model = after
            snapshots[revision.number] = dict(model)
        for number, snapshot in snapshots.items():
            assert {e.id: e for e in store.entries(number)} == snapshot
        target = data.draw(st.sampled_from(sorted(snapshots)))
        if snapshots[target] != model:
            store.rollback(target, author="gen")
            assert store.entries().entries == store.entries(target).entries
        store.close()
