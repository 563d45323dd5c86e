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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from walletfaq.errors import StoreConflictError, StoreError, StoreUnavailableError, WalletFAQError
from walletfaq.service.errors import (
    ConflictError,
    EntryNotFoundError,
    PreconditionFailedError,
    StoreDownError,
)

if TYPE_CHECKING:
    from walletfaq.retrieval.replica import StoreFollower
    from walletfaq.store import Change

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


__all__ = ["IF_MATCH_RULE", "EditRequest", "parse_if_match", "store_edit"]
