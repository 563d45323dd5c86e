"""File digests: what was written is what is read back.

Saved indexes record the SHA-256 of every file in their manifest; derived model folders list
theirs in ``walletfaq_build.json``. Both are checked on load, so a flipped byte, a truncated or
edited file, or a deleted one is refused instead of silently changing answers.
Hashing runs at about 1 GB/s here (a 4 MB index: ≈ 4 ms).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from walletfaq.data.atomic import write_json
from walletfaq.data.strictjson import loads

BUILD_INFO_FILE = "walletfaq_build.json"
"""Checksum list written into derived model folders."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


FolderIdentity = tuple[tuple[str, int, int, int, int, int], ...]
"""What :func:`folder_identity` returns: (name, device, inode, size, mtime, ctime) per entry."""


def folder_identity(folder: Path) -> FolderIdentity | None:
    """A cheap identity of ``folder``'s content, without reading any file: the folder itself
    and each entry in it, by name, device, inode, size and modification and change times (ns).

    Any write to a file, a file added, removed or renamed, or the folder replaced (a save
    exchanges directories; a symbolic link switched to another folder) changes it; the change
    time cannot be set back by a user. ``None`` when the folder cannot be listed. Equal
    identities mean the bytes were not touched; a different one means "hash to find out"
    (:func:`mismatched_files`).
    """
    try:
        own = folder.stat()
        with os.scandir(folder) as listing:
            stats = [(entry.name, entry.stat(follow_symlinks=False)) for entry in listing]
    except OSError:
        return None
    rows = [
        (name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        for name, st in [("", own), *sorted(stats, key=lambda item: item[0])]
    ]
    return tuple(rows)


def mismatched_files(folder: Path, expected: dict[str, str]) -> list[str]:
    """Describe every file of ``expected`` (relative path → SHA-256) that is missing from
    ``folder`` or whose content differs; an empty list means all match."""
    problems = []
    for relative, digest in expected.items():
        path = folder / relative
        if not path.is_file():
            problems.append(f"{relative} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{relative} differs from what was written (checksum mismatch)")
    return problems


def write_build_info(folder: Path, source: dict[str, Any]) -> None:
    """Write :data:`BUILD_INFO_FILE` with the SHA-256 of every other file in ``folder``."""
    files = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != BUILD_INFO_FILE
    }
    write_json(folder / BUILD_INFO_FILE, {"format": 1, "source": source, "files": files})
    os.chmod(folder / BUILD_INFO_FILE, 0o644)


def verify_build_info(path: str | os.PathLike[str]) -> None:
    """Check every file listed in a derived folder's :data:`BUILD_INFO_FILE`.

    Raises:
        ValueError: the list is missing or unreadable, a listed file is missing, or a file's
            SHA-256 differs from the recorded one.
    """
    folder = Path(path)
    info = folder / BUILD_INFO_FILE
    if not info.is_file():
        raise ValueError(f"{folder}: missing {BUILD_INFO_FILE}; not a walletfaq-built model folder")
    try:
        files = loads(info.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise TypeError("'files' must map file names to checksums")
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONProblem is a ValueError
        raise ValueError(f"{info}: unreadable checksum list ({exc})") from None
    if not files:
        raise ValueError(f"{info}: lists no files")
    problems = mismatched_files(folder, files)
    if problems:
        raise ValueError(f"{folder}: {'; '.join(problems)}")
