"""Proposals for a gap cluster: which one (:func:`propose`) and what accepting it writes
(:func:`apply_proposal`).

A proposal never edits anything: :func:`apply_proposal` returns the entry to write, and the
caller (the store, the service, a notebook) decides where it is written, e.g. with
``retriever.update(entry)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from walletfaq.data.corpus import MAX_ALT_QUESTIONS, Corpus, FAQEntry
from walletfaq.data.normalize import clean_text
from walletfaq.errors import CorpusError, GapError
from walletfaq.quality.gaps.report import MAX_REPRESENTATIVES, AddAlts, GapCluster, NewEntry
from walletfaq.retrieval.retriever import FAQRetriever

DEFAULT_BAR_DELTA = -0.045
"""How far below the retriever's threshold a cluster's centroid may score and still belong to
its nearest entry (see :func:`belongs_to_entry`); negative: the bar is above the threshold.

Measured with e5-small (threshold 0.913) by ``benchmarks/gaps.py`` on 40 bundled entries,
each once made covered-in-other-words (its alt questions removed from the corpus and asked)
and once uncovered (removed): a centroid averages its questions' vectors and scores higher
than any of them (covered p50 0.967, uncovered p50 0.951). The bar 0.958 (threshold + 0.045)
gave the most right proposals: 80 % add_alts to the right entry for the covered, 78 %
new_entry for the uncovered; 0.005 lower or higher trades 18-20 points of one for the other,
so the bar is specific to the model (re-measure it for another)."""

DEFAULT_MIN_SHARE = 0.0
"""The share of a cluster's members whose own best hit is the nearest entry must exceed this
for the cluster to belong to the entry (0: at least one member).

