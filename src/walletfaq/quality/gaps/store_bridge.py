"""Gap mining on the store of record: from its query log to clusters, and from clusters to the
store's proposals.

>>> report = gaps_from_store(store, since="7d")             # doctest: +SKIP
>>> report.to_frame()[["id", "size", "kind", "proposal_id", "proposal_status"]]  # doctest: +SKIP
>>> store.decide_proposal(report.proposal_of(report.clusters[0]).id, True, author="alice")
... # doctest: +SKIP

:func:`traffic_questions` reads the logged queries (decision, top hit, top score, margin) and
their feedback into :class:`~walletfaq.quality.gaps.TrafficQuestion` objects;
:func:`gaps_from_store` mines them with :func:`~walletfaq.quality.gaps.find_gaps` over a
retriever built from the store's head and links each cluster to a proposal in the store.

**How a cluster and its proposal are linked.** The store's proposals keep what a person
decides on (kind, target entry, questions, suggested question), not the cluster they came
from: a cluster id is a hash of the member questions *as logged*, while a proposal holds the
distinct questions, and both ids are shown side by side (:meth:`StoreGapReport.to_dict` puts
the proposal's ``id`` and ``status`` inside ``"proposal"``). A cluster's proposal is found
by its content (:func:`proposal_key`: kind, target, suggested question and the set of
questions, cleaned and masked as the store writes them). Mining the same log again gives the
same clusters (same ids), so the same content, so the proposal already recorded is found and
reused, whatever its status: an open proposal is never recorded twice, a rejected one is not
proposed again, an accepted one shows as accepted. A cluster whose members changed (new
traffic) can propose new content: that is a new proposal (the older one stays as it is, to
be decided or rejected). Two ``gaps`` runs at the very same time may both record one new
proposal (recording is one transaction per run, not a lock across runs).

A cluster has no proposal when it has nothing to propose: an ``add_alts`` cluster whose
questions the entry already has (its ``questions`` are empty; the misses come from entries
too close to each other, a case for editing the neighbour).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletfaq.data.corpus import TEXT_LIMITS
from walletfaq.errors import GapError
from walletfaq.quality.gaps.mining import find_gaps
from walletfaq.quality.gaps.report import AddAlts, GapCluster, GapReport
from walletfaq.quality.gaps.traffic import TrafficQuestion
from walletfaq.quality.traffic_window import report_window
from walletfaq.retrieval.retriever import FAQRetriever
from walletfaq.store.traffic_records import NewProposal, masked_text
from walletfaq.store.traffic_records import Proposal as StoredProposal

if TYPE_CHECKING:
    import pandas as pd

    from walletfaq.encoders.protocol import Encoder
    from walletfaq.store import Store

logger = logging.getLogger(__name__)

ProposalKey = tuple[str, str | None, str | None, frozenset[str]]
"""What identifies a proposal's content: kind, target, suggested question, questions."""


@dataclass(frozen=True)
class StoreGapReport(GapReport):
    """A :class:`~walletfaq.quality.gaps.GapReport` mined from a store's query log, with the
    store's proposal of each cluster.

    Attributes:
        proposals: the store's proposal of each cluster, by cluster id (a cluster is missing
            when it has nothing to propose, or when the report was mined without recording
            and no proposal with its content is in the store yet).
        store: the store's URL (password hidden).
        recorded: how many proposals this run recorded (0 without recording).
    """

    proposals: Mapping[str, StoredProposal] = field(default_factory=dict)
    store: str = ""
    recorded: int = 0

    def proposal_of(self, cluster: GapCluster | str) -> StoredProposal | None:
        """The store's proposal of ``cluster`` (a cluster or its id), ``None`` if it has none."""
        return self.proposals.get(cluster if isinstance(cluster, str) else cluster.id)

    def to_dict(self) -> dict[str, object]:
        """``{"clusters": [{"id", "size", "questions", "nearest_entry", "score", "proposal"}]}``
        as :meth:`GapReport.to_dict`, each ``"proposal"`` with two more keys: ``"id"`` (the
        store's proposal id, what ``walletfaq gaps accept`` takes; ``None`` when it has none)
        and ``"status"`` (``open``, ``accepted``, ``rejected`` or ``None``)."""
        clusters = []
        for cluster in self.clusters:
            item = cluster.to_dict()
            stored = self.proposal_of(cluster)
            item["proposal"] = {
                **cluster.proposal.to_dict(),
                "id": stored.id if stored else None,
                "status": stored.status if stored else None,
            }
            clusters.append(item)
        return {"clusters": clusters}

    def to_frame(self) -> pd.DataFrame:
        """:meth:`GapReport.to_frame` with ``proposal_id`` and ``proposal_status`` after
        ``kind``."""
        frame = super().to_frame()
        stored = [self.proposal_of(cluster) for cluster in self.clusters]
        at = list(frame.columns).index("kind") + 1
        frame.insert(at, "proposal_id", [p.id if p else None for p in stored])
        frame.insert(at + 1, "proposal_status", [p.status if p else None for p in stored])
        return frame


