"""Saving and loading a built retriever: FAISS native index + JSON metadata + JSON manifest.

Layout of a saved directory::

    manifest.json   format version, model name and fingerprint, dimension, corpus hash,
                    entry/vector counts, index spec, what was indexed
    metadata.json   the corpus entries and, for every vector row, the entry it belongs to
    index.faiss     the FAISS index, written by ``faiss.write_index``

Nothing is pickled. A directory is written into a temporary sibling and renamed into place, so
a crash never leaves a half-written index where a good one was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import staged_directory, write_json
from .contacts import ContactDirectory, directory_from_data
from .corpus import Corpus
from .errors import CorpusError, IndexFormatError

if TYPE_CHECKING:
    import faiss

FORMAT_VERSION = 1
"""Version of the saved-index layout; bumped on incompatible changes."""

MANIFEST_FILE = "manifest.json"
METADATA_FILE = "metadata.json"
INDEX_FILE = "index.faiss"
CONTACTS_FILE = "contacts.json"


@dataclass(frozen=True)
class Manifest:
    """What a saved index was built from; checked when the index is loaded."""

    model: str
    model_fingerprint: str
    dim: int
    corpus_hash: str
    entry_count: int
    vector_count: int
    index: dict[str, Any]
    index_answers: bool
    question_encoding: str
    walletfaq_version: str
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoredIndex:
    """The parts of a saved index, as loaded from disk."""

    manifest: Manifest
    corpus: Corpus
    row_entry: np.ndarray
    index: faiss.Index
    contacts: ContactDirectory | None = None


def save(
    directory: str | Path,
    *,
    manifest: Manifest,
    corpus: Corpus,
    row_entry: np.ndarray,
    index: faiss.Index,
    contacts: ContactDirectory | None = None,
) -> Path:
    """Write an index directory atomically and return its path.

    An existing directory is replaced only if it is a walletfaq index (has a manifest) or
    empty; anything else raises :class:`IndexFormatError` rather than deleting user files.
    """
    import faiss

    target = Path(directory)
    if target.exists() and not _replaceable(target):
        raise IndexFormatError(
            f"{target}: exists and is not a walletfaq index; choose an empty or new directory"
        )
    with staged_directory(target) as staging:
        faiss.write_index(index, str(staging / INDEX_FILE))
        metadata = {
            "entries": [entry.to_dict() for entry in corpus],
            "row_entry": [int(position) for position in row_entry],
        }
        write_json(staging / METADATA_FILE, metadata)
        if contacts is not None:
            write_json(staging / CONTACTS_FILE, contacts.to_dict())
        write_json(staging / MANIFEST_FILE, manifest.to_dict())
    return target


def load(directory: str | Path) -> StoredIndex:
    """Read and check an index directory written by :func:`save`.

    Raises:
        IndexFormatError: a file is missing or corrupt, the format version is unknown, or the
            parts disagree with each other (counts, dimension, corpus hash).
    """
    import faiss

    root = Path(directory)
    manifest = read_manifest(root)
    metadata = _read_json(root / METADATA_FILE)
    try:
        corpus = Corpus.from_entries(metadata["entries"], source=str(root / METADATA_FILE))
        row_entry = np.asarray(metadata["row_entry"], dtype=np.int64)
    except (KeyError, TypeError, CorpusError) as exc:
        raise IndexFormatError(
            f"{root / METADATA_FILE}: malformed metadata ({exc}); rebuild the index"
        ) from None
    if corpus.content_hash() != manifest.corpus_hash:
        raise IndexFormatError(
            f"{root / METADATA_FILE}: entries do not match the manifest's corpus hash (the file "
            "was edited or corrupted); rebuild the index"
        )
    try:
        index = faiss.read_index(str(root / INDEX_FILE))
    except RuntimeError as exc:
        raise IndexFormatError(
            f"{root / INDEX_FILE}: cannot read FAISS index ({str(exc).splitlines()[0]}); "
            "rebuild the index"
        ) from None
    problems = []
    if index.d != manifest.dim:
        problems.append(f"index dimension {index.d} != manifest dim {manifest.dim}")
    if index.ntotal != manifest.vector_count or len(row_entry) != manifest.vector_count:
        problems.append(
            f"{index.ntotal} vectors and {len(row_entry)} row labels, manifest says "
            f"{manifest.vector_count}"
        )
    if len(corpus) != manifest.entry_count:
        problems.append(f"{len(corpus)} entries, manifest says {manifest.entry_count}")
    if len(row_entry) and (row_entry.min() < 0 or row_entry.max() >= len(corpus)):
        problems.append("row labels point outside the corpus")
    if problems:
        raise IndexFormatError(f"{root}: inconsistent index ({'; '.join(problems)}); rebuild it")
    contacts = None
    if (root / CONTACTS_FILE).is_file():
        try:
            contacts = directory_from_data(_read_json(root / CONTACTS_FILE), root / CONTACTS_FILE)
        except CorpusError as exc:
            raise IndexFormatError(f"{exc}; rebuild the index") from None
    return StoredIndex(
        manifest=manifest, corpus=corpus, row_entry=row_entry, index=index, contacts=contacts
    )


def read_manifest(directory: str | Path) -> Manifest:
    """Read only the manifest of a saved index (cheap: no vectors are loaded)."""
    root = Path(directory)
    if not root.is_dir():
        raise IndexFormatError(
            f"{root}: no such index directory; build one with FAQRetriever.save() or "
            "`walletfaq build`"
        )
    raw = _read_json(root / MANIFEST_FILE)
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"{root / MANIFEST_FILE}: format_version {version!r} is not supported (this "
            f"walletfaq reads version {FORMAT_VERSION}); rebuild the index"
        )
    try:
        return Manifest(**raw)
    except TypeError as exc:
        raise IndexFormatError(
            f"{root / MANIFEST_FILE}: malformed manifest ({exc}); rebuild the index"
        ) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: missing; the index directory is incomplete") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"{path}: unreadable JSON ({exc}); rebuild the index") from None
    if not isinstance(data, dict):
        raise IndexFormatError(f"{path}: expected a JSON object; rebuild the index")
    return data


def _replaceable(target: Path) -> bool:
    return target.is_dir() and ((target / MANIFEST_FILE).is_file() or not any(target.iterdir()))
