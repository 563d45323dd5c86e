"""What the store reads and writes: edits (:class:`Change`) and what it returns (revisions,
entry versions, the change feed, diffs), as small frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.errors import StoreError

ChangeOp = Literal["add", "update", "remove"]
RevisionKind = Literal["import", "edit", "rollback", "publish", "proposal"]


@dataclass(frozen=True)
class Change:
    """One edit of one entry, for :meth:`Store.apply <walletfaq.store.Store.apply>`.

    ``add`` needs an id the store does not hold, ``update`` and ``remove`` one it holds.
    Build with :meth:`add`, :meth:`update` or :meth:`remove`.
    """

    op: ChangeOp
    entry_id: str
    entry: FAQEntry | None = None

    @classmethod
    def add(cls, entry: FAQEntry | dict[str, object]) -> Change:
        """Add a new entry (validated like a corpus line)."""
        valid = _valid_entry(entry)
        return cls("add", valid.id, valid)

    @classmethod
    def update(cls, entry: FAQEntry | dict[str, object]) -> Change:
        """Replace the content of the entry with the same id."""
        valid = _valid_entry(entry)
        return cls("update", valid.id, valid)

    @classmethod
    def remove(cls, entry_id: str) -> Change:
        """Remove the entry ``entry_id``."""
        if not isinstance(entry_id, str) or not entry_id.strip():
            raise StoreError(f"remove needs an entry id, got {entry_id!r}")
        return cls("remove", entry_id.strip(), None)


@dataclass(frozen=True)
class Revision:
    """One revision of the store: who changed what, when and why.

    Attributes:
        number: from 1 (the initial import), one more per write.
        created_at: when it was committed (UTC).
        author: who made it (a name).
        reason: why, if given.
        kind: ``import`` (revision 1), ``edit``, ``rollback``, ``publish`` (the staged
            changes, published) or ``proposal`` (an accepted gap proposal).
        restores: for a rollback, the revision whose content it restores.
        changes: how many entries it added, changed or removed.
        forced: a publish that went ahead although its quality gate refused it.
    """

    number: int
    created_at: datetime
    author: str
    reason: str | None
    kind: RevisionKind
    restores: int | None
    changes: int
    forced: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (the time in ISO 8601, UTC)."""
        return {
            "revision": self.number,
            "time": self.created_at.isoformat(),
            "author": self.author,
            "reason": self.reason,
            "kind": self.kind,
            "restores": self.restores,
            "changes": self.changes,
            "forced": self.forced,
        }


@dataclass(frozen=True)
class EntryVersion:
    """An entry as one revision left it: its content, or ``None`` when that revision removed
    it. Read by revision, these are the change feed (:meth:`Store.changes_since`)."""

    revision: int
    entry_id: str
    entry: FAQEntry | None
    position: int

    @property
    def deleted(self) -> bool:
        """Whether this revision removed the entry."""
        return self.entry is None


@dataclass(frozen=True)
class EntryDiff:
    """One entry that differs between two revisions (``before`` or ``after`` is ``None`` when
    it did not exist on that side)."""

    entry_id: str
    before: FAQEntry | None
    after: FAQEntry | None


@dataclass(frozen=True)
class StoreDiff:
    """What changed from revision ``old`` to revision ``new``, entry by entry."""

    old: int
    new: int
    added: tuple[EntryDiff, ...]
    removed: tuple[EntryDiff, ...]
    changed: tuple[EntryDiff, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _valid_entry(entry: FAQEntry | dict[str, object]) -> FAQEntry:
    """The entry, validated by the corpus loader's rules (raises CorpusError)."""
    return Corpus.from_entries([entry], source="<store edit>").entries[0]