def traffic_questions(
    store: Store,
    since: datetime | timedelta | str | None = None,
    until: datetime | timedelta | str | None = None,
) -> tuple[list[TrafficQuestion], int]:
    """The store's logged queries asked at or after ``since`` and before ``until`` (without
    them: the whole log), oldest first, as gap mining reads them, with each one's feedback
    (``helpful``); and how many refused queries were left out because their question is
    empty (a refused question is never a miss; an empty one cannot be a
    :class:`TrafficQuestion`).

    ``since``, ``until``: aware datetimes, timedeltas back from now, or text (``"7d"``,
    ``"2026-05-01"``: :data:`~walletfaq.quality.traffic_window.WINDOW_RULE`).
    """
    start, end = _moments(since, until)
    queries = store.queries(since=start, until=end)
    # feedback is given after its query, so feedback changed since ``start`` covers them all
    feedback = {f.request_id: f.helpful for f in store.feedback(since=start)} if queries else {}
    questions: list[TrafficQuestion] = []
    empty_refused = 0
    for query in queries:
        if query.decision == "refuse" and not query.question:
            empty_refused += 1
            continue
        top = query.hits[0] if query.hits else None
        questions.append(
            TrafficQuestion(
                question=query.question,
                decision=query.decision,
                top_entry=top.entry_id if top else None,
                top_score=query.top_score,
                margin=None if query.margin is None else max(float(query.margin), 0.0),
                helpful=feedback.get(query.request_id),
                request_id=query.request_id,
                asked_at=query.created_at,
            )
        )
    return questions, empty_refused


def gaps_from_store(
    store: Store,
    *,
    since: datetime | timedelta | str | None = None,
    until: datetime | timedelta | str | None = None,
    retriever: FAQRetriever | None = None,
    model: str | Path | Encoder | None = None,
    record: bool = True,
    **find_gaps_args: Any,
) -> StoreGapReport:
    """Mine the gaps of ``store``'s query log and link each cluster to a proposal in the store.

    1. :func:`traffic_questions`: the queries logged at or after ``since`` and before
       ``until`` (without them: the whole log), with their feedback.
    2. :func:`~walletfaq.quality.gaps.find_gaps` over ``retriever`` (default: one built from
       the store's head, :meth:`FAQRetriever.from_store <walletfaq.FAQRetriever.from_store>`
       with ``model``, not following), with ``find_gaps_args`` (``min_cluster_size``,
       ``low_margin``, ``bar_delta``, ``min_share``, ``clustering``).
    3. Each cluster's proposal is looked up in the store by its content (module doc: how a
       cluster and its proposal are linked); with ``record``, those not there yet are
       recorded (:meth:`Store.add_proposals <walletfaq.store.Store.add_proposals>`, one
       transaction, status ``open``). Without ``record`` nothing is written (a report).

    Args:
        store: an open store (:func:`walletfaq.open_store`).
        since: the oldest queries to read: an aware datetime, a timedelta back from now, or
            text (``"7d"``, ``"2026-05-01"``).
        until: the end of the queries to read, in the same forms (default: now).
        retriever: the retriever to mine with (it should serve the store's content: its
            corpus names the entries proposals add to).
        model: the model of the retriever built from the store (default: e5-small); not
            with ``retriever``.
        record: record the proposals not yet in the store.

    Returns:
        A :class:`StoreGapReport`: the clusters, and the store's proposal of each.

    Raises:
        GapError: a bad parameter (both ``retriever`` and ``model``, ``questions`` among
            ``find_gaps_args``, ``until`` without ``since``) or a bad ``find_gaps`` argument;
            StoreError: the store cannot be read or written; WalletFAQError: a bad ``since``
            or ``until``.
    """
    if retriever is not None and model is not None:
        raise GapError(
            "give either a retriever or a model to build one from the store, not both",
            field="model",
        )
    if "questions" in find_gaps_args:
        raise GapError("the questions are read from the store's log", field="questions")
    if not isinstance(record, bool):
        raise GapError(f"expected True or False, got {record!r}", field="record")
    questions, empty_refused = traffic_questions(store, since, until)
    if not questions and retriever is None:  # nothing logged: no model to load
        mined = GapReport((), noise=0, misses=0, considered=0, refused=0)
    else:
        if retriever is None:
            retriever = FAQRetriever.from_store(store, model=model)
        mined = find_gaps(retriever, questions, **find_gaps_args)
    stored, recorded = link_proposals(store, mined.clusters, record=record)
    logger.debug(
        "gaps of %s: %d clusters, %d with a proposal in the store (%d recorded now)",
        store.url,
        len(mined.clusters),
        len(stored),
        recorded,
    )
    return StoreGapReport(
        mined.clusters,
        noise=mined.noise,
        misses=mined.misses,
        considered=mined.considered + empty_refused,
        refused=mined.refused + empty_refused,
        proposals=stored,
        store=store.url,
        recorded=recorded,
    )


