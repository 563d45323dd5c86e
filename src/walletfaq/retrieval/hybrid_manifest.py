"""A saved hybrid retriever's directory: ``hybrid.json`` (members, lexical channel, lexicon,
weights, a checksum of itself) beside one FAQRetriever index per member."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import walletfaq.index.directory as index_directory
from walletfaq.data.atomic import check_replaceable as replaceable
from walletfaq.data.strictjson import JSONProblem, loads
from walletfaq.errors import IndexFormatError
from walletfaq.retrieval.fusion import LEXICAL_CHANNEL

HYBRID_FORMAT = "walletfaq-hybrid"
HYBRID_FORMAT_VERSION = 1
HYBRID_MANIFEST = "hybrid.json"
_MEMBER = re.compile(r"member-[0-9]+")


def read_manifest(root: Path) -> dict[str, Any]:
    """The verified ``hybrid.json`` of the directory ``root``.

    Raises:
        IndexFormatError: missing, unreadable, edited since written (checksum), another format
            version, or fields of the wrong type.
    """
    path = root / HYBRID_MANIFEST
    try:
        raw = loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise IndexFormatError(
            f"{root}: no {HYBRID_MANIFEST}; not a hybrid index (an FAQRetriever index "
            "loads with FAQRetriever.load)"
        ) from None
    except (OSError, UnicodeDecodeError, JSONProblem) as exc:
        raise IndexFormatError(f"{path}: unreadable ({exc}); rebuild the index") from None
    if not isinstance(raw, dict):
        raise IndexFormatError(
            f"{path}: expected a JSON object, got {_json_type(raw)}; not a walletfaq hybrid "
            "manifest; rebuild the index"
        )
    fields = {key: value for key, value in raw.items() if key != "checksum"}
    if raw.get("format") != HYBRID_FORMAT or raw.get("checksum") != checksum(fields):
        raise IndexFormatError(
            f"{path}: not a walletfaq hybrid manifest, or edited since it was written "
            "(checksum mismatch); rebuild the index"
        )
    if raw.get("format_version") != HYBRID_FORMAT_VERSION:
        raise IndexFormatError(
            f"{path}: format version {raw.get('format_version')!r} is not supported by "
            f"this walletfaq (it reads {HYBRID_FORMAT_VERSION}); rebuild the index"
        )
    names = raw.get("members")
    if (
        not isinstance(names, list)
        or not names
        or names != [f"member-{i}" for i in range(len(names))]
        or raw.get("lexical") not in (LEXICAL_CHANNEL, None)
        or not isinstance(raw.get("lexicon"), list)
        or not all(isinstance(t, str) for t in raw["lexicon"])
        or not isinstance(raw.get("weights"), dict)
    ):
        raise IndexFormatError(
            f"{path}: fields 'members', 'lexical', 'lexicon' or 'weights' have the wrong "
            "type or value; rebuild the index"
        )
    return raw  # type: ignore[no-any-return]


def check_replaceable(target: Path) -> None:
    """Refuse (:class:`IndexFormatError`) to replace ``target`` unless it is absent, empty or
    provably a saved hybrid index: a ``hybrid.json`` that verifies, and nothing but member
    folders that are themselves replaceable walletfaq indexes. The rule of
    :func:`walletfaq.data.atomic.check_replaceable`, shared with :meth:`FAQRetriever.save`."""
    replaceable(
        target,
        what="walletfaq hybrid index",
        marker=HYBRID_MANIFEST,
        owns=_owned,
        is_ours=_verifies,
    )


def _owned(entry: Path) -> bool:
    """Whether ``entry`` is something a hybrid save writes: its manifest, or a member folder
    that holds nothing but a walletfaq index."""
    if entry.name == HYBRID_MANIFEST:
        return entry.is_file()
    if not _MEMBER.fullmatch(entry.name) or not entry.is_dir():
        return False
    try:
        index_directory.check_replaceable(entry)
    except IndexFormatError:
        return False
    return True


def _verifies(root: Path) -> bool:
    try:
        read_manifest(root)
    except IndexFormatError:
        return False
    return True


def _json_type(value: object) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number"}
    names[bool] = "true/false"
    return "null" if value is None else names.get(type(value), type(value).__name__)


def checksum(fields: Mapping[str, object]) -> str:
    """SHA-256 of the manifest fields as canonical JSON."""
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
