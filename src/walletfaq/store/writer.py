"""Writing one revision inside a write transaction: the rules every writer of the store shares.

:func:`write_revision` takes the writers' lock (the ``walletfaq_head`` row; on SQLite the
transaction already holds the database's write lock), checks the edit against the latest
versions, writes revision head + 1 with its entry versions, moves the head and, on PostgreSQL,
sends ``NOTIFY walletfaq_changes`` (delivered only if the transaction commits). The caller's
transaction may write more before it commits (a publish empties the staging table in it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DatabaseError, OperationalError

from walletfaq.data.corpus import FAQEntry
from walletfaq.data.normalize import clean_text
from walletfaq.errors import StoreConflictError, StoreError, StoreUnavailableError
from walletfaq.store import schema
from walletfaq.store.queries import latest_versions, version_row, versions_at
from walletfaq.store.records import Change, EntryVersion, Revision, RevisionKind

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "walletfaq_changes"
"""The PostgreSQL channel notified with the new revision number on every commit."""

MAX_AUTHOR_CHARS = 200
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Write:
    """One entry version to write: content (``None`` = removal) and position."""

    entry_id: str
    entry: FAQEntry | None
    position: int | None  # None: keep the entry's position, or append a new one


@dataclass(frozen=True)
class Head:
    """The head row, read under the writers' lock."""

    revision: int
    next_position: int


class HeadMoved(Exception):
    """Internal: the head is not the revision the writer expected (``expect_head``)."""


def lock_head(connection: Connection) -> Head:
    """Take the writers' lock (PostgreSQL: ``SELECT ... FOR UPDATE`` of the head row) and read
    the head. Every writer takes it first, so writers queue in one order."""
    row = connection.execute(
        select(schema.head.c.revision, schema.head.c.next_position)
        .where(schema.head.c.id == 1)
        .with_for_update()
    ).one()
    return Head(int(row.revision), int(row.next_position))


def write_revision(
    connection: Connection,
    writes: list[Write],
    *,
    author: str,
    reason: str | None,
    kind: RevisionKind,
    url: str,
    checks: Mapping[str, str] | None = None,
    if_match: int | None = None,
    bases: Mapping[str, int] | None = None,
    restores: int | None = None,
    expect_empty: bool = False,
    expect_head: int | None = None,
    forced: bool = False,
) -> Revision:
    """Write ``writes`` as the next revision in the transaction of ``connection``.

    Args:
        writes: the entry versions (each entry id once, at least one).
        checks: per entry id, ``add``/``update``/``remove``: the entry must (not) exist.
        if_match: every written entry must be unchanged since this revision.
        bases: per entry id, the revision that entry must be unchanged since.
        expect_empty: the store must have no revision (the first import).
        expect_head: the head must be this revision, else :class:`HeadMoved`.
        forced: a publish that skipped its quality gate (recorded in the revision).

    Raises:
        StoreConflictError: an entry changed after ``if_match`` or its ``bases`` revision.
        StoreError: an invalid edit (see :meth:`Store.apply <walletfaq.store.Store.apply>`).
    """
    author = clean_author(author)
    reason = clean_reason(reason)
    for write in writes:
        if len(write.entry_id) > schema.MAX_ID_CHARS:
            raise StoreError(
                f"entry id {write.entry_id[:40]!r}... is {len(write.entry_id)} characters; "
                f"the store holds ids of at most {schema.MAX_ID_CHARS}"
            )
    if if_match is not None and (isinstance(if_match, bool) or not isinstance(if_match, int)):
        raise StoreError(f"if_match is a revision number, got {if_match!r}")
    head = lock_head(connection)
    if expect_empty and head.revision:
        raise StoreError(
            f"{url} already holds {head.revision} revision(s); init imports into an empty "
            "store only (edit it, or roll back)"
        )
    if not expect_empty and not head.revision:
        raise StoreError(f"{url} is empty; import a corpus first (store init)")
    if expect_head is not None and head.revision != expect_head:
        raise HeadMoved
    if if_match is not None and not 1 <= if_match <= head.revision:
        raise StoreError(f"if_match={if_match} is not a revision of {url} (1 to {head.revision})")
    latest = latest_versions(connection, [w.entry_id for w in writes])
    rows: list[dict[str, object]] = []
    number = head.revision + 1
    next_position = head.next_position
    for write in writes:
        last = latest.get(write.entry_id)
        exists = last is not None and not last.deleted
        if checks is not None:
            check_op(checks[write.entry_id], write.entry_id, exists)
        based_on = bases.get(write.entry_id) if bases is not None else if_match
        if based_on is not None and last is not None and last.revision > based_on:
            raise StoreConflictError(write.entry_id, based_on, last.revision)
        position = write.position
        if position is None:
            if exists and last is not None:
                position = last.position
            else:
                position, next_position = next_position, next_position + 1
        rows.append(version_row(write.entry_id, write.entry, number, position))
    if not expect_empty:
        _check_not_emptied(connection, head.revision, writes, latest)
    created = datetime.now(timezone.utc)
    connection.execute(
        schema.revisions.insert().values(
            number=number,
            created_at=created,
            author=author,
            reason=reason,
            kind=kind,
            restores=restores,
            forced=forced,
        )
    )
    connection.execute(schema.entry_versions.insert(), rows)
    connection.execute(
        schema.head.update()
        .where(schema.head.c.id == 1)
        .values(revision=number, next_position=max(next_position, _after(rows)))
    )
    if connection.dialect.name != "sqlite":
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": str(number)},
        )
    logger.debug("store %s: revision %d by %s (%d change(s))", url, number, author, len(rows))
    return Revision(number, created, author, reason, kind, restores, len(rows), forced)