def link_proposals(
    store: Store, clusters: Iterable[GapCluster], *, record: bool
) -> tuple[dict[str, StoredProposal], int]:
    """The store's proposal of each cluster, by cluster id, found by content
    (:func:`proposal_key`); with ``record``, those missing are recorded first (one
    transaction). Returns the proposals and how many were recorded."""
    by_key: dict[ProposalKey, StoredProposal] = {}
    for existing in store.proposals():  # oldest first: an open one wins over a decided one
        key = stored_key(existing)
        if key not in by_key or (existing.status == "open" and by_key[key].status != "open"):
            by_key[key] = existing
    wanted: dict[str, tuple[ProposalKey, NewProposal]] = {}
    for cluster in clusters:
        new = new_proposal(cluster)
        if new is not None:
            wanted[cluster.id] = (proposal_key(new), new)
    missing: dict[ProposalKey, NewProposal] = {}
    for key, new in wanted.values():
        if key not in by_key:
            missing.setdefault(key, new)
    recorded = 0
    if record and missing:
        added = store.add_proposals(list(missing.values()))
        for key, proposal in zip(missing, added, strict=True):
            by_key[key] = proposal
        recorded = len(added)
    linked = {cid: by_key[key] for cid, (key, _) in wanted.items() if key in by_key}
    return linked, recorded


def new_proposal(cluster: GapCluster) -> NewProposal | None:
    """The store's proposal for ``cluster``: ``add_alts`` with the proposal's questions and
    target, or ``new_entry`` whose questions are the suggested one then the others (the
    store's proposal carries every question behind it); ``None`` for an ``add_alts`` with no
    question left to add."""
    proposal = cluster.proposal
    if isinstance(proposal, AddAlts):
        if not proposal.questions:
            return None
        return NewProposal("add_alts", tuple(proposal.questions), target=proposal.entry_id)
    questions = (proposal.suggested_question, *proposal.questions)
    return NewProposal(
        "new_entry", questions, suggested_question=proposal.suggested_question, target=None
    )


def proposal_key(proposal: NewProposal) -> ProposalKey:
    """The content of ``proposal`` as the store writes it (texts cleaned and masked), order of
    its questions aside: two proposals with one key propose the same change."""
    limit = TEXT_LIMITS["alt_questions"]
    questions = frozenset(
        masked_text(q, f"question {i} of the proposal", limit) or ""
        for i, q in enumerate(proposal.questions)
    )
    suggested = masked_text(
        proposal.suggested_question, "the suggested question", limit, required=False
    )
    return (proposal.kind, proposal.target, suggested, questions)


def stored_key(proposal: StoredProposal) -> ProposalKey:
    """The :func:`proposal_key` of a proposal the store holds."""
    return (
        proposal.kind,
        proposal.target,
        proposal.suggested_question,
        frozenset(proposal.questions),
    )


def _moments(
    since: datetime | timedelta | str | None, until: datetime | timedelta | str | None
) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` as aware datetimes in UTC (``None`` stays ``None``), read as a
    report's window is (:func:`~walletfaq.quality.traffic_window.report_window`)."""
    if since is None:
        if until is not None:
            raise GapError("until needs a since (the window's start)", field="until")
        return None, None
    window = report_window(since, until)
    return window.since, None if until is None else window.until


gaps = gaps_from_store
"""``walletfaq.gaps(store, since=...)``: :func:`gaps_from_store`."""
