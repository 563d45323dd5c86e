"""Staged changes and publishing them as one revision (behind a quality gate).

A staged change (``walletfaq_staged``) is not a revision: readers of revisions (replicas, the
change feed, :meth:`~walletfaq.store.Store.entries`) never see it, so only published content
is served. :meth:`Staging.staged_corpus` is the content a publish would produce, for a quality
gate to evaluate; :meth:`Staging.publish` writes every staged change as one revision (kind
``publish``) and empties the staging table in the same transaction.

The rules:

- ``stage`` takes the :class:`~walletfaq.store.Change` edits ``apply`` takes and checks them
  the same way, against the head content *with the changes already staged*: an ``add`` of an
  id held or staged, an ``update``/``remove`` of one that is neither, is refused. ``add`` and
  ``update`` are staged as ``put``, ``remove`` as ``delete``; later staged changes of an entry
  win over earlier ones.
- Each staged change remembers the head it was staged at. Publishing refuses with
  :class:`~walletfaq.errors.StoreConflictError` when an entry it touches changed in the store
  after its first staged change (an edit published meanwhile is never overwritten), and with
  :class:`~walletfaq.store.traffic_records.PublishConflictError` (a StoreConflictError) when
  ``expected_head`` is given and the head moved: the gate evaluated other content. Either way
  nothing is written and the staged changes stay. With ``expected_staged`` (the staged
  changes the gate evaluated), a publish also refuses, with
  :class:`~walletfaq.store.traffic_records.StagedChangedError`, when the staged changes are
  not those any more (staging does not move the head).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, select

from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.errors import StoreError
from walletfaq.store import schema
from walletfaq.store.core import StoreCore
from walletfaq.store.queries import head_revision, utc, versions_at
from walletfaq.store.records import Change, Revision
from walletfaq.store.traffic_records import (
    PublishConflictError,
    StagedChange,
    StagedChangedError,
    StagedOp,
)
from walletfaq.store.writer import (
    Write,
    check_changes,
    check_op,
    clean_author,
    clean_reason,
    lock_head,
    write_revision,
)


class Staging(StoreCore):
    """The staging and publishing methods of :class:`~walletfaq.store.Store`."""

    def stage(
        self, changes: Sequence[Change], *, author: str, reason: str | None = None
    ) -> tuple[StagedChange, ...]:
        """Stage ``changes`` for the next :meth:`publish`, all or nothing (one transaction).

        Raises:
            StoreError: the store is empty, no changes, an id twice, an ``add`` of an id
                held or staged, an ``update``/``remove`` of one neither held nor staged.
        """
        author, reason = clean_author(author), clean_reason(reason)
        check_changes(changes, "stage")
        with self._writing() as connection:
            head = _published_head(connection, self.url)
            pending = pending_content(connection, head)
            for change in changes:
                check_op(change.op, change.entry_id, change.entry_id in pending)
            return tuple(
                insert_staged(
                    connection,
                    "delete" if change.op == "remove" else "put",
                    change.entry_id,
                    change.entry,
                    base=head,
                    author=author,
                    reason=reason,
                )
                for change in changes
            )

    def staged(self) -> tuple[StagedChange, ...]:
        """The staged changes, in the order they were staged."""
        with self._reading() as connection:
            return tuple(staged_rows(connection))

    def staged_corpus(self) -> Corpus:
        """The content a publish would produce: the head with the staged changes applied
        (entries keep their places, new ones come last in staging order)."""
        with self._reading() as connection:
            head = head_revision(connection)
            entries = tuple(pending_content(connection, head).values())
        return Corpus(entries=entries, source=f"{self.url}@{head}+staged")

    def discard_staged(self) -> int:
        """Delete every staged change (one transaction); the proposals accepted into them
        are open again. Returns how many changes were discarded."""
        with self._writing() as connection:
            lock_head(connection)
            rows = staged_rows(connection)
            connection.execute(schema.staged.delete())
            p = schema.proposals
            ids = sorted({r.proposal_id for r in rows if r.proposal_id is not None})
            if ids:
                connection.execute(
                    p.update()
                    .where(p.c.id.in_(ids), p.c.status == "accepted", p.c.revision.is_(None))
                    .values(status="open", decided_by=None, decided_at=None)
                )
        return len(rows)

    def publish(
        self,
        *,
        author: str,
        reason: str | None = None,
        forced: bool = False,
        expected_head: int | None = None,
        expected_staged: Sequence[StagedChange] | None = None,
    ) -> Revision:
        """Write every staged change as one new revision (kind ``publish``) and empty the
        staging table, in one transaction.

        Args:
            author: who publishes.
            reason: why (recorded).
            forced: the quality gate refused and the publish goes ahead anyway (recorded in
                the revision; ``store log`` shows it).
            expected_head: the head the staged content was evaluated at; if the store moved
                since, nothing is written.
            expected_staged: the staged changes the content was evaluated with
                (:meth:`staged`); if they are not the staged changes any more, nothing is
                written.

        Raises:
            PublishConflictError: the head is not ``expected_head``.
            StagedChangedError: the staged changes are not ``expected_staged``.
            StoreConflictError: an entry the staged changes touch changed after they were
                staged.
            StoreError: nothing staged, or the staged changes change nothing.
        """
        author, reason = clean_author(author), clean_reason(reason)
        if not isinstance(forced, bool):
            raise StoreError(f"forced must be True or False, got {forced!r}")
        if expected_head is not None and (
            isinstance(expected_head, bool) or not isinstance(expected_head, int)
        ):
            raise StoreError(f"expected_head is a revision number, got {expected_head!r}")
        with self._writing() as connection:
            head = lock_head(connection).revision
            if expected_head is not None and head != expected_head:
                raise PublishConflictError(expected_head, head)
            rows = staged_rows(connection)
            if expected_staged is not None and tuple(rows) != tuple(expected_staged):
                raise StagedChangedError(len(tuple(expected_staged)), len(rows), self.url)
            if not rows:
                raise StoreError(
                    f"nothing is staged in {self.url}; stage changes first (store.stage)"
                )
            writes, bases = _net_writes(connection, head, rows)
            if not writes:
                raise StoreError(
                    f"the staged changes leave revision {head}'s content as it is; nothing to "
                    "publish (discard them with discard_staged())"
                )
            revision = write_revision(
                connection,
                writes,
                author=author,
                reason=reason,
                kind="publish",
                url=self.url,
                bases=bases,
                forced=forced,
            )
            connection.execute(schema.staged.delete())
            ids = sorted({r.proposal_id for r in rows if r.proposal_id is not None})
            if ids:
                p = schema.proposals
                connection.execute(
                    p.update()
                    .where(p.c.id.in_(ids), p.c.status == "accepted")
                    .values(revision=revision.number)
                )
        return revision


def insert_staged(
    connection: Connection,
    op: StagedOp,
    entry_id: str,
    entry: FAQEntry | None,
    *,
    base: int,
    author: str,
    reason: str | None,
    proposal_id: str | None = None,
) -> StagedChange:
    """Append one staged change (the caller checked it); the row as written."""
    created = datetime.now(timezone.utc)
    content = json.dumps(entry.to_dict(), ensure_ascii=False) if entry is not None else None
    result = connection.execute(
        schema.staged.insert().values(
            op=op,
            entry_id=entry_id,
            entry=content,
            base_revision=base,
            author=author,
            reason=reason,
            proposal_id=proposal_id,
            created_at=created,
        )
    )
    key = result.inserted_primary_key
    assert key is not None, "an insert of one row has its primary key"
    position = int(key[0])
    return StagedChange(position, op, entry_id, entry, base, author, reason, proposal_id, created)


def staged_rows(connection: Connection) -> list[StagedChange]:
    """The staged changes, in staging order."""
    rows = connection.execute(select(schema.staged).order_by(schema.staged.c.position))
    return [_staged_change(row) for row in rows]


def pending_content(connection: Connection, head: int) -> dict[str, FAQEntry]:
    """Revision ``head``'s content with the staged changes applied, by id, in corpus order."""
    content: dict[str, FAQEntry | None] = {
        v.entry_id: v.entry for v in versions_at(connection, head) if v.entry
    }
    for change in staged_rows(connection):
        content[change.entry_id] = change.entry  # a removal keeps the entry's place (None)
    return {entry_id: entry for entry_id, entry in content.items() if entry is not None}