@contextmanager
def guarded(transaction: AbstractContextManager[Connection], where: str) -> Iterator[Connection]:
    """``transaction``, with the database's own errors turned into one-line StoreErrors."""
    try:
        with transaction as connection:
            yield connection
    except (OperationalError, DatabaseError) as exc:
        unreachable = isinstance(exc, OperationalError)  # connection, shutdown, lock timeout
        error = StoreUnavailableError if unreachable else StoreError
        raise error(f"the store at {where} failed: {database_reason(exc)}") from None


def database_reason(exc: BaseException) -> str:
    """The database's own message of ``exc``, on one line."""
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split()) or type(original).__name__


def check_changes(changes: Sequence[Change], verb: str) -> None:
    """Refuse no changes, anything but :class:`Change` objects, and an entry changed twice
    (``verb``: what is done with them, for messages: ``apply``, ``stage``)."""
    if not changes:
        raise StoreError(f"no changes to {verb}; pass at least one Change")
    seen: set[str] = set()
    for change in changes:
        if not isinstance(change, Change):
            raise StoreError(f"expected Change objects, got {type(change).__name__}")
        if change.entry_id in seen:
            raise StoreError(f"entry {change.entry_id!r} is changed twice in one {verb}")
        seen.add(change.entry_id)


def check_op(op: str, entry_id: str, exists: bool) -> None:
    """Refuse an ``add`` of an entry that exists, an ``update``/``remove`` of one that does
    not."""
    if op == "add" and exists:
        raise StoreError(f"entry {entry_id!r} already exists; update it instead of adding it")
    if op in ("update", "remove") and not exists:
        raise StoreError(f"no entry {entry_id!r} to {op}; check the id (or add it)")


def clean_author(author: object) -> str:
    """``author`` as recorded: one line of at most :data:`MAX_AUTHOR_CHARS` characters."""
    if not isinstance(author, str) or not clean_text(author):
        raise StoreError(f"a change needs an author (a name), got {author!r}")
    author = author.strip()
    if len(author) > MAX_AUTHOR_CHARS or any(ord(c) < 32 for c in author):
        raise StoreError(
            f"the author must be one line of at most {MAX_AUTHOR_CHARS} characters, "
            f"got {author[:40]!r}..."
        )
    return author


def clean_reason(reason: object) -> str | None:
    """``reason`` as recorded (``None`` when empty); at most :data:`MAX_REASON_CHARS`."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise StoreError(f"the reason must be text, got {type(reason).__name__}")
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise StoreError(f"the reason is {len(reason)} characters; keep it to {MAX_REASON_CHARS}")
    return reason or None


def _check_not_emptied(
    connection: Connection, head: int, writes: list[Write], latest: dict[str, EntryVersion]
) -> None:
    def held(entry_id: str) -> bool:
        return entry_id in latest and not latest[entry_id].deleted

    removed = sum(1 for w in writes if w.entry is None and held(w.entry_id))
    if not removed:
        return
    added = sum(1 for w in writes if w.entry is not None and not held(w.entry_id))
    if len(versions_at(connection, head)) + added - removed < 1:
        raise StoreError("this change would remove every entry; a store keeps at least one")


def _after(rows: list[dict[str, object]]) -> int:
    return max(int(str(row["position"])) for row in rows) + 1
