"""Admin edits of a service that serves a store of record (``walletfaq serve --store URL``).

An edit (``POST``, ``PUT``, ``DELETE /v1/entries``) is one revision of the store, written in one
transaction (:meth:`Store.apply <walletfaq.store.Store.apply>`) by the replica's follower, which
then serves it before the answer (:meth:`StoreFollower.write
<walletfaq.retrieval.replica.StoreFollower.write>`): an answered edit is committed, and the
replica that took it serves it already (read-your-writes); the others get it through the change
feed. The author of the revision is the admin token's name; the optional ``reason`` query
parameter becomes its reason.

``If-Match: <revision>`` (the ``ETag`` of ``GET /v1/entries/{id}``, or any revision read from
the service) makes the edit conditional: when the entry changed after that revision, nothing is
written and the answer is 412. The store unreachable: 503 with ``Retry-After``, nothing
written. An add or a removal that the content decided against (the id exists, or does not) is
409 or 404, decided on the store's latest revision (the follower catches up first).

Staged edits (``?stage=true``, :func:`store_stage`) are written to the store's staging table
(:meth:`Store.stage <walletfaq.store.Store.stage>`) instead: not a revision, not served, until
``walletfaq publish`` publishes them (behind its quality gate); add-or-replace, 404 and 409 are
decided on the published content with the changes already staged.

Gap proposals (:func:`decide_proposal`): accepting one writes a revision (kind ``proposal``),
served by this replica before the answer, or stages the change; rejecting records the decision.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from walletfaq.errors import StoreConflictError, StoreError, StoreUnavailableError, WalletFAQError
from walletfaq.service.errors import (
    ConflictError,
    EntryNotFoundError,
    NotFoundError,
    PreconditionFailedError,
    StoreDownError,
)

if TYPE_CHECKING:
    from walletfaq.retrieval.replica import StoreFollower
    from walletfaq.store import Change, Proposal, StagedChange, Store

logger = logging.getLogger(__name__)

EditKind = Literal["add", "put", "remove"]

IF_MATCH_RULE = (
    'If-Match is a store revision number, plain or quoted (12 or "12"): the ETag of '
    "GET /v1/entries/{id}"
)
_REVISION = re.compile(r'"?([1-9][0-9]{0,17})"?')


@dataclass(frozen=True)
class EditRequest:
    """Who makes an edit and on what condition.

    Attributes:
        author: the admin token's name.
        reason: why (the ``reason`` query parameter), or ``None``.
        if_match: the revision the edit is based on (``If-Match``), or ``None``.
    """

    author: str
    reason: str | None = None
    if_match: int | None = None


def parse_if_match(value: str | None) -> int | None:
    """The revision of an ``If-Match`` header (``None`` when absent).

    Raises:
        WalletFAQError: not a revision number (400).
    """
    if value is None:
        return None
    found = _REVISION.fullmatch(value.strip())
    if found is None:
        raise WalletFAQError(f"If-Match {value[:40]!r} is not allowed: {IF_MATCH_RULE}")
    return int(found.group(1))


def store_edit(
    follower: StoreFollower,
    kind: EditKind,
    entry_id: str,
    record: dict[str, Any] | None,
    request: EditRequest,
    retry_after_s: int,
) -> tuple[str, int]:
    """Write one edit to the store and serve it; its action (``added``, ``replaced``,
    ``removed``) and the store revision that holds it.

    Raises:
        StoreDownError: the store is unreachable, or the replica cannot serve its latest
            revision (503); nothing written.
        ConflictError: ``add`` of an id the store holds, or a race the store refused (409).
        EntryNotFoundError: ``remove`` of an id the store does not hold (404).
        PreconditionFailedError: ``If-Match`` older than the entry's last change, or newer
            than the store (412).
        CorpusError: the entry is invalid (400).
    """
    from walletfaq.store import Change

    headers = {"Retry-After": str(retry_after_s)}
    try:
        follower.sync()  # the latest content decides add or replace, 404 or 409
    except WalletFAQError as exc:
        raise StoreDownError(f"the edit was not applied: {exc}", headers=headers) from None
    exists = follower.holds(entry_id)
    if kind == "add" and exists:
        raise ConflictError(f"id {entry_id!r} exists; PUT /v1/entries/{{id}} replaces it")
    if kind == "remove" and not exists:
        raise EntryNotFoundError(f"no entry has id {entry_id!r}")
    if request.if_match is not None and request.if_match > follower.revision:
        raise PreconditionFailedError(
            f"If-Match revision {request.if_match} is newer than the store's latest "
            f"({follower.revision}); send the revision you read the entry at"
        )
    change: Change
    if kind == "remove":
        change, action = Change.remove(entry_id), "removed"
    elif exists:
        change, action = Change.update(record or {}), "replaced"
    else:
        change, action = Change.add(record or {}), "added"
    try:
        revision = follower.write(
            [change], author=request.author, reason=request.reason, if_match=request.if_match
        )
    except StoreConflictError as exc:
        raise PreconditionFailedError(f"the edit was not applied: {exc}") from None
    except StoreUnavailableError as exc:
        raise StoreDownError(f"the edit was not applied: {exc}", headers=headers) from None
    except StoreError as exc:  # another replica's edit got there between the check and the write
        raise ConflictError(f"the edit was not applied: {exc}; read the entry again") from None
    return action, revision.number


def store_stage(
    store: Store,
    kind: EditKind,
    entry_id: str,
    record: dict[str, Any] | None,
    request: EditRequest,
    retry_after_s: int,
) -> StagedChange:
    """Stage one edit for the next publish (not served until then); the staged change.

    Raises:
        StoreDownError: the store is unreachable (503); nothing staged.
        ConflictError: ``add`` of an id published or staged, or a race the store refused (409).
        EntryNotFoundError: ``remove`` of an id neither published nor staged (404).
        CorpusError: the entry is invalid (400).
    """
    from walletfaq.store import Change

    try:
        exists = entry_id in store.staged_corpus()  # the published content, changes staged
    except StoreError as exc:
        raise StoreDownError.retry_after(f"the edit was not staged: {exc}", retry_after_s) from None
    if kind == "add" and exists:
        raise ConflictError(
            f"id {entry_id!r} exists (published or staged); PUT /v1/entries/{{id}} replaces it"
        )
    if kind == "remove" and not exists:
        raise EntryNotFoundError(f"no entry has id {entry_id!r}, published or staged")
    change: Change
    if kind == "remove":
        change = Change.remove(entry_id)
    elif exists:
        change = Change.update(record or {})
    else:
        change = Change.add(record or {})
    try:
        (staged,) = store.stage([change], author=request.author, reason=request.reason)
    except StoreUnavailableError as exc:
        raise StoreDownError.retry_after(f"the edit was not staged: {exc}", retry_after_s) from None
    except StoreError as exc:  # another writer staged or published the id meanwhile
        raise ConflictError(f"the edit was not staged: {exc}; read the entry again") from None
    return staged


def staged_dict(change: StagedChange) -> dict[str, Any]:
    """The JSON answer of a staged edit (202)."""
    return {
        "staged": True,
        "position": change.position,
        "op": change.op,
        "id": change.entry_id,
        "entry": None if change.entry is None else change.entry.to_dict(),
        "base_revision": change.base_revision,
        "author": change.author,
        "reason": change.reason,
        "created_at": change.created_at.isoformat(),
    }


def read_proposal(store: Store, proposal_id: str, retry_after_s: int) -> Proposal:
    """The proposal ``proposal_id`` (its id checked by the caller).

    Raises:
        NotFoundError: no such proposal (404).
        StoreDownError: the store failed (503).
    """
    from walletfaq.store import UnknownProposalError

    try:
        return store.proposal(proposal_id)
    except UnknownProposalError as exc:
        raise NotFoundError(str(exc)) from None
    except StoreError as exc:
        raise StoreDownError.retry_after(
            f"the proposal could not be read: {exc}", retry_after_s
        ) from None


def decide_proposal(
    follower: StoreFollower,
    proposal_id: str,
    accept: bool,
    *,
    author: str,
    retry_after_s: int,
    stage: bool = False,
    answer: str | None = None,
    category: str | None = None,
) -> Proposal:
    """Accept or reject a gap proposal (:meth:`Store.decide_proposal
    <walletfaq.store.Store.decide_proposal>`, the author the admin token's name); an accepted
    one that wrote a revision is served by ``follower`` before this returns (if the store fails
    right after the commit, it is served when the store answers again).

    Raises:
        NotFoundError: no such proposal (404).
        ConflictError: decided already, or the content decided against it: its target entry
            is gone, every question is the entry's already, too many alt questions (409).
        StoreDownError: the store is unreachable (503); nothing decided.
        CorpusError: the new or changed entry breaks a corpus rule (400).
    """
    from walletfaq.store import UnknownProposalError

    store = follower.store
    try:
        decided = store.decide_proposal(
            proposal_id, accept, author=author, stage=stage, answer=answer, category=category
        )
    except UnknownProposalError as exc:
        raise NotFoundError(str(exc)) from None
    except StoreUnavailableError as exc:
        raise StoreDownError.retry_after(
            f"the proposal was not decided: {exc}", retry_after_s
        ) from None
    except StoreError as exc:
        raise ConflictError(f"proposal {proposal_id} was not decided: {exc}") from None
    if decided.revision is not None:
        try:
            follower.sync(until=decided.revision)
        except WalletFAQError as exc:
            logger.warning(
                "revision %d (proposal %s) is committed but not served yet (%s)",
                decided.revision,
                proposal_id,
                exc,
            )
    return decided


__all__ = [
    "IF_MATCH_RULE",
    "EditRequest",
    "decide_proposal",
    "parse_if_match",
    "read_proposal",
    "staged_dict",
    "store_edit",
    "store_stage",
]