def _net_writes(
    connection: Connection, head: int, rows: list[StagedChange]
) -> tuple[list[Write], dict[str, int]]:
    """What the staged changes do to revision ``head``: one write per entry whose content
    changes (in order of first staging), and per entry the head of its first staging."""
    final: dict[str, FAQEntry | None] = {}
    bases: dict[str, int] = {}
    for row in rows:
        final[row.entry_id] = row.entry
        bases.setdefault(row.entry_id, row.base_revision)
    current = {v.entry_id: v.entry for v in versions_at(connection, head)}
    writes = []
    for entry_id, entry in final.items():
        if entry is None and entry_id not in current:
            # added and removed again while staged (no conflict check needed), or removed
            # meanwhile: a change after its base is a conflict, caught by the writer
            if _changed_since(connection, entry_id, bases[entry_id]):
                writes.append(Write(entry_id, None, None))
            continue
        if entry is not None and current.get(entry_id) == entry:
            continue  # already so
        writes.append(Write(entry_id, entry, None))
    return writes, bases


def _changed_since(connection: Connection, entry_id: str, base: int) -> bool:
    v = schema.entry_versions
    found = connection.execute(
        select(v.c.revision).where(v.c.entry_id == entry_id, v.c.revision > base).limit(1)
    ).first()
    return found is not None


def _published_head(connection: Connection, url: str) -> int:
    head = lock_head(connection).revision
    if not head:
        raise StoreError(f"{url} is empty; import a corpus first (store init), then stage")
    return head


def _staged_change(row: Any) -> StagedChange:
    entry = None
    if row.entry is not None:
        record = json.loads(row.entry)
        entry = FAQEntry(
            id=record["id"],
            category=record["category"],
            question=record["question"],
            answer=record["answer"],
            alt_questions=tuple(record["alt_questions"]),
        )
    return StagedChange(
        position=int(row.position),
        op=row.op,
        entry_id=row.entry_id,
        entry=entry,
        base_revision=int(row.base_revision),
        author=row.author,
        reason=row.reason,
        proposal_id=row.proposal_id,
        created_at=utc(row.created_at),
    )
