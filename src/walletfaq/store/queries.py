"""The store's queries and row conversions: the head, each entry's latest version at a
revision, and rows to and from :mod:`walletfaq.store.records`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, and_, func, select

from walletfaq.data.corpus import FAQEntry
from walletfaq.store import schema
from walletfaq.store.records import EntryVersion, Revision


def head_revision(connection: Connection) -> int:
    """The latest revision (0 before the first import)."""
    return int(connection.execute(select(schema.head.c.revision)).scalar_one())


def versions_at(connection: Connection, number: int) -> list[EntryVersion]:
    """Each entry's latest version at or before revision ``number``, removals dropped."""
    v = schema.entry_versions
    latest = (
        select(v.c.entry_id, func.max(v.c.revision).label("revision"))
        .where(v.c.revision <= number)
        .group_by(v.c.entry_id)
        .subquery()
    )
    query = (
        select(v)
        .join(latest, and_(v.c.entry_id == latest.c.entry_id, v.c.revision == latest.c.revision))
        .where(v.c.deleted.is_(False))
        .order_by(v.c.position)
    )
    return [version_from_row(row) for row in connection.execute(query)]


def latest_versions(connection: Connection, ids: Iterable[str]) -> dict[str, EntryVersion]:
    """The latest version (removals included) of each of ``ids`` the store ever held."""
    v = schema.entry_versions
    wanted = list(ids)
    found: dict[str, EntryVersion] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        latest = (
            select(v.c.entry_id, func.max(v.c.revision).label("revision"))
            .where(v.c.entry_id.in_(chunk))
            .group_by(v.c.entry_id)
            .subquery()
        )
        query = select(v).join(
            latest, and_(v.c.entry_id == latest.c.entry_id, v.c.revision == latest.c.revision)
        )
        for row in connection.execute(query):
            found[row.entry_id] = version_from_row(row)
    return found


def version_row(
    entry_id: str, entry: FAQEntry | None, number: int, position: int
) -> dict[str, object]:
    """The ``walletfaq_entry_versions`` row of ``entry`` (``None``: removed) at ``number``."""
    return {
        "entry_id": entry_id,
        "revision": number,
        "position": position,
        "deleted": entry is None,
        "category": entry.category if entry else None,
        "question": entry.question if entry else None,
        "answer": entry.answer if entry else None,
        "alt_questions": json.dumps(list(entry.alt_questions), ensure_ascii=False)
        if entry
        else None,
    }


def entry_from_row(row: Any) -> FAQEntry:
    """The entry held in a version row (not a removal)."""
    return FAQEntry(
        id=row.entry_id,
        category=row.category,
        question=row.question,
        answer=row.answer,
        alt_questions=tuple(json.loads(row.alt_questions)),
    )


def version_from_row(row: Any) -> EntryVersion:
    """A version row as an :class:`EntryVersion`."""
    entry = None if row.deleted else entry_from_row(row)
    return EntryVersion(
        revision=int(row.revision), entry_id=row.entry_id, entry=entry, position=int(row.position)
    )


def utc(moment: datetime) -> datetime:
    """A time read from the store, in UTC (SQLite keeps no zone; the store writes UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def revision_from_row(row: Any) -> Revision:
    """A revision row (with its ``changes`` count) as a :class:`Revision`."""
    return Revision(
        number=int(row.number),
        created_at=utc(row.created_at),
        author=row.author,
        reason=row.reason,
        kind=row.kind,
        restores=row.restores,
        changes=int(row.changes),
        forced=bool(row.forced),
    )
