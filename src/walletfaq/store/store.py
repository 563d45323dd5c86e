"""The store of record: FAQ entries with their full revision history, on SQLite or PostgreSQL.

::

    store = Store.open("faq.db", create=True)                   # or postgresql://...
    store.init(load_bundled_corpus(), author="alice")           # revision 1
    store.apply([Change.remove("topup-not-received")], author="bob", reason="obsolete")

Every write is one transaction that takes the writers' lock (PostgreSQL: a row lock on
``walletfaq_head``; SQLite: ``BEGIN IMMEDIATE``), reads the head revision, writes revision
head + 1 and its entry versions, and commits: revisions are numbered 1, 2, 3... without a gap
or a duplicate, whatever the number of writers, and a write killed half-way leaves nothing.
On PostgreSQL the same transaction sends ``NOTIFY walletfaq_changes, '<revision>'``, which
listeners receive when (and only if) it commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DatabaseError, OperationalError

from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.errors import StoreError, StoreUnavailableError
from walletfaq.store import schema
from walletfaq.store.engine import is_sqlite, make_engine, redact, store_url
from walletfaq.store.migrate import prepare
from walletfaq.store.proposals import Proposals
from walletfaq.store.queries import (
    entry_from_row,
    head_revision,
    revision_from_row,
    version_from_row,
    versions_at,
)
from walletfaq.store.records import (
    Change,
    EntryDiff,
    EntryVersion,
    Revision,
    RevisionKind,
    StoreDiff,
)
from walletfaq.store.traffic import TrafficLog
from walletfaq.store.writer import (
    NOTIFY_CHANNEL,
    HeadMoved,
    Write,
    check_changes,
    database_reason,
    write_revision,
)

__all__ = ["NOTIFY_CHANNEL", "Store"]


class Store(TrafficLog, Proposals):
    """A store of record: open with :meth:`open` (or :func:`walletfaq.open_store`).

    Reads (:meth:`entries`, :meth:`entry`, :meth:`log`, :meth:`history`, :meth:`diff`,
    :meth:`changes_since`) each see one consistent revision. Writes (:meth:`init`,
    :meth:`apply`, :meth:`rollback`) are one transaction each and return the new
    :class:`Revision`.

    The traffic loop: the query log and feedback (:meth:`log_query`, :meth:`queries`,
    :meth:`add_feedback`, :meth:`labelled_queries`, :meth:`purge_traffic`), changes staged and
    published as one revision (:meth:`stage`, :meth:`staged_corpus`, :meth:`publish`), and
    gap proposals (:meth:`add_proposals`, :meth:`decide_proposal`). Every method is one
    transaction.
    """

    @classmethod
    def open(cls, location: str, *, create: bool = False) -> Store:
        """Open the store at ``location`` (an SQLite file path or a database URL).

        Args:
            location: ``faq.db``, ``sqlite:///faq.db`` or ``postgresql://user@host/db``.
            create: create the schema in an empty database (otherwise an empty one is refused).

        Raises:
            StoreError: nothing there (without ``create``), not a walletfaq store, a schema
                newer than this walletfaq, or the database cannot be reached.
        """
        url = store_url(location)
        where = redact(url)
        engine = make_engine(url)
        database = Path(engine.url.database or "") if is_sqlite(engine) else None
        if database is not None and not database.parent.is_dir():
            raise StoreError(
                f"the folder of the SQLite store {database} does not exist; create it first"
            )
        if database is not None and not create and not database.is_file():
            raise StoreError(
                f"no walletfaq store at {database}; create one with "
                "`walletfaq store init --store PATH`"
            )
        try:
            prepare(engine, create=create, where=where)
        except (OperationalError, DatabaseError) as exc:
            engine.dispose()
            error = StoreUnavailableError if isinstance(exc, OperationalError) else StoreError
            raise error(f"cannot use the store at {where}: {database_reason(exc)}") from None
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- reading -------------------------------------------------------------------------

    def head(self) -> int:
        """The latest revision (0 for a store not yet initialised)."""
        with self._reading() as connection:
            return head_revision(connection)

    def entries(self, revision: int | None = None) -> Corpus:
        """The store's content at ``revision`` (default: the latest), in corpus order."""
        with self._reading() as connection:
            number = self._revision_or_head(connection, revision)
            versions = versions_at(connection, number)
        return Corpus(
            entries=tuple(v.entry for v in versions if v.entry is not None),
            source=f"{self.url}@{number}",
        )

    def entry(self, entry_id: str, revision: int | None = None) -> FAQEntry:
        """One entry at ``revision`` (default: the latest).

        Raises:
            StoreError: the store held no entry ``entry_id`` at that revision.
        """
        with self._reading() as connection:
            number = self._revision_or_head(connection, revision)
            row = connection.execute(
                select(schema.entry_versions)
                .where(schema.entry_versions.c.entry_id == entry_id)
                .where(schema.entry_versions.c.revision <= number)
                .order_by(schema.entry_versions.c.revision.desc())
                .limit(1)
            ).first()
        if row is None or row.deleted:
            raise StoreError(f"no entry {entry_id!r} at revision {number} of {self.url}")
        return entry_from_row(row)

    def log(self) -> tuple[Revision, ...]:
        """Every revision, oldest first."""
        counts = (
            select(
                schema.entry_versions.c.revision,
                func.count().label("changes"),
            )
            .group_by(schema.entry_versions.c.revision)
            .subquery()
        )
        query = (
            select(schema.revisions, func.coalesce(counts.c.changes, 0).label("changes"))
            .outerjoin(counts, counts.c.revision == schema.revisions.c.number)
            .order_by(schema.revisions.c.number)
        )
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return tuple(revision_from_row(row) for row in rows)

    def history(self, entry_id: str | None = None) -> tuple[EntryVersion, ...]:
        """The versions of one entry (or of every entry), oldest first."""
        query = select(schema.entry_versions).order_by(
            schema.entry_versions.c.revision, schema.entry_versions.c.position
        )
        if entry_id is not None:
            query = query.where(schema.entry_versions.c.entry_id == entry_id)
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return tuple(version_from_row(row) for row in rows)

    def snapshot(self) -> tuple[int, tuple[EntryVersion, ...]]:
        """The latest revision and each entry's version at it (with its position, in corpus
        order), read in one transaction: where a replica starts before it follows
        :meth:`changes_since` from that revision."""
        with self._reading() as connection:
            head = head_revision(connection)
            return head, tuple(versions_at(connection, head))

    def changes_since(self, revision: int, limit: int | None = None) -> tuple[EntryVersion, ...]:
        """The change feed: every entry version written after ``revision``, in revision order
        (then corpus order), at most ``limit`` of them (whole revisions are not split when
        ``limit`` is given: the batch ends at the last complete revision, or holds the first
        revision whole).

        A replica at revision R applies ``changes_since(R)`` in order (an entry with
        ``entry=None`` is removed, any other is added or replaced) and is then at the last
        change's revision, having embedded only the changed texts.

        Raises:
            StoreError: ``revision`` is negative or ahead of the store (a replaced store).
        """
        with self._reading() as connection:
            head = head_revision(connection)
            if revision < 0 or revision > head:
                raise StoreError(
                    f"revision {revision} is not in {self.url} (its latest is {head}); a replica "
                    "ahead of its store must rebuild from the store's latest revision"
                )
            query = (
                select(schema.entry_versions)
                .where(schema.entry_versions.c.revision > revision)
                .order_by(schema.entry_versions.c.revision, schema.entry_versions.c.position)
            )
            if limit is not None:
                query = query.limit(limit + 1)
            rows = connection.execute(query).all()
        changes = [version_from_row(row) for row in rows]
        if limit is not None and len(changes) > limit:
            last = changes[limit].revision  # the revision that did not fit whole
            whole = [c for c in changes[:limit] if c.revision != last]
            changes = whole or self._whole_revision(last)
        return tuple(changes)

    def diff(self, old: int, new: int) -> StoreDiff:
        """What changed from revision ``old`` to revision ``new``."""
        with self._reading() as connection:
            before = {
                v.entry_id: v.entry
                for v in versions_at(connection, self._revision_or_head(connection, old))
            }
            after = {
                v.entry_id: v.entry
                for v in versions_at(connection, self._revision_or_head(connection, new))
            }
        added = tuple(EntryDiff(i, None, e) for i, e in after.items() if i not in before)
        removed = tuple(EntryDiff(i, e, None) for i, e in before.items() if i not in after)
        changed = tuple(
            EntryDiff(i, before[i], e) for i, e in after.items() if i in before and before[i] != e
        )
        return StoreDiff(old=old, new=new, added=added, removed=removed, changed=changed)

    # --- writing -------------------------------------------------------------------------

    def init(self, corpus: Corpus, *, author: str, reason: str | None = None) -> Revision:
        """Import ``corpus`` as revision 1 of an empty store.

        Raises:
            StoreError: the store already has revisions, or ``corpus`` is empty.
        """
        if not len(corpus):
            raise StoreError("the corpus to import has no entries; add at least one")
        writes = [Write(e.id, e, position) for position, e in enumerate(corpus.entries)]
        return self._write(writes, author, reason, kind="import", expect_empty=True)

    def apply(
        self,
        changes: Sequence[Change],
        *,
        author: str,
        reason: str | None = None,
        if_match: int | None = None,
    ) -> Revision:
        """Apply ``changes`` as one new revision, all or nothing.

        Args:
            changes: the edits; each entry id at most once.
            author: who makes the change (recorded in the log).
            reason: why (optional, recorded).
            if_match: the revision the edit is based on: when an entry it touches changed
                after that revision, nothing is written and :class:`StoreConflictError` is
                raised (two editors never overwrite each other silently).

        Raises:
            StoreConflictError: ``if_match`` is older than an entry's last change.
            StoreError: an ``add`` of an id the store holds, an ``update``/``remove`` of one it
                does not, an id twice, no changes, the last entry removed.
        """
        check_changes(changes, "apply")
        checks = {c.entry_id: c.op for c in changes}
        writes = [Write(c.entry_id, c.entry, None) for c in changes]
        return self._write(writes, author, reason, kind="edit", checks=checks, if_match=if_match)

    def rollback(self, to: int, *, author: str, reason: str | None = None) -> Revision:
        """A new revision whose content equals revision ``to``'s (history is kept).

        Raises:
            StoreError: ``to`` is not a revision of the store, or its content is the latest's.
        """
        with self._reading() as connection:
            self._revision_or_head(connection, to)
        for _attempt in range(10):
            with self._reading() as connection:
                head = head_revision(connection)
                target = {v.entry_id: v for v in versions_at(connection, to)}
                current = {v.entry_id: v for v in versions_at(connection, head)}
            writes = [
                Write(i, v.entry, v.position)
                for i, v in target.items()
                if i not in current or current[i].entry != v.entry
            ]
            writes += [Write(i, None, None) for i in current if i not in target]
            if not writes:
                raise StoreError(
                    f"nothing to roll back: revision {to}'s content equals the latest "
                    f"(revision {head})"
                )
            writes.sort(key=lambda w: w.entry_id)
            try:
                return self._write(
                    writes, author, reason, kind="rollback", restores=to, expect_head=head
                )
            except HeadMoved:
                continue  # someone wrote meanwhile: recompute against the new head
        raise StoreError(f"could not roll back to revision {to}: the store kept changing")

    # --- internals -----------------------------------------------------------------------

    def _whole_revision(self, number: int) -> list[EntryVersion]:
        with self._reading() as connection:
            rows = connection.execute(
                select(schema.entry_versions)
                .where(schema.entry_versions.c.revision == number)
                .order_by(schema.entry_versions.c.position)
            ).all()
        return [version_from_row(row) for row in rows]

    def _revision_or_head(self, connection: Connection, revision: int | None) -> int:
        head = head_revision(connection)
        if revision is None:
            return head
        if isinstance(revision, bool) or not isinstance(revision, int):
            raise StoreError(f"a revision is a whole number, got {revision!r}")
        if not 1 <= revision <= head:
            raise StoreError(
                f"no revision {revision} in {self.url}: its revisions are 1 to {head}"
                if head
                else f"no revision {revision}: {self.url} is empty (run `walletfaq store init`)"
            )
        return revision

    def _write(
        self,
        writes: list[Write],
        author: str,
        reason: str | None,
        *,
        kind: RevisionKind,
        checks: Mapping[str, str] | None = None,
        if_match: int | None = None,
        restores: int | None = None,
        expect_empty: bool = False,
        expect_head: int | None = None,
    ) -> Revision:
        with self._writing() as connection:
            return write_revision(
                connection,
                writes,
                author=author,
                reason=reason,
                kind=kind,
                url=self.url,
                checks=checks,
                if_match=if_match,
                restores=restores,
                expect_empty=expect_empty,
                expect_head=expect_head,
            )
