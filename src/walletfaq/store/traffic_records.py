"""What the traffic loop stores and returns: logged queries, feedback, staged changes and gap
proposals (small frozen dataclasses), their errors, and the rules their fields follow.

Every text a user or a caller wrote (a question, a comment, a proposal's questions) is cleaned
(:func:`~walletfaq.data.normalize.clean_text`) and masked
(:func:`~walletfaq.data.privacy.mask_personal`) by the store itself before it is written,
whoever the caller is.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from walletfaq.data.corpus import TEXT_LIMITS, FAQEntry
from walletfaq.data.ids import id_problem
from walletfaq.data.normalize import clean_text, lone_surrogate
from walletfaq.data.privacy import mask_personal
from walletfaq.errors import StoreConflictError, StoreError

Decision = Literal["answer", "clarify", "handoff", "refuse"]
DECISIONS: tuple[Decision, ...] = ("answer", "clarify", "handoff", "refuse")
"""What the retriever did with a question: answered it, asked the user to choose between close
entries, handed off (fallback), or refused it (an invalid question)."""

StagedOp = Literal["put", "delete"]
ProposalKind = Literal["add_alts", "new_entry"]
PROPOSAL_KINDS: tuple[ProposalKind, ...] = ("add_alts", "new_entry")
ProposalStatus = Literal["open", "accepted", "rejected"]
PROPOSAL_STATUSES: tuple[ProposalStatus, ...] = ("open", "accepted", "rejected")

REQUEST_ID_RULE = "1 to 64 characters: ASCII letters, digits, '-' and '_' (e.g. a uuid4 hex)"
"""The request id grammar in words (proposal ids follow it too)."""
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SOURCE_RULE = "a source is 1 to 32 characters: a-z, 0-9, '-', '_', starting with a letter"
_SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")

MAX_QUESTION_CHARS = TEXT_LIMITS["question"]
"""The longest logged question (the retriever cuts questions to this length)."""
MAX_COMMENT_CHARS = 2_000
"""The longest feedback comment."""
MAX_LOGGED_HITS = 100
"""The most hits one logged query keeps."""
MAX_PROPOSAL_QUESTIONS = 1_000
"""The most questions one proposal carries (an entry's alt-question limit)."""


class UnknownRequestError(StoreError):
    """No query with this request id is in the log (never logged, or purged).

    Attributes:
        request_id: the id asked for.
    """

    def __init__(self, request_id: str, where: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"no logged query with request id {request_id!r} in {where}; use the request_id "
            "that the answer returned (old queries are deleted after the retention period)"
        )


class UnknownProposalError(StoreError):
    """No gap proposal with this id.

    Attributes:
        proposal_id: the id asked for.
    """

    def __init__(self, proposal_id: str, where: str) -> None:
        self.proposal_id = proposal_id
        super().__init__(
            f"no proposal {proposal_id!r} in {where}; list them with store.proposals()"
        )


class PublishConflictError(StoreConflictError):
    """A publish was based on a head revision (``expected_head``, the content the quality gate
    evaluated) that is no longer the head; nothing was written and the staged changes are kept.

    Attributes:
        expected_head: the revision the publish was based on.
        head: the store's head when the publish tried.
    """

    def __init__(self, expected_head: int, head: int) -> None:
        StoreError.__init__(
            self,
            f"the store moved from revision {expected_head}, which the staged changes were "
            f"checked against, to revision {head}; nothing was published: evaluate the staged "
            "changes again and publish with the new head",
        )
        self.entry_id = ""
        self.if_match = expected_head
        self.changed_at = head
        self.expected_head = expected_head
        self.head = head


class StagedChangedError(StoreConflictError):
    """A publish was checked with staged changes (``expected_staged``, what the quality gate
    evaluated) that are no longer the staged changes: someone staged, discarded or published
    meanwhile. Nothing was written; the staged changes are as the other writer left them.

    Attributes:
        expected: how many staged changes the publish was checked with.
        staged: how many are staged now.
    """

    def __init__(self, expected: int, staged: int, where: str) -> None:
        StoreError.__init__(
            self,
            f"the staged changes in {where} changed while they were checked ({expected} "
            f"checked, {staged} staged now: someone staged, discarded or published meanwhile); "
            "nothing was published: check and publish them again",
        )
        self.entry_id = ""
        self.if_match = 0
        self.changed_at = 0
        self.expected = expected
        self.staged = staged


@dataclass(frozen=True)
class QueryHit:
    """One ranked entry of a logged query."""

    entry_id: str
    score: float

    def to_dict(self) -> dict[str, object]:
        """``{"id", "score"}``."""
        return {"id": self.entry_id, "score": self.score}


@dataclass(frozen=True)
class QueryRecord:
    """A query to log (:meth:`Store.log_query <walletfaq.store.Store.log_query>`).

    Attributes:
        request_id: the id returned to the caller (:data:`REQUEST_ID_RULE`), unique.
        question: the question as asked (the store cleans and masks it); empty only for a
            refused question (an empty one is what a retriever refuses).
        decision: one of :data:`DECISIONS`.
        hits: the ranked entries, best first (at most :data:`MAX_LOGGED_HITS`).
        latency_ms: how long answering took, in milliseconds.
        revision: the store revision the retriever served (``None``: not from a store).
        source: where the query came from (``http``, ``python``; :data:`SOURCE_RULE`).
        created_at: when it was asked (timezone-aware; default: when it is logged).
    """

    request_id: str
    question: str
    decision: Decision
    hits: tuple[QueryHit, ...]
    latency_ms: float
    revision: int | None = None
    source: str = "python"
    created_at: datetime | None = None

    @property
    def top_score(self) -> float | None:
        """The best hit's score (``None`` without hits)."""
        return float(self.hits[0].score) if self.hits else None

    @property
    def margin(self) -> float | None:
        """The best hit's score minus the second's (``None`` with fewer than two hits)."""
        if len(self.hits) < 2:
            return None
        return float(self.hits[0].score) - float(self.hits[1].score)


@dataclass(frozen=True)
class LoggedQuery:
    """A query as the log holds it: the question masked, ``top_score`` and ``margin`` (best
    minus second score) from its hits, the time in UTC."""

    request_id: str
    created_at: datetime
    question: str
    decision: Decision
    hits: tuple[QueryHit, ...]
    top_score: float | None
    margin: float | None
    revision: int | None
    latency_ms: float
    source: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (the time in ISO 8601, UTC)."""
        return {
            "request_id": self.request_id,
            "time": self.created_at.isoformat(),
            "question": self.question,
            "decision": self.decision,
            "hits": [hit.to_dict() for hit in self.hits],
            "top_score": self.top_score,
            "margin": self.margin,
            "revision": self.revision,
            "latency_ms": self.latency_ms,
            "source": self.source,
        }


@dataclass(frozen=True)
class Feedback:
    """A user's feedback on one logged query (one per query: the latest wins).

    Attributes:
        request_id: the query's request id.
        helpful: whether the answer helped.
        entry_id: the entry the user says was right (``None``: not said).
        comment: the user's words (masked), if any.
        created_at: when feedback was first given (UTC).
        updated_at: when it last changed (UTC; equals ``created_at`` until then).
    """

    request_id: str
    helpful: bool
    entry_id: str | None
    comment: str | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (times in ISO 8601, UTC)."""
        return {
            "request_id": self.request_id,
            "helpful": self.helpful,
            "entry_id": self.entry_id,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class StagedChange:
    """A change staged for the next publish (not yet a revision).

    Attributes:
        position: its place in the staging order (later changes of an entry win).
        op: ``put`` (add or replace ``entry``) or ``delete``.
        entry_id: the entry changed.
        entry: the content for a ``put`` (``None`` for a ``delete``).
        base_revision: the head when it was staged; publishing fails with a conflict if the
            entry changed after it.
        author: who staged it.
        reason: why, if given.
        proposal_id: the gap proposal it comes from, if any.
        created_at: when it was staged (UTC).
    """

    position: int
    op: StagedOp
    entry_id: str
    entry: FAQEntry | None
    base_revision: int
    author: str
    reason: str | None
    proposal_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class NewProposal:
    """A gap proposal to record (:meth:`Store.add_proposals
    <walletfaq.store.Store.add_proposals>`).

    Attributes:
        kind: ``add_alts`` (``questions`` become alt questions of ``target``) or ``new_entry``
            (a new entry asked as ``suggested_question``; its answer is written by a person).
        questions: the users' questions behind it (masked by the store), at least one.
        suggested_question: the new entry's question (required for ``new_entry``).
        target: the entry ``add_alts`` adds to (required for it; ``None`` for ``new_entry``).
    """

    kind: ProposalKind
    questions: tuple[str, ...]
    suggested_question: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Proposal:
    """A recorded gap proposal and its decision.

    Attributes:
        id: its id (:data:`REQUEST_ID_RULE`).
        created_at: when it was recorded (UTC).
        kind, questions, suggested_question, target: as in :class:`NewProposal`.
        status: ``open``, ``accepted`` or ``rejected``.
        decided_by: who decided (``None`` while open).
        decided_at: when (UTC; ``None`` while open).
        revision: the revision an acceptance created (``None`` while the accepted change is
            staged, until it is published).
    """

    id: str
    created_at: datetime
    kind: ProposalKind
    target: str | None
    questions: tuple[str, ...]
    suggested_question: str | None
    status: ProposalStatus
    decided_by: str | None
    decided_at: datetime | None
    revision: int | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (times in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "time": self.created_at.isoformat(),
            "kind": self.kind,
            "target": self.target,
            "questions": list(self.questions),
            "suggested_question": self.suggested_question,
            "status": self.status,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "revision": self.revision,
        }


# --- the rules ---------------------------------------------------------------------------


def check_request_id(value: object, what: str = "request_id") -> str:
    """``value`` if it follows :data:`REQUEST_ID_RULE`, else a StoreError saying why."""
    if not isinstance(value, str):
        raise StoreError(
            f"{what} must be a string of {REQUEST_ID_RULE}, got {type(value).__name__}"
        )
    if not _REQUEST_ID.fullmatch(value):
        shown = ascii(value if len(value) <= 80 else value[:77] + "...")
        raise StoreError(f"{what} {shown} is not valid: it must be {REQUEST_ID_RULE}")
    return value


def check_entry_id(value: object, what: str) -> str:
    """``value`` if it is a valid entry id (:mod:`walletfaq.data.ids`), else a StoreError."""
    problem = id_problem(value)
    if problem is not None:
        raise StoreError(f"{what} is not a valid entry id: {problem}")
    return value  # type: ignore[return-value]  # a str: id_problem found none


def check_choice(value: object, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``, else a StoreError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise StoreError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_source(value: object) -> str:
    """``value`` if it follows :data:`SOURCE_RULE`."""
    if not isinstance(value, str) or not _SOURCE.fullmatch(value):
        raise StoreError(f"source {value!r} is not valid: {SOURCE_RULE}")
    return value


def check_number(value: object, what: str, *, minimum: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (not a bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StoreError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise StoreError(f"{what} must be a finite number, got {number!r}")
    if minimum is not None and number < minimum:
        raise StoreError(f"{what} must be at least {minimum:g}, got {number!r}")
    return number


def masked_text(value: object, what: str, limit: int, *, required: bool = True) -> str | None:
    """``value`` cleaned (:func:`~walletfaq.data.normalize.clean_text`) and masked
    (:func:`~walletfaq.data.privacy.mask_personal`), at most ``limit`` characters; ``None``
    when empty and not ``required``."""
    if value is None:
        if required:
            raise StoreError(f"{what} is missing; write the text")
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} must be text, got {type(value).__name__}")
    if lone_surrogate(value) is not None:
        raise StoreError(f"{what} is not valid Unicode text (a lone surrogate)")
    cleaned = clean_text(value)
    if len(cleaned) > limit:
        raise StoreError(f"{what} is {len(cleaned):,} characters; keep it to {limit:,}")
    if not cleaned:
        if required:
            raise StoreError(f"{what} is empty; write the text")
        return None
    return mask_personal(cleaned)


def utc_time(value: object, what: str) -> datetime:
    """``value`` (a timezone-aware datetime) in UTC, as the store writes and compares times."""
    if not isinstance(value, datetime):
        raise StoreError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(
            f"{what} {value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime.now(timezone.utc))"
        )
    return value.astimezone(timezone.utc)


def check_limit(value: object) -> int | None:
    """``value`` if it is ``None`` or a positive whole number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StoreError(f"limit must be a positive whole number or None, got {value!r}")
    return value
