"""Staging, publishing behind a gate, and gap proposals in the store of record, on SQLite and
PostgreSQL: staged content is never served, a publish is one revision or nothing, a publish
racing an edit never half-writes, and a proposal's decision is final."""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.store_support import small_corpus, store_with_small_corpus  # noqa: F401 (fixture)
from walletfaq import StoreConflictError, StoreError
from walletfaq.cli import main
from walletfaq.data.corpus import MAX_ALT_QUESTIONS
from walletfaq.data.ids import id_problem
from walletfaq.errors import CorpusError
from walletfaq.store import (
    Change,
    NewProposal,
    PublishConflictError,
    Store,
    UnknownProposalError,
    open_store,
)

NEW = {"id": "new", "category": "money", "question": "新问题", "answer": "新答案。"}


def _answer(store: Store, entry_id: str, answer: str) -> Change:
    return Change.update(dataclasses.replace(store.entry(entry_id), answer=answer))


# --- staging -----------------------------------------------------------------------------


def test_staged_changes_are_not_served_until_published(store: Store) -> None:
    store.stage([Change.add(NEW), Change.remove("q2")], author="bob")
    assert store.head() == 1
    assert store.entries().entries == small_corpus().entries
    assert store.changes_since(1) == ()


def test_staged_changes_are_listed_in_staging_order(store: Store) -> None:
    store.stage([Change.add(NEW)], author="bob", reason="new topic")
    store.stage([Change.remove("q2")], author="carol")
    staged = store.staged()
    assert [(s.op, s.entry_id, s.author, s.base_revision) for s in staged] == [
        ("put", "new", "bob", 1),
        ("delete", "q2", "carol", 1),
    ]
    assert staged[0].entry is not None and staged[0].entry.question == "新问题"
    assert staged[0].reason == "new topic" and staged[0].position < staged[1].position


def test_the_staged_corpus_is_the_head_with_the_staged_changes_applied(store: Store) -> None:
    store.stage([_answer(store, "q3", "改了"), Change.add(NEW), Change.remove("q1")], author="b")
    corpus = store.staged_corpus()
    assert corpus.ids == ("q2", "q3", "q4", "q5", "new")
    assert corpus["q3"].answer == "改了"


def test_an_entry_removed_and_added_again_while_staged_keeps_its_place(store: Store) -> None:
    store.stage([Change.remove("q2")], author="bob")
    store.stage([Change.add({**store.entry("q2").to_dict(), "answer": "回来了。"})], author="bob")
    assert store.staged_corpus().ids == ("q1", "q2", "q3", "q4", "q5")
    store.publish(author="dora")
    assert store.entries().ids == ("q1", "q2", "q3", "q4", "q5")


def test_stage_checks_each_change_against_the_head_plus_what_is_staged(store: Store) -> None:
    store.stage([Change.add(NEW), Change.remove("q5")], author="bob")
    with pytest.raises(StoreError, match="entry 'new' already exists"):
        store.stage([Change.add(NEW)], author="bob")
    with pytest.raises(StoreError, match="no entry 'q5' to remove"):
        store.stage([Change.remove("q5")], author="bob")
    with pytest.raises(StoreError, match="no entry 'ghost' to remove"):
        store.stage([Change.remove("ghost")], author="bob")
    store.stage([Change.update({**NEW, "answer": "再改。"})], author="bob")  # staged: updatable
    assert store.staged_corpus()["new"].answer == "再改。"


def test_a_refused_stage_stages_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="no entry 'ghost' to update"):
        store.stage([Change.add(NEW), Change.update({**NEW, "id": "ghost"})], author="bob")
    assert store.staged() == ()


def test_stage_needs_changes_an_author_and_a_store_with_content(store_location: str) -> None:
    with open_store(store_location, create=True) as empty:
        with pytest.raises(StoreError, match="is empty; import a corpus first"):
            empty.stage([Change.add(NEW)], author="bob")
        empty.init(small_corpus(), author="alice")
        with pytest.raises(StoreError, match="no changes to stage"):
            empty.stage([], author="bob")
        with pytest.raises(StoreError, match="needs an author"):
            empty.stage([Change.add(NEW)], author="")


