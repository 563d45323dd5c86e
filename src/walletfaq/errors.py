"""Exceptions raised by walletfaq.

Every error derives from :class:`WalletFAQError`, itself a :class:`ValueError`, so callers can
catch one class. Messages say what was wrong, where (file, line, field) and how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class WalletFAQError(ValueError):
    """Base class of every error walletfaq raises on purpose."""


class CorpusError(WalletFAQError):
    """A corpus or contacts file is malformed.

    Attributes:
        path: the file that was read (``None`` for in-memory data).
        line: 1-based line number of the offending record (``None`` if not line-specific).
        field: the offending field name (``None`` if the whole record is bad).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = self.path or "<in-memory corpus>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" field {field!r}"
        super().__init__(f"{where}: {message}")


class QueryError(WalletFAQError):
    """A question passed to search is unusable (empty, not a string, bad ``k``...)."""


class ModelError(WalletFAQError):
    """An embedding model could not be resolved, built or verified."""


class IndexFormatError(WalletFAQError):
    """A saved index directory is missing files, corrupt, or of an unknown format version."""


class IndexWriteError(IndexFormatError):
    """An index could not be written: the operating system refused (permissions, a file where
    a directory is expected, a full disk). The previous content of the target is intact."""


class IndexConflictError(WalletFAQError):
    """An edit was to be saved to an index directory that another save replaced since the edit
    started from it; nothing was written (the other save is kept)."""


class IndexMismatchError(WalletFAQError):
    """A saved index does not match the model or corpus it is being used with."""


class StoreError(WalletFAQError):
    """The store of record cannot be opened, read or written as asked (missing, not a walletfaq
    store, written by a newer walletfaq, unreachable, or the edit is invalid)."""


class StoreUnavailableError(StoreError):
    """The store of record could not be reached or did not answer (connection refused or lost,
    the server shutting down, an SQLite file locked past the busy timeout). Nothing was written
    by the failed call; try again later (a replica keeps serving its last revision)."""


class StoreConflictError(StoreError):
    """A conditional edit (``if_match``) lost: the entry changed after the revision it was
    based on. Nothing was written; read the entry again and redo the edit.

    Attributes:
        entry_id: the entry that changed.
        if_match: the revision the edit was based on.
        changed_at: the later revision that changed the entry.
    """

    def __init__(self, entry_id: str, if_match: int, changed_at: int) -> None:
        self.entry_id = entry_id
        self.if_match = if_match
        self.changed_at = changed_at
        super().__init__(
            f"entry {entry_id!r} changed in revision {changed_at}, after revision {if_match} "
            "that this edit was based on; read it again and redo the edit"
        )


class GapError(WalletFAQError):
    """The input of gap mining is unusable: a logged question with a bad field, a bad
    parameter, or a proposal that cannot be applied.

    Attributes:
        position: 0-based position of the offending logged question (``None`` if not one).
        field: the offending field or parameter (``None`` if the whole item is bad).
        detail: the message without the position and field.
    """

    def __init__(
        self, message: str, *, position: int | None = None, field: str | None = None
    ) -> None:
        self.detail = message
        self.position = position
        self.field = field
        where = f"questions[{position}]" if position is not None else ""
        if field is not None:
            where = f"{where}.{field}" if where else field
        super().__init__(f"{where}: {message}" if where else message)
