"""The index a service answers from: a holder of the current retriever, hot reload, edits.

:class:`ServedIndex` holds the :class:`~walletfaq.retrieval.retriever.FAQRetriever` a service
answers from, as one immutable :class:`Served` snapshot. Nothing is ever changed under a reader: a
request reads :attr:`ServedIndex.current` once and answers from that snapshot, and a reload
builds a whole new retriever and swaps it in with one attribute assignment (copy on write), so
requests in flight finish on the old index and later ones get the new one.

Hot reload: a saved index directory names its content by the ``checksum`` field of its
manifest (:func:`manifest_checksum`; a save replaces the whole directory in one atomic step).
:meth:`ServedIndex.poll` (the background check) and :meth:`ServedIndex.reload` notice any change
to any file of the directory by a cheap identity of its entries
(:func:`~walletfaq.data.integrity.folder_identity`: names, inodes, sizes, times; no file read).
On a change, a directory with another manifest checksum is loaded, and one with the served
checksum has every file verified against its manifest (a damaged copy with the same manifest is
not "unchanged"). A directory that cannot be loaded or verified leaves the old index in service
(:class:`ReloadError`, :attr:`ServedIndex.failing`); the same failed content is not tried
again, and the failure clears by itself at the next check that finds good content, even the
very content served.

Edits across worker processes: :meth:`ServedIndex.edit` runs under a lock shared with reloads
and, with a directory, under a lock file beside it (``.<name>.walletfaq-serve.lock``, shared by
every process serving that directory); it first loads what another process saved there, then
applies and saves its own edit, so edits from several workers apply one after the other and none
is lost. The edit's save is conditional
(:class:`~walletfaq.index.directory.IfUnchanged`): a deploy that replaced the directory while
the edit was embedding (``walletfaq build --out DIR``, ``save(DIR)``, which do not take the lock
file) is kept and served, and the edit is refused (:class:`EditConflictError`, 409).

This module has no web dependency: :mod:`walletfaq.service.app` serves a :class:`ServedIndex` over
HTTP and :mod:`walletfaq.service.errors` maps these errors to statuses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import walletfaq.index.directory as index_directory
from walletfaq.data.integrity import FolderIdentity, folder_identity
from walletfaq.errors import IndexConflictError, IndexFormatError, WalletFAQError
from walletfaq.index.directory import IfUnchanged, manifest_checksum
from walletfaq.retrieval.retriever import FAQRetriever

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".walletfaq-serve.lock"
"""Name of the lock file beside an index directory (``.<name>`` + this) that serialises edits
from several worker processes."""

_LOAD_ATTEMPTS = 3
"""Loads of a directory tried when it is replaced while being read."""

_T = TypeVar("_T")


# --------------------------------------------------------------------------- errors
class NothingToReloadError(WalletFAQError):
    """The index was not loaded from a directory: there is nothing on disk to reload (the
    service answers 409)."""


class ReloadError(WalletFAQError):
    """The index directory could not be loaded; the previous index is still served (the
    service answers 500)."""


class PersistError(WalletFAQError):
    """An accepted edit could not be written to the index directory; it was not applied (the
    service answers 500)."""


class EditConflictError(WalletFAQError):
    """The index directory was replaced by another save while an edit was being applied; the
    edit was not applied and the new content is served (the service answers 409)."""


class ReloadMetrics(Protocol):
    """Where a :class:`ServedIndex` counts its reloads
    (:class:`~walletfaq.service.metrics.ServiceMetrics`).

    Attributes:
        reloads: loads of the directory, labelled by result (``reloaded``, ``unchanged``,
            ``failed``).
        reload_failing: 1 while the directory holds content that could not be loaded.
    """

    reloads: Counter
    reload_failing: Gauge

    def describe(self, retriever: FAQRetriever) -> None:
        """Record what ``retriever`` serves (after a reload)."""


# --------------------------------------------------------------------------- the served index
@dataclass(frozen=True)
class Served:
    """One index the service answers from.

    Attributes:
        retriever: answers the questions.
        base_version: added to ``retriever.version`` to number the service's index versions,
            so that they keep increasing across reloads (a loaded retriever starts at the
            version saved in its directory).
        checksum: the manifest checksum of the directory content this retriever holds (as
            loaded, or as last saved by an edit); ``None`` = not known to match the directory.
    """

    retriever: FAQRetriever
    base_version: int = 0
    checksum: str | None = None

    @property
    def version(self) -> int:
        """The service's index version: the saved one at start (1 for a new build), +1 per
        applied edit or reload (or the saved one, when another worker's edits put it ahead)."""
        return self.base_version + _index_version(self.retriever)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did.

    Attributes:
        changed: whether a new index is now served (``False``: the directory held what was
            already served, nothing was loaded).
        version: the index version served now.
        previous_version: the index version served before.
        entries: FAQ entries served now.
        vectors: vectors in the index served now.
        index_checksum: the first 16 hex digits of the served directory content's manifest
            checksum (``None`` when unknown).
    """

    changed: bool
    version: int
    previous_version: int
    entries: int
    vectors: int
    index_checksum: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``POST /v1/reload`` answer)."""
        return asdict(self)


class ServedIndex:
    """The retriever a service answers from, replaced whole when its directory changes.

    A request reads :attr:`current` once and answers from that snapshot: a reload never
    changes the index under a running request (requests in flight finish on the old
    retriever, later ones get the new one; the swap is one attribute assignment).

    Edits (:meth:`edit`) and reloads are serialised by one lock. With a ``directory``, an edit
    also holds a lock file beside it (``.<name>.walletfaq-serve.lock``, shared by every process
    serving that directory) and first loads what another process saved there, so that edits
    made through several worker processes apply one after the other and none is lost.

    Args:
        retriever: the retriever served at first.
        directory: the saved index directory ``retriever`` was loaded from, where edits are
            persisted and from where :meth:`reload` loads (a symbolic link to one is followed
            anew at each check); ``None`` = memory only.
        metrics: where reloads are counted (optional).
    """

    def __init__(
        self,
        retriever: FAQRetriever,
        directory: str | Path | None = None,
        *,
        metrics: ReloadMetrics | None = None,
    ) -> None:
        # absolute, not resolved: a symbolic link switched to another index directory (a
        # common way to deploy a release) is followed at every check
        self.directory = None if directory is None else Path(directory).expanduser().absolute()
        # None when the directory does not hold this retriever's corpus (it was replaced
        # since the retriever was loaded): the first poll then loads what it holds
        checksum = None if self.directory is None else _checksum_of(self.directory, retriever)
        self._current = Served(retriever, base_version=0, checksum=checksum)
        self._metrics = metrics
        self._lock = threading.Lock()
        # the directory's identity when it was last found to hold the served index (None: not
        # verified yet, so the first check hashes its files once) and when it last failed
        self._verified: FolderIdentity | None = None
        self._failed: FolderIdentity | None = None
        self._failing = False
        self.last_error: str | None = None
        """Why the last reload failed, until one succeeds (``None``: it did not fail)."""

    def __repr__(self) -> str:
        current = self._current
        return (
            f"ServedIndex(directory={self.directory!r}, version={current.version}, "
            f"entries={len(current.retriever.corpus)})"
        )

    @property
    def current(self) -> Served:
        """The index served now: read it once per request."""
        return self._current

    @property
    def failing(self) -> bool:
        """Whether the directory holds content that could not be loaded (the previous index
        is served)."""
        return self._failing

    def reload(self) -> ReloadResult:
        """Load the directory and serve it, unless it holds what is already served (same
        manifest checksum and every file verified: ``changed`` is ``False``).

        Raises:
            NothingToReloadError: there is no directory (the retriever lives in memory).
            ReloadError: the directory could not be loaded; the previous index is still
                served.
        """
        if self.directory is None:
            raise NothingToReloadError(
                "this service was not started from an index directory (walletfaq serve "
                "--index DIR), so there is nothing on disk to reload from; start it with "
                "--index, or restart it to serve another corpus"
            )
        with self._lock:
            return self._reload(self.directory)

    def poll(self) -> ReloadResult | None:
        """The background check: when any file of the directory changed since it was last
        verified (and it is not the content that last failed), verify or load it as
        :meth:`reload` does; ``None`` when nothing was tried (no directory, nothing changed).

        Raises:
            ReloadError: as :meth:`reload`.
        """
        if self.directory is None or not self._is_new(self.directory):
            return None
        with self._lock:  # an edit may have saved (and recorded) it meanwhile: check again
            if not self._is_new(self.directory):
                return None
            return self._reload(self.directory)

    def edit(self, change: Callable[[FAQRetriever, IfUnchanged | None], _T]) -> tuple[_T, Served]:
        """Run ``change(retriever, directory)`` on the retriever served, with edits and reloads
        excluded, and return its result and the index served afterwards.

        ``change`` edits the retriever in place, persisting to ``directory`` when it is not
        ``None`` (``retriever.add(..., persist_to=directory)``). Before it runs, a directory
        changed on disk (a save by another process) is loaded first, so the edit applies to
        the latest saved index.

        ``directory`` is handed to ``change`` as an
        :class:`~walletfaq.index.directory.IfUnchanged` naming the content the edit starts
        from, so that its save is refused if another save (a deploy) replaces the directory
        while ``change`` runs; the deploy is then served and the edit is not applied.

        Raises:
            PersistError: the directory changed on disk and cannot be loaded, or its lock file
                cannot be created; the edit was not applied.
            EditConflictError: another save replaced the directory while the edit was applied;
                the edit was not applied and the new content is served.
        """
        with self._lock, self._edit_lock_file():
            directory = self.directory
            if directory is not None and self._changed_on_disk(directory):
                try:
                    self._reload(directory)
                except ReloadError as exc:
                    raise PersistError(f"the edit was not applied: {exc}") from None
            served = self._current
            target = None if directory is None else IfUnchanged(directory, served.checksum)
            try:
                result = change(served.retriever, target)
            except IndexConflictError:
                raise self._conflict(directory) from None
            if directory is not None:
                identity = folder_identity(directory)  # before the checksum: see _reload
                checksum = _checksum_of(directory, served.retriever)
                if checksum is None:  # replaced right after the edit's save
                    raise self._conflict(directory)
                self._verified = identity
                served = replace(served, checksum=checksum)
                self._current = served
            return result, served

    # ------------------------------------------------------------------ internals
    def _changed_on_disk(self, directory: Path) -> bool:
        """Whether any file of ``directory`` changed since it was last verified to hold the
        served index (identity, no file read)."""
        identity = folder_identity(directory)
        return identity is None or identity != self._verified

    def _is_new(self, directory: Path) -> bool:
        """Whether :meth:`poll` should check ``directory``: a failure to clear, or a change on
        disk that is not the very content that last failed (a new save of the same content
        is tried again)."""
        identity = folder_identity(directory)
        if identity is not None and identity == self._verified:
            return self._failing  # the served content is back: clear the failure
        return not (self._failing and identity == self._failed)

    def _conflict(self, directory: Path | None) -> EditConflictError:
        """The error of an edit whose directory another save replaced; the new content is
        served first (or the failure to load it recorded). Called with the lock held."""
        with contextlib.suppress(ReloadError):
            if directory is not None:
                self._reload(directory)
        current = self._current
        return EditConflictError(
            f"the edit was not applied: another save replaced {directory} while the edit was "
            f"being applied; that save is kept and served (version {current.version}, "
            f"{len(current.retriever.corpus)} entries); send the edit again if it is still "
            "wanted"
        )

    def _reload(self, directory: Path) -> ReloadResult:
        """Load ``directory`` and swap it in unless it holds the served content (verified
        when anything changed on disk); called with the lock held."""
        previous = self._current
        # read before the content, so that a change during the read shows at the next check
        identity = folder_identity(directory)
        checksum = manifest_checksum(directory)
        try:
            if checksum is not None and checksum == previous.checksum:
                if identity is None or identity != self._verified:
                    self._verify(directory, previous)
                self._verified = identity
                self._recovered()
                if self._metrics is not None:
                    self._metrics.reloads.labels("unchanged").inc()
                return self._result(False, previous, previous)
            retriever, checksum = self._load(directory, previous)
        except ReloadError as exc:
            if not (self._failing and self._failed == identity):  # once per failed save
                logger.warning("%s", exc)
            self._failed = identity
            self.last_error = str(exc)
            self._set_failing(True)
            if self._metrics is not None:
                self._metrics.reloads.labels("failed").inc()
            raise
        # the saved version when it is ahead (another worker's edits), else one more
        version = max(previous.version + 1, _index_version(retriever))
        served = Served(
            retriever, base_version=version - _index_version(retriever), checksum=checksum
        )
        self._current = served
        self._verified = identity
        self._recovered()
        if self._metrics is not None:
            self._metrics.reloads.labels("reloaded").inc()
            self._metrics.describe(retriever)
        logger.info(
            "reloaded %s: version %d -> %d, %d entries",
            directory,
            previous.version,
            served.version,
            len(retriever.corpus),
        )
        return self._result(True, previous, served)

    def _verify(self, directory: Path, previous: Served) -> None:
        """Check every file of ``directory`` against its manifest (it names the served
        content)."""
        try:
            index_directory.verify(directory)
        except IndexFormatError as exc:
            raise ReloadError(
                f"cannot reload the index from {directory}: {exc}; still serving version "
                f"{previous.version} ({len(previous.retriever.corpus)} entries)"
            ) from None

    def _recovered(self) -> None:
        self.last_error = None
        self._failed = None
        self._set_failing(False)

    def _load(self, directory: Path, previous: Served) -> tuple[FAQRetriever, str | None]:
        """A retriever of ``directory`` and the checksum read before loading it; a load that
        fails while the directory is being replaced is tried again."""
        reason = f"it was replaced {_LOAD_ATTEMPTS} times while being read"
        for _ in range(_LOAD_ATTEMPTS):
            before = manifest_checksum(directory)
            try:
                return _load_like(directory, previous.retriever), before
            except (WalletFAQError, OSError) as exc:
                if manifest_checksum(directory) != before:
                    continue  # replaced while it was read: read the new content
                reason = str(exc) or type(exc).__name__
                break
        raise ReloadError(
            f"cannot reload the index from {directory}: {reason}; still serving version "
            f"{previous.version} ({len(previous.retriever.corpus)} entries)"
        )

    def _set_failing(self, failing: bool) -> None:
        self._failing = failing
        if self._metrics is not None:
            self._metrics.reload_failing.set(1 if failing else 0)

    @staticmethod
    def _result(changed: bool, previous: Served, served: Served) -> ReloadResult:
        return ReloadResult(
            changed=changed,
            version=served.version,
            previous_version=previous.version,
            entries=len(served.retriever.corpus),
            vectors=int(served.retriever.index.ntotal),
            index_checksum=served.checksum[:16] if served.checksum is not None else None,
        )

    def remove_lock_file(self) -> None:
        """On a clean shutdown: remove the lock file beside the directory, unless another
        process holds it right now (it is then left for that one). Safe while other processes
        serve the directory: one that locked the removed file notices and locks a new one."""
        if self.directory is None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock file
            return
        path = self._lock_path()
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return  # no edit made one, or it is gone already
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path):
                path.unlink()
        except OSError:
            pass  # held by another process's edit: it stays
        finally:
            os.close(fd)

    def _lock_path(self) -> Path:
        assert self.directory is not None
        return self.directory.parent / f".{self.directory.name}{LOCK_SUFFIX}"

    @contextlib.contextmanager
    def _edit_lock_file(self) -> Iterator[None]:
        """Hold the exclusive lock shared by every process editing this directory (a no-op
        without a directory, or where ``fcntl`` is missing)."""
        if self.directory is None:
            yield
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one process per directory
            yield
            return
        path = self._lock_path()
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise PersistError(
                    f"the edit was not applied: cannot create the lock file {path} "
                    f"({exc.strerror or exc}); make {path.parent} writable"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
            os.close(fd)  # removed by a process shutting down while we waited: lock anew
        try:
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _load_like(directory: Path, previous: FAQRetriever) -> FAQRetriever:
    """Load ``directory`` with ``previous``'s encoder when the index was built with the same
    model (no second model in memory), else with the model its manifest names; the question
    normalizer (code, not saved) is carried over."""
    manifest = index_directory.read_manifest(directory)
    same_model = manifest.model_fingerprint == previous.encoder.fingerprint
    retriever = FAQRetriever.load(directory, model=previous.encoder if same_model else None)
    retriever.normalizer = previous.normalizer
    return retriever


def _checksum_of(directory: Path, retriever: FAQRetriever) -> str | None:
    """The directory's manifest checksum if it holds ``retriever``'s corpus (as just saved by
    an edit), else ``None`` (another writer replaced it meanwhile: the next poll loads it)."""
    try:
        manifest = index_directory.read_manifest(directory)
    except IndexFormatError:
        return None
    if manifest.corpus_hash != retriever.corpus.content_hash():
        return None
    return str(manifest.to_dict()["checksum"])


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _index_version(retriever: FAQRetriever) -> int:
    """The retriever's index version (:attr:`FAQRetriever.version`; 1 where it has none)."""
    version = getattr(retriever, "version", 1)
    return version if isinstance(version, int) else 1


__all__ = [
    "LOCK_SUFFIX",
    "NothingToReloadError",
    "EditConflictError",
    "PersistError",
    "ReloadError",
    "ReloadMetrics",
    "ReloadResult",
    "Served",
    "ServedIndex",
    "manifest_checksum",
]