def test_discard_staged_empties_the_staging_table(store: Store) -> None:
    store.stage([Change.add(NEW), Change.remove("q1")], author="bob")
    assert store.discard_staged() == 2
    assert store.staged() == () and store.staged_corpus().entries == small_corpus().entries


# --- publishing --------------------------------------------------------------------------


def test_publish_writes_every_staged_change_as_one_revision(store: Store) -> None:
    store.stage([Change.add(NEW)], author="bob")
    store.stage([Change.remove("q2"), _answer(store, "q1", "新的")], author="carol")
    expected = store.staged_corpus().entries
    revision = store.publish(author="dora", reason="weekly", expected_head=1)
    assert (revision.number, revision.kind, revision.changes, revision.forced) == (
        2,
        "publish",
        3,
        False,
    )
    assert store.entries().entries == expected
    assert store.staged() == ()
    assert store.log()[-1].reason == "weekly"


def test_a_forced_publish_is_recorded_in_the_revision_and_shown_by_store_log(
    store: Store, store_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store.stage([Change.remove("q4")], author="bob")
    store.publish(author="dora", reason="gate refused, urgent", forced=True)
    assert store.log()[-1].forced and store.log()[-1].to_dict()["forced"] is True
    assert not store.log()[0].forced
    assert main(["store", "log", "--store", store_location]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "publish (forced past its gate), 1 entries  gate refused, urgent" in last


def test_publish_with_nothing_staged_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="nothing is staged"):
        store.publish(author="dora")
    assert store.head() == 1


def test_staged_changes_that_change_nothing_are_not_published(store: Store) -> None:
    store.stage([Change.add(NEW)], author="bob")
    store.stage([Change.remove("new")], author="bob")
    with pytest.raises(StoreError, match="leave revision 1's content as it is"):
        store.publish(author="dora")
    assert store.head() == 1 and len(store.staged()) == 2


def test_publish_after_the_head_moved_is_a_conflict_and_writes_nothing(store: Store) -> None:
    store.stage([Change.add(NEW)], author="bob")
    store.apply([_answer(store, "q5", "别人的修改")], author="eve")
    with pytest.raises(PublishConflictError, match="moved from revision 1, .* to revision 2") as e:
        store.publish(author="dora", expected_head=1)
    assert isinstance(e.value, StoreConflictError)
    assert store.head() == 2 and "new" not in store.entries()
    assert len(store.staged()) == 1


def test_publishing_over_an_entry_edited_since_it_was_staged_is_a_conflict(store: Store) -> None:
    store.stage([_answer(store, "q1", "staged answer")], author="bob")
    store.apply([_answer(store, "q1", "eve's answer")], author="eve")
    with pytest.raises(StoreConflictError, match="'q1' changed in revision 2, after revision 1"):
        store.publish(author="dora")
    assert store.entry("q1").answer == "eve's answer" and store.head() == 2
    assert len(store.staged()) == 1


def _race_publish_and_apply(store: Store, head: int, n: int) -> str:
    """A publish based on ``head`` and an edit of another entry, started at the same instant;
    how the publish ended (``won`` or ``conflict``)."""
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def publisher() -> None:
        barrier.wait()
        try:
            store.publish(author="dora", expected_head=head)
            outcome["publish"] = "won"
        except StoreConflictError:
            outcome["publish"] = "conflict"

    def editor() -> None:
        barrier.wait()
        store.apply([_answer(store, "q3", f"edit {n}")], author="eve")
        outcome["apply"] = "done"

    threads = [threading.Thread(target=publisher), threading.Thread(target=editor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcome.get("apply") == "done"
    return outcome["publish"]


def test_a_publish_racing_an_apply_is_all_or_nothing(store: Store) -> None:
    for n in range(4):
        store.discard_staged()
        head = store.head()
        store.stage([Change.add({**NEW, "id": f"s{n}"}), _answer(store, "q2", f"s{n}")], author="b")
        outcome = _race_publish_and_apply(store, head, n)
        published = f"s{n}" in store.entries()
        assert published == (store.entry("q2").answer == f"s{n}")  # both changes or neither
        if outcome == "won":
            assert published and store.staged() == () and store.head() == head + 2
            assert "publish" in [r.kind for r in store.log()[-2:]]
        else:
            assert not published and len(store.staged()) == 2 and store.head() == head + 1


IDS = [f"q{n}" for n in range(1, 9)]  # q1..q5 exist at revision 1
STAGED = st.tuples(
    st.sampled_from(["add", "update", "remove"]), st.sampled_from(IDS), st.integers(0, 9)
)


def _change(op: str, entry_id: str, version: int) -> Change:
    if op == "remove":
        return Change.remove(entry_id)
    entry = {
        "id": entry_id,
        "category": "c",
        "question": f"问{entry_id}",
        "answer": f"答{version}。",
    }
    return Change.add(entry) if op == "add" else Change.update(entry)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(STAGED, min_size=1, max_size=3, unique_by=lambda c: c[1]), max_size=6))
def test_publishing_gives_the_staged_corpus_and_stage_refuses_what_a_reference_refuses(
    batches: list[list[tuple[str, str, int]]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(str(Path(folder) / "faq.db"), create=True)
        store.init(small_corpus(), author="alice")
        held = set(store.entries().ids)  # the reference: ids held or staged
        for batch in batches:
            after = set(held)
            refused = False
            for op, entry_id, _version in batch:
                refused = refused or ((entry_id in after) == (op == "add"))
                (after.discard if op == "remove" else after.add)(entry_id)
            try:
                store.stage([_change(*c) for c in batch], author="gen")
            except StoreError:
                assert refused
                continue
            assert not refused
            held = after
        assert set(store.staged_corpus().ids) == held
        expected = store.staged_corpus().entries
        refusal = (
            "nothing is staged"
            if not store.staged()
            else "would remove every entry"
            if not expected
            else "leave revision 1's content as it is"
            if {e.id: e for e in expected} == {e.id: e for e in small_corpus()}
            else None
        )
        if refusal is None:
            store.publish(author="gen")
            assert store.entries().entries == expected and store.staged() == ()
        else:
            with pytest.raises(StoreError, match=refusal):
                store.publish(author="gen")
            assert store.head() == 1
        store.close()


# --- gap proposals -----------------------------------------------------------------------


def _add_alts(store: Store, *questions: str, target: str = "q1") -> str:
    (proposal,) = store.add_proposals([NewProposal("add_alts", questions, target=target)])
    return proposal.id


def _new_entry(store: Store, suggested: str = "怎么开发票") -> str:
    questions = (suggested, "开发票在哪里", "发票怎么开")
    (proposal,) = store.add_proposals(
        [NewProposal("new_entry", questions, suggested_question=suggested)]
    )
    return proposal.id


def test_proposals_are_recorded_open_with_masked_deduplicated_questions(store: Store) -> None:
    added = store.add_proposals(
        [
            NewProposal("add_alts", ("手机13812345678换了", "问题1咋办", "问题1咋办"), target="q1"),
            NewProposal("new_entry", ("怎么开发票",), suggested_question="怎么开发票"),
        ]
    )
    assert [p.status for p in added] == ["open", "open"]
    assert added[0].questions == ("手机[手机号]换了", "问题1咋办")
    assert store.proposals() == added  # in the order given
    assert store.proposal(added[1].id) == added[1]


@pytest.mark.parametrize(
    ("proposal", "message"),
    [
        (NewProposal("add_alts", ("x问",)), "add_alts: name the entry to add to"),
        (NewProposal("new_entry", ("x问",)), "new_entry: give the new entry's question"),
        (NewProposal("new_entry", ("x问",), "x问", target="q1"), "new_entry: it has no target"),
        (NewProposal("merge", ("x问",), target="q1"), "kind must be one of add_alts, new_entry"),  # type: ignore[arg-type]
        (NewProposal("add_alts", (), target="q1"), "has 0 questions; give 1 to 1,000"),
        (NewProposal("add_alts", ("长" * 2001,), target="q1"), "2,001 characters"),
        (NewProposal("add_alts", ("x问",), target="Q1"), "target is not a valid entry id"),
    ],
)
def test_an_invalid_proposal_is_refused_and_nothing_is_recorded(
    store: Store, proposal: NewProposal, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        store.add_proposals([NewProposal("add_alts", ("fine",), target="q1"), proposal])
    assert store.proposals() == ()


def test_accepting_add_alts_adds_the_new_questions_as_alt_questions(store: Store) -> None:
    pid = _add_alts(store, "问题1的另一种问法", "问题1该咋整", "问题1咋弄")
    decided = store.decide_proposal(pid, True, author="carol")
    entry = store.entry("q1")
    assert entry.alt_questions == ("问题1的另一种问法", "question 1", "问题1该咋整", "问题1咋弄")
    assert (decided.status, decided.decided_by, decided.revision) == ("accepted", "carol", 2)
    assert decided.decided_at is not None
    assert (store.log()[-1].kind, store.log()[-1].changes) == ("proposal", 1)


def test_accepting_add_alts_whose_questions_the_entry_has_is_refused(store: Store) -> None:
    pid = _add_alts(store, "问题1怎么办", "question 1")
    with pytest.raises(StoreError, match="already among the questions of entry 'q1'"):
        store.decide_proposal(pid, True, author="carol")
    assert store.proposal(pid).status == "open" and store.head() == 1


def test_accepting_add_alts_past_the_alt_question_limit_is_refused(store: Store) -> None:
    full = [f"问法{n}" for n in range(MAX_ALT_QUESTIONS - 1)]
    store.apply(
        [Change.update({**store.entry("q2").to_dict(), "alt_questions": full})], author="bob"
    )
    pid = _add_alts(store, "新问法甲", "新问法乙", target="q2")
    with pytest.raises(StoreError, match="has 999 alt questions; adding 2 would pass the limit"):
        store.decide_proposal(pid, True, author="carol")
    assert store.head() == 2


def test_accepting_add_alts_for_a_removed_entry_is_refused(store: Store) -> None:
    pid = _add_alts(store, "问题5咋办", target="q5")
    store.apply([Change.remove("q5")], author="bob")
    with pytest.raises(StoreError, match="'q5', the target of proposal .* is not in the store"):
        store.decide_proposal(pid, True, author="carol")


def test_accepting_new_entry_without_an_answer_is_refused_saying_so(store: Store) -> None:
    pid = _new_entry(store)
    with pytest.raises(StoreError, match="needs its answer, written by a person: pass answer="):
        store.decide_proposal(pid, True, author="carol")
    assert store.proposal(pid).status == "open"


def test_accepting_new_entry_creates_an_entry_with_a_fresh_valid_id(store: Store) -> None:
    pid = _new_entry(store)
    decided = store.decide_proposal(
        pid, True, author="carol", answer="在账单详情页点“开发票”。", category="fees"
    )
    (added,) = store.diff(1, 2).added
    assert id_problem(added.entry_id) is None and added.entry_id.startswith("gap-")
    assert added.after is not None
    assert (added.after.question, added.after.category) == ("怎么开发票", "fees")
    assert added.after.alt_questions == ("开发票在哪里", "发票怎么开")
    assert decided.revision == 2


def test_two_new_entries_from_one_question_get_distinct_ids(store: Store) -> None:
    first, second = _new_entry(store), _new_entry(store)
    store.decide_proposal(first, True, author="carol", answer="答一。")
    store.decide_proposal(second, True, author="carol", answer="答二。")
    new_ids = [i for i in store.entries().ids if i.startswith("gap-")]
    assert len(set(new_ids)) == 2 and new_ids[1] == f"{new_ids[0]}-2"


def test_a_new_entry_breaking_a_corpus_rule_is_refused(store: Store) -> None:
    pid = _new_entry(store)
    with pytest.raises(CorpusError, match="answer"):
        store.decide_proposal(pid, True, author="carol", answer="长" * 20_001)
    assert store.proposal(pid).status == "open"


def test_answer_and_category_are_refused_for_anything_but_a_new_entry(store: Store) -> None:
    pid = _add_alts(store, "问题1咋整")
    with pytest.raises(StoreError, match="answer and category are for accepting a new_entry"):
        store.decide_proposal(pid, True, author="carol", answer="答。")


def test_accepting_with_stage_stages_the_change_and_publish_records_its_revision(
    store: Store,
) -> None:
    pid = _add_alts(store, "问题1咋整")
    staged = store.decide_proposal(pid, True, author="carol", stage=True)
    assert (staged.status, staged.revision, store.head()) == ("accepted", None, 1)
    (change,) = store.staged()
    assert change.proposal_id == pid and change.entry is not None
    assert "问题1咋整" in change.entry.alt_questions
    revision = store.publish(author="dora")
    assert store.proposal(pid).revision == revision.number
    assert "问题1咋整" in store.entry("q1").alt_questions


def test_a_staged_acceptance_builds_on_what_is_already_staged(store: Store) -> None:
    store.stage([_answer(store, "q1", "staged answer")], author="bob")
    store.decide_proposal(_add_alts(store, "问题1咋整"), True, author="carol", stage=True)
    q1 = store.staged_corpus()["q1"]
    assert q1.answer == "staged answer" and "问题1咋整" in q1.alt_questions


def test_discarding_a_staged_acceptance_reopens_the_proposal(store: Store) -> None:
    pid = _add_alts(store, "问题1咋整")
    store.decide_proposal(pid, True, author="carol", stage=True)
    store.discard_staged()
    reopened = store.proposal(pid)
    assert (reopened.status, reopened.decided_by, reopened.decided_at) == ("open", None, None)


def test_rejecting_records_who_decided_and_changes_no_content(store: Store) -> None:
    pid = _new_entry(store)
    rejected = store.decide_proposal(pid, False, author="carol")
    assert (rejected.status, rejected.decided_by, rejected.revision) == ("rejected", "carol", None)
    assert store.head() == 1 and store.staged() == ()


def test_deciding_a_decided_proposal_is_refused(store: Store) -> None:
    pid = _new_entry(store)
    store.decide_proposal(pid, False, author="carol")
    with pytest.raises(StoreError, match=f"proposal {pid} was already rejected by carol at"):
        store.decide_proposal(pid, True, author="dora", answer="答。")
    assert store.proposal(pid).status == "rejected" and store.head() == 1


def test_an_unknown_proposal_is_an_error_naming_it(store: Store) -> None:
    with pytest.raises(UnknownProposalError, match="no proposal 'prop-000000000000'"):
        store.decide_proposal("prop-000000000000", False, author="carol")
    with pytest.raises(StoreError, match="the proposal id 'a b' is not valid: it must be 1 to 64"):
        store.proposal("a b")


def test_proposals_filter_by_status(store: Store) -> None:
    accepted, rejected, left = _add_alts(store, "问题1咋整"), _new_entry(store), _new_entry(store)
    store.decide_proposal(accepted, True, author="carol")
    store.decide_proposal(rejected, False, author="carol")
    assert [p.id for p in store.proposals("open")] == [left]
    assert [p.id for p in store.proposals("accepted")] == [accepted]
    with pytest.raises(StoreError, match="status must be one of open, accepted, rejected"):
        store.proposals("maybe")
