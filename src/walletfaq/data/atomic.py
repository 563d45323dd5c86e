"""Crash-safe directory writes: a directory is staged beside its target, flushed to disk, and
switched into place in one atomic step.

How a save proceeds (each step is durable before the next starts):

1. lock the parent directory (``flock``), so that two saves into one parent never interleave
   and any staging directory found there belongs to a save that died;
2. remove the debris of such dead saves: hidden siblings named ``.<target>.walletfaq-*``;
3. write the new content into a fresh staging sibling ``.<target>.walletfaq-stage-XXXX``;
4. ``fsync`` every staged file and the staging directory;
5. switch: if ``target`` does not exist, ``rename(staging, target)``; otherwise exchange the two
   names atomically with Linux ``renameat2(RENAME_EXCHANGE)``, so ``target`` is at every
   instant either the complete old or the complete new directory;
6. ``fsync`` the parent directory, then delete the old content (now under the staging name).

What a save may replace is one rule for every saved format (:func:`check_replaceable`): nothing,
an empty directory, or a directory that is provably of that format (its marker file verifies and
it holds nothing the format does not write).

A crash (power loss, ``kill -9``) at any point leaves the old or the new directory at
``target``, plus at most one staging directory that the next save in that parent removes.
On systems without ``RENAME_EXCHANGE`` (non-Linux, or a filesystem that refuses it) step 5 falls
back to two renames, with a short window in which ``target`` is absent; this is logged once.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from walletfaq.errors import IndexFormatError

logger = logging.getLogger(__name__)

STAGE_MARK = "walletfaq-stage-"
OLD_MARK = "walletfaq-old-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextmanager
def staged_directory(
    target: Path, *, check_target: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """Yield an empty staging directory to fill; on success it replaces ``target`` atomically.

    Args:
        target: the directory to create or replace.
        check_target: called with ``target`` while the parent is locked, before anything is
            written and again right before the switch; it raises to refuse replacing what is
            there (nothing is touched then). Every save through this function holds the parent
            lock, so no other such save can change ``target`` between the last check and the
            switch; a writer that does not take the lock (``cp``, ``mv``, ``rsync``) could in the
            microseconds between that check and the ``rename``.

    When the block raises, the staging directory is removed and ``target`` is left as it was.
    OS errors (permissions, a file where a directory is expected, a full disk) propagate as
    :class:`OSError`; callers turn them into their own error types.
    """
    target = Path(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _locked(parent):
        if check_target is not None:
            check_target(target)
        remove_debris(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{STAGE_MARK}", dir=parent))
        try:
            yield staging
            os.chmod(staging, 0o755)  # mkdtemp creates it private
            _fsync_tree(staging)
            if check_target is not None:  # as close to the switch as it gets
                check_target(target)
            _switch(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)  # the previous content, if any


def check_replaceable(
    target: Path,
    *,
    what: str,
    marker: str,
    owns: Callable[[Path], bool],
    is_ours: Callable[[Path], bool],
) -> None:
    """The one rule for what a save may replace: ``target`` absent, an empty directory, or
    provably a ``what``: its ``marker`` file verifies (``is_ours(target)``) and every entry in it
    is one that format writes (``owns(entry)``; a symbolic link never is).

    Raises:
        IndexFormatError: ``target`` is a file, holds an entry the format does not write, or
            its marker is missing or does not verify; nothing is touched.
    """
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise IndexFormatError(
            f"{target}: exists and is not a directory; choose a new or empty directory"
        )
    entries = list(target.iterdir())
    if not entries:
        return
    foreign = sorted(
        p.name + ("/" if p.is_dir() else "") for p in entries if p.is_symlink() or not owns(p)
    )
    if foreign:
        listed = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise IndexFormatError(
            f"{target}: holds files walletfaq did not write ({listed}); nothing was changed. "
            f"Save the {what} into a new or empty directory, or move those files out"
        )
    if not is_ours(target):
        raise IndexFormatError(
            f"{target}: exists and is not a {what} (its {marker} is not ours: missing, edited "
            "or another tool's); nothing was changed. Choose a new or empty directory"
        )


def remove_debris(target: Path) -> list[Path]:
    """Delete staging/retired siblings of ``target`` left by saves that died; return them.

    Only hidden siblings whose names start with ``.<target name>.walletfaq-stage-`` or
    ``.<target name>.walletfaq-old-`` (names only this module creates) are removed. Call it
    with the parent locked (as :func:`staged_directory` does) so no live save is touched.
    """
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:{STAGE_MARK}|{OLD_MARK})[A-Za-z0-9_]+$")
    removed = []
    with suppress(FileNotFoundError):
        for sibling in target.parent.iterdir():
            if pattern.match(sibling.name) and sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
                removed.append(sibling)
    if removed:
        logger.info("removed %d leftover staging directories of %s", len(removed), target)
    return removed


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary sibling, flush it, and rename it over ``path``:
    readers see the old or the new file, never a part of it. Returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """:func:`write_text_atomic` for bytes: a temporary sibling, flushed, renamed over
    ``path``. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates it private
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as UTF-8 JSON and flush it to disk."""
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _fsync_tree(root: Path) -> None:
    """Flush every file under ``root``, then every directory (deepest first), to disk."""
    directories = []
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_symlink():
            continue
        if path.is_dir():
            directories.append(path)
        else:
            _fsync_path(path)
    for directory in (*directories, root):
        _fsync_path(directory)


def _fsync_path(path: Path) -> None:
    if os.name == "nt" and path.is_dir():  # pragma: no cover - directories cannot be opened
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; afterwards ``staging`` holds the previous content, if
    any (or no longer exists)."""
    if not target.exists():
        os.rename(staging, target)
    else:
        try:
            _exchange(staging, target)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            logger.warning(
                "this filesystem cannot exchange directories atomically (%s); replacing %s with "
                "two renames",
                exc.strerror,
                target,
            )
            _replace_by_two_renames(staging, target)
    _fsync_path(target.parent)


def _exchange(first: Path, second: Path) -> None:
    """Atomically swap two paths (Linux ``renameat2(..., RENAME_EXCHANGE)``)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        raise OSError(errno.ENOSYS, "renameat2 is not available") from None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(second))


def _replace_by_two_renames(staging: Path, target: Path) -> None:
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.{OLD_MARK}", dir=target.parent))
    os.rmdir(retired)
    os.rename(target, retired)
    os.rename(staging, target)
    os.rename(retired, staging)