Measured as :data:`DEFAULT_BAR_DELTA`: a majority (0.5) left 18 % right add_alts for the
covered (95 % right for the uncovered), 0.25 73 % / 80 %, 0 80 % / 78 %: questions that
missed a covered entry hit other entries one by one, while their centroid is near it."""


def question_key(retriever: FAQRetriever) -> Callable[[str], str]:
    """The form under which two questions are the same question to ``retriever``: cleaned
    and normalised as a user's question is before encoding (so a Traditional-script copy of
    an existing alt question is a duplicate)."""
    return lambda text: retriever.normalizer(clean_text(text))


def generated_entry_ids(retriever: FAQRetriever) -> frozenset[str]:
    """Ids of the hotline entries generated from the retriever's contacts directory (they are
    regenerated from ``contacts.json``: never the target of new alt questions)."""
    contacts = retriever.contacts
    return frozenset(c.entry_id for c in contacts) if contacts is not None else frozenset()


def belongs_to_entry(
    retriever: FAQRetriever,
    entry_id: str,
    score: float,
    share: float,
    bar_delta: float = DEFAULT_BAR_DELTA,
    min_share: float = DEFAULT_MIN_SHARE,
) -> bool:
    """Whether a cluster belongs to the existing entry ``entry_id``: its centroid scores at
    least ``retriever.threshold - bar_delta`` against the entry, more than ``min_share`` of its
    members have the entry as their own best hit (``share``), and the entry is not a generated
    hotline entry."""
    return (
        entry_id not in generated_entry_ids(retriever)
        and score >= retriever.threshold - bar_delta
        and share > min_share
    )


def propose(
    retriever: FAQRetriever,
    ordered: Sequence[str],
    entry_id: str,
    score: float,
    share: float,
    bar_delta: float = DEFAULT_BAR_DELTA,
    min_share: float = DEFAULT_MIN_SHARE,
) -> AddAlts | NewEntry:
    """The proposal for a cluster whose member questions are ``ordered`` (most central
    first), nearest to ``entry_id`` with centroid ``score``, ``share`` of members' own best hit
    being that entry.

    :class:`AddAlts` when :func:`belongs_to_entry`: the up to :data:`MAX_REPRESENTATIVES` most
    central distinct questions the entry does not have yet (as question or alt question).
    Else :class:`NewEntry`: the most central question, and every other distinct question.
    """
    key = question_key(retriever)
    if belongs_to_entry(retriever, entry_id, score, share, bar_delta, min_share):
        entry = retriever.entry(entry_id)
        known = {key(text) for text in entry.questions()}
        fresh = _distinct(ordered, key, known)
        return AddAlts(entry_id=entry_id, questions=tuple(fresh[:MAX_REPRESENTATIVES]))
    first, *others = _distinct(ordered, key, set())
    return NewEntry(suggested_question=first, questions=tuple(others))


def _distinct(texts: Iterable[str], key: Callable[[str], str], known: set[str]) -> list[str]:
    """``texts`` in order, without those whose key is in ``known`` or repeats an earlier one."""
    seen = set(known)
    kept = []
    for text in texts:
        form = key(text)
        if form not in seen:
            seen.add(form)
            kept.append(text.strip())
    return kept


def apply_proposal(
    retriever: FAQRetriever,
    cluster: GapCluster,
    *,
    entry_id: str | None = None,
    category: str | None = None,
    answer: str | None = None,
) -> FAQEntry:
    """The entry that accepting ``cluster``'s proposal writes (nothing is written here).

    - :class:`AddAlts`: the current entry with the proposal's questions appended as alt
      questions, leaving out those it already has (as question or alt question, compared as
      :func:`question_key` does). ``entry_id``/``category``/``answer`` must not be given.
    - :class:`NewEntry`: a new entry with the id ``entry_id``, ``category`` and ``answer``
      (written by a person: all three required), the suggested question as its question and
      the proposal's questions as alt questions.

    The result is validated like a corpus file's entry (text limits of
    :data:`~walletfaq.data.corpus.TEXT_LIMITS`, at most
    :data:`~walletfaq.data.corpus.MAX_ALT_QUESTIONS` alt questions). Write it with
    ``retriever.update(entry)`` (or the store's edit).

    Raises:
        GapError: the entry of an add_alts proposal no longer exists, a new entry's id
            already exists or is missing, ``category``/``answer`` is missing or given where
            not used, or the result would break a corpus limit (the message says which).
    """
    proposal = cluster.proposal
    if isinstance(proposal, AddAlts):
        for name, value in (("entry_id", entry_id), ("category", category), ("answer", answer)):
            if value is not None:
                raise GapError(
                    f"not used by an add_alts proposal (it edits entry {proposal.entry_id!r})",
                    field=name,
                )
        try:
            entry = retriever.entry(proposal.entry_id)
        except KeyError:
            raise GapError(
                f"entry {proposal.entry_id!r} of cluster {cluster.id} no longer exists; mine "
                "the gaps again",
                field="entry_id",
            ) from None
        key = question_key(retriever)
        known = {key(text) for text in entry.questions()}
        added = _distinct(proposal.questions, key, known)
        return _validated(
            FAQEntry(
                id=entry.id,
                category=entry.category,
                question=entry.question,
                answer=entry.answer,
                alt_questions=(*entry.alt_questions, *added),
            ),
            cluster,
        )
    for name, value in (("entry_id", entry_id), ("category", category), ("answer", answer)):
        if value is None:
            raise GapError(
                "required for a new_entry proposal: the id, category and answer of the new "
                "entry are written by a person",
                field=name,
            )
    assert entry_id is not None and category is not None and answer is not None
    if isinstance(entry_id, str) and entry_id in retriever.corpus:
        raise GapError(
            f"entry {entry_id!r} already exists; choose a new id for cluster {cluster.id}",
            field="entry_id",
        )
    key = question_key(retriever)
    alts = _distinct(proposal.questions, key, {key(proposal.suggested_question)})
    return _validated(
        FAQEntry(
            id=entry_id,
            category=category,
            question=proposal.suggested_question,
            answer=answer,
            alt_questions=tuple(alts),
        ),
        cluster,
    )


def _validated(entry: FAQEntry, cluster: GapCluster) -> FAQEntry:
    """``entry`` checked like a corpus file's entry; a problem becomes a :class:`GapError`."""
    if len(entry.alt_questions) > MAX_ALT_QUESTIONS:
        raise GapError(
            f"accepting cluster {cluster.id} would give entry {entry.id!r} "
            f"{len(entry.alt_questions):,} alt questions, more than the {MAX_ALT_QUESTIONS:,} "
            "an entry may have; remove alt questions that say the same thing first, or split "
            "the entry",
            field="alt_questions",
        )
    try:
        return Corpus.from_entries([entry.to_dict()], source=f"<gap {cluster.id}>").entries[0]
    except CorpusError as error:
        raise GapError(str(error), field=error.field) from None
