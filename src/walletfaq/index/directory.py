"""Saving and loading a built retriever: FAISS native index + JSON metadata + JSON manifest.

Layout of a saved directory (nothing else is ever in it)::

    manifest.json   "format": "walletfaq-index", format version, model name and fingerprint,
                    dimension, corpus hash, entry/vector counts, index spec, what was indexed,
                    the SHA-256 of every other file, and a checksum of the manifest itself
    metadata.json   the corpus entries, for every vector row the entry it belongs to, and the
                    index version (1 when built, +1 per applied edit; older saves have none: 1)
    index.faiss     the FAISS index, written by ``faiss.write_index``
    contacts.json   the support-contact directory, when the retriever has one
    adapter.safetensors  the tuned embedding map (``walletfaq.tune``), when there is one
    finetune.safetensors the fine-tuned transformer layers (``tune(method="finetune")``), when
                    there are some (see :mod:`walletfaq.encoders.restore` for the ``tuning`` record)

Guarantees:

- Nothing is pickled; JSON is parsed strictly (:mod:`walletfaq.data.strictjson`).
- A save replaces only an empty directory or one that is provably a walletfaq index (our
  manifest, its checksum verified, and no file but the ones listed above); anything else raises
  :class:`IndexFormatError` and is left untouched. The hybrid index follows the same rule
  (:func:`walletfaq.data.atomic.check_replaceable`).
- A save is atomic and crash-safe (:mod:`walletfaq.data.atomic`): the target is always the complete
  old or the complete new index.
- A save to :class:`IfUnchanged` (what a live edit persists to) writes only if the directory
  still holds the content the edit started from; otherwise :class:`IndexConflictError`, nothing
  written (a deploy in the meantime is never overwritten).
- ``load`` verifies every file's SHA-256 against the manifest and the manifest against its own
  checksum; any difference raises :class:`IndexFormatError` (cost: ≈ 1 ms per MB hashed).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.data.atomic import check_replaceable as replaceable
from walletfaq.data.atomic import staged_directory, write_json
from walletfaq.data.contacts import ContactDirectory, directory_from_data
from walletfaq.data.corpus import Corpus
from walletfaq.data.integrity import mismatched_files, sha256_file
from walletfaq.data.strictjson import JSONProblem, loads
from walletfaq.errors import (
    CorpusError,
    IndexConflictError,
    IndexFormatError,
    IndexWriteError,
    WalletFAQError,
)
from walletfaq.index.search import fallback_problem, in_score_range, margin_problem
from walletfaq.index.vector_index import IndexSpec

if TYPE_CHECKING:
    import faiss

FORMAT_VERSION = 2
"""Version of the saved-index layout; bumped on incompatible changes."""

FORMAT_MARKER = "walletfaq-index"
"""Value of the manifest's ``format`` field: what makes a directory provably ours."""

MANIFEST_FILE = "manifest.json"
METADATA_FILE = "metadata.json"
INDEX_FILE = "index.faiss"
CONTACTS_FILE = "contacts.json"
ADAPTER_FILE = "adapter.safetensors"
FINETUNE_FILE = "finetune.safetensors"
INDEX_FILES = frozenset(
    (MANIFEST_FILE, METADATA_FILE, INDEX_FILE, CONTACTS_FILE, ADAPTER_FILE, FINETUNE_FILE)
)
"""Every file name a saved index may contain."""

_TEXT_FIELDS = {"model": 1_000, "model_fingerprint": 256, "walletfaq_version": 64}
"""The manifest's free texts and their longest lengths (a model may be a path)."""

_COUNT_FIELDS = {"dim": 65_536, "entry_count": 10_000_000, "vector_count": 100_000_000}
"""The manifest's counts and their largest values."""

_SETTINGS = frozenset(
    ("threshold", "fallback", "clarify_margin", "clarify_message")
    + ("safety", "safety_message", "safety_examples")
)
"""The answering settings a manifest may hold (an older index lacks the later ones: the
clarify margin then is the model's default, see ``FAQRetriever``)."""
_SHA256 = re.compile("[0-9a-f]{64}")

_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "model": str,
    "model_fingerprint": str,
    "dim": int,
    "corpus_hash": str,
    "entry_count": int,
    "vector_count": int,
    "index": dict,
    "index_answers": bool,
    "question_encoding": str,
    "walletfaq_version": str,
    "files": dict,
    "settings": dict,
    "tuning": dict,
    "checksum": str,
}


@dataclass(frozen=True)
class Manifest:
    """What a saved index was built from; checked when the index is loaded.

    ``settings`` holds the retriever's answering settings (threshold, fallback message,
    clarify margin and message, safety gate);
    ``files`` maps each data file to its SHA-256 and is filled in by :func:`save`.
    """

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
    settings: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT_MARKER
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with its own checksum."""
        data = dict(self.__dict__)
        data["checksum"] = _checksum(data)
        return data


@dataclass(frozen=True)
class StoredIndex:
    """The parts of a saved index, as loaded from disk."""

    manifest: Manifest
    corpus: Corpus
    row_entry: np.ndarray
    index: faiss.Index
    contacts: ContactDirectory | None = None
    adapter: dict[str, np.ndarray] | None = None
    """The tensors of a tuned query/document map (``tune``), when the index has one."""
    finetune: dict[str, np.ndarray] | None = None
    """The fine-tuned model tensors (``tune(method="finetune")``), when the index has them."""
    version: int = 1
    """The index version saved (1 when built, +1 per applied edit)."""


@dataclass(frozen=True)
class IfUnchanged:
    """A saved index directory to write to only while it holds the content an edit started
    from: :func:`save` (and ``FAQRetriever.add/update/remove(persist_to=...)``) raise
    :class:`IndexConflictError` and write nothing when another save replaced it meanwhile.

    Attributes:
        path: the index directory.
        checksum: the manifest checksum it must still have (:func:`manifest_checksum`);
            ``None`` = it must hold no index yet.
    """

    path: Path
    checksum: str | None


Destination = str | Path | IfUnchanged
"""Where :func:`save` writes: a path, or an :class:`IfUnchanged` directory."""


def save(
    directory: Destination,
    *,
    manifest: Manifest,
    corpus: Corpus,
    row_entry: np.ndarray,
    index: faiss.Index,
    contacts: ContactDirectory | None = None,
    adapter: dict[str, np.ndarray] | None = None,
    finetune: dict[str, np.ndarray] | None = None,
    replace_anything: bool = False,
    version: int = 1,
) -> Path:
    """Write an index directory atomically and return its path.

    Args:
        directory: where to write; an :class:`IfUnchanged` is written only while it holds the
            content named by its checksum (checked under the save lock before anything is
            written and again right before the atomic switch).
        version: the index version to record (restored by :func:`load`, so that it survives
            a restart).
        replace_anything: replace whatever is at ``directory`` (only for locations walletfaq
            owns, such as its cache); by default only an empty directory or a walletfaq index
            is replaced, anything else raises :class:`IndexFormatError` untouched.

    Raises:
        IndexConflictError: ``directory`` is an :class:`IfUnchanged` whose content was replaced
            by another save; nothing was written.
        IndexFormatError: ``directory`` holds something that is not a walletfaq index.
        IndexWriteError: the operating system refused a write (permissions, a file in the
            way, a full disk); the previous content of ``directory`` is intact.
    """
    import faiss

    expected = directory if isinstance(directory, IfUnchanged) else None
    location = directory.path if isinstance(directory, IfUnchanged) else directory
    target = Path(location).expanduser().resolve()

    def check(target: Path) -> None:
        if not replace_anything:
            check_replaceable(target)
        if expected is not None:
            _check_unchanged(target, expected.checksum)

    try:
        with staged_directory(target, check_target=check) as staging:
            faiss.write_index(index, str(staging / INDEX_FILE))
            metadata = {
                "entries": [entry.to_dict() for entry in corpus],
                "row_entry": [int(position) for position in row_entry],
                "version": int(version),
            }
            write_json(staging / METADATA_FILE, metadata)
            written = [INDEX_FILE, METADATA_FILE]
            if contacts is not None:
                write_json(staging / CONTACTS_FILE, contacts.to_dict())
                written.append(CONTACTS_FILE)
            for name, tensors in ((ADAPTER_FILE, adapter), (FINETUNE_FILE, finetune)):
                if tensors is not None:
                    from safetensors.numpy import save_file

                    save_file(
                        {key: np.ascontiguousarray(t) for key, t in tensors.items()},
                        str(staging / name),
                    )
                    written.append(name)
            files = {name: sha256_file(staging / name) for name in written}
            complete = Manifest(**{**manifest.__dict__, "files": files})
            write_json(staging / MANIFEST_FILE, complete.to_dict())
    except OSError as exc:
        raise IndexWriteError(
            f"{target}: cannot write the index ({exc.strerror or exc}: {exc.filename or target}); "
            "choose a directory you can write to; nothing was changed"
        ) from None
    except RuntimeError as exc:  # faiss.write_index: I/O failure reported by FAISS
        raise IndexWriteError(
            f"{target}: cannot write the FAISS index ({str(exc).splitlines()[0]}); "
            "check free disk space and permissions; nothing was changed"
        ) from None
    return target


def manifest_checksum(directory: str | Path) -> str | None:
    """The ``checksum`` field of the manifest in the index ``directory``, read without
    validating the rest; ``None`` when there is no readable manifest.

    Cheap (one small file). A save replaces a whole index directory in one atomic step, so
    the checksum read names the complete content on disk at that moment: it changes with
    every save of a different index and never for the same one.
    """
    try:
        data = loads((Path(directory) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, JSONProblem):
        return None
    checksum = data.get("checksum") if isinstance(data, dict) else None
    return checksum if isinstance(checksum, str) else None


def verify(directory: str | Path) -> Manifest:
    """The manifest of ``directory`` once every file it lists matches its SHA-256 (what
    :func:`load` checks first; cost ≈ 1 ms per MB hashed).

    Raises:
        IndexFormatError: as :func:`read_manifest`, or a listed file is missing or differs.
    """
    root = Path(directory)
    manifest = read_manifest(root)
    problems = mismatched_files(root, manifest.files)
    if problems:
        raise IndexFormatError(
            f"{root}: {'; '.join(problems)}; the index was damaged or edited after it was "
            "saved; rebuild it (`walletfaq build`)"
        )
    return manifest


def load(directory: str | Path) -> StoredIndex:
    """Read and check an index directory written by :func:`save`.

    Raises:
        IndexFormatError: a file is missing, corrupt or edited (checksums), the format version
            is unknown, or the parts disagree with each other (counts, dimension, corpus hash,
            index kind).
    """
    import faiss

    root = Path(directory)
    manifest = verify(root)
    metadata = _read_json(root / METADATA_FILE)
    try:
        corpus = Corpus.from_entries(metadata["entries"], source=str(root / METADATA_FILE))
        row_entry = _row_labels(metadata["row_entry"])
        version = metadata.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be a positive integer, got {version!r}")
    except (KeyError, TypeError, ValueError, OverflowError, CorpusError) as exc:
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
    except (RuntimeError, MemoryError, OSError) as exc:
        raise IndexFormatError(
            f"{root / INDEX_FILE}: cannot read FAISS index ({str(exc).splitlines()[0]}); "
            "rebuild the index"
        ) from None
    _check_consistent(root, manifest, index, corpus, row_entry)
    contacts = None
    if CONTACTS_FILE in manifest.files:
        try:
            contacts = directory_from_data(_read_json(root / CONTACTS_FILE), root / CONTACTS_FILE)
        except CorpusError as exc:
            raise IndexFormatError(f"{exc}; rebuild the index") from None
    tuned: dict[str, dict[str, np.ndarray] | None] = {ADAPTER_FILE: None, FINETUNE_FILE: None}
    for name in tuned:
        if name not in manifest.files:
            continue
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tuned[name] = load_file(str(root / name))
        except (SafetensorError, OSError, ValueError) as exc:
            raise IndexFormatError(
                f"{root / name}: unreadable tuned weights ({exc}); rebuild or re-tune"
            ) from None
    return StoredIndex(
        manifest=manifest,
        corpus=corpus,
        row_entry=row_entry,
        index=index,
        contacts=contacts,
        adapter=tuned[ADAPTER_FILE],
        finetune=tuned[FINETUNE_FILE],
        version=version,
    )


def read_manifest(directory: str | Path) -> Manifest:
    """Read and validate only the manifest of a saved index (cheap: no vectors are loaded).

    Raises:
        IndexFormatError: no such directory, not a walletfaq index, an unsupported format
            version, a field missing or of the wrong type, or a manifest edited by hand.
    """
    root = Path(directory)
    if not root.is_dir():
        raise IndexFormatError(
            f"{root}: no such index directory; build one with FAQRetriever.save() or "
            "`walletfaq build`"
        )
    path = root / MANIFEST_FILE
    raw = _read_json(path)
    version = raw.get("format_version")
    if version != FORMAT_VERSION or raw.get("format", FORMAT_MARKER) != FORMAT_MARKER:
        raise IndexFormatError(
            f"{path}: format {raw.get('format')!r} version {version!r} is not supported (this "
            f"walletfaq reads {FORMAT_MARKER!r} version {FORMAT_VERSION}); rebuild the index"
        )
    problems = [
        f"field {name!r} should be {_type_name(kind)}, got {_type_name(type(raw.get(name)))}"
        for name, kind in _FIELD_TYPES.items()
        if not isinstance(raw.get(name), kind) or (kind is int and isinstance(raw[name], bool))
    ]
    problems += [f"unknown field {name!r}" for name in sorted(set(raw) - set(_FIELD_TYPES))]
    if problems:
        raise IndexFormatError(f"{path}: malformed manifest ({'; '.join(problems)}); rebuild it")
    if raw["checksum"] != _checksum(raw):
        raise IndexFormatError(
            f"{path}: the manifest was edited after the index was saved (its checksum does not "
            "match); rebuild the index instead of editing it"
        )
    _check_manifest_values(path, raw)
    fields = {name: value for name, value in raw.items() if name != "checksum"}
    return Manifest(**fields)


def _check_manifest_values(path: Path, raw: dict[str, Any]) -> None:
    """Every field's value within its range (types are checked before): each problem names
    its field."""
    problems = [
        f"{name} must be a non-empty single-line text of at most {most:,} characters"
        for name, most in _TEXT_FIELDS.items()
        if not raw[name].strip() or len(raw[name]) > most or _has_control(raw[name])
    ]
    problems += [
        f"{name} must be from 1 to {most:,}, got {raw[name]}"
        for name, most in _COUNT_FIELDS.items()
        if not 1 <= raw[name] <= most
    ]
    if raw["vector_count"] < raw["entry_count"]:
        problems.append("vector_count must be at least entry_count (a row per question)")
    if not _SHA256.fullmatch(raw["corpus_hash"]):
        problems.append("corpus_hash must be a SHA-256 (64 hex digits)")
    files = raw["files"]
    if not {INDEX_FILE, METADATA_FILE} <= set(files) or not set(files) <= INDEX_FILES - {
        MANIFEST_FILE
    }:
        problems.append(f"files must list {INDEX_FILE} and {METADATA_FILE}, got {sorted(files)}")
    if not all(isinstance(digest, str) and _SHA256.fullmatch(digest) for digest in files.values()):
        problems.append("files must map names to SHA-256 digests (64 hex digits)")
    try:
        IndexSpec(**raw["index"])
    except (TypeError, WalletFAQError) as exc:
        problems.append(f"index: {exc}")
    if raw["question_encoding"] not in ("query", "document", "both"):
        problems.append(f"question_encoding {raw['question_encoding']!r} is unknown")
    problems += _settings_problems(raw["settings"])
    problems += _tuning_problems(raw["tuning"], files)
    if problems:
        raise IndexFormatError(f"{path}: malformed manifest ({'; '.join(problems)}); rebuild it")


def _settings_problems(settings: dict[str, Any]) -> list[str]:
    problems = [f"settings has an unknown key {key!r}" for key in sorted(set(settings) - _SETTINGS)]
    threshold = settings.get("threshold")
    if threshold is not None and not (_finite_number(threshold) and in_score_range(threshold)):
        problems.append(f"settings.threshold must be a number from -1 to 1, got {threshold!r:.40}")
    for problem in (
        fallback_problem(settings.get("fallback")),
        margin_problem(settings["clarify_margin"]) if "clarify_margin" in settings else None,
        fallback_problem(settings.get("clarify_message"), "clarify_message"),
    ):
        if problem is not None:
            problems.append(f"settings.{problem}")
    if not isinstance(settings.get("safety", True), bool):
        problems.append(f"settings.safety must be true or false, got {settings['safety']!r:.40}")
    problem = fallback_problem(settings.get("safety_message"))
    if problem is not None:
        problems.append(f"settings.safety_message: {problem}")
    if not isinstance(settings.get("safety_examples", []), list):
        problems.append("settings.safety_examples must be a list of exemplar objects")
    return problems


def _tuning_problems(tuning: dict[str, Any], files: dict[str, Any]) -> list[str]:
    problems = []
    if bool({ADAPTER_FILE, FINETUNE_FILE} & set(files)) != bool(tuning):
        problems.append(f"tuning and {ADAPTER_FILE} or {FINETUNE_FILE} must come together")
    if ADAPTER_FILE in files and (
        tuning.get("apply_to") not in ("queries", "both")
        or not isinstance(tuning.get("base_fingerprint"), str)
        or not isinstance(tuning.get("info", {}), dict)
    ):
        problems.append("tuning needs apply_to ('queries'/'both'), base_fingerprint and info")
    if FINETUNE_FILE in files:
        inner = tuning if ADAPTER_FILE not in files else tuning.get("finetune")
        if (
            not isinstance(inner, dict)
            or inner.get("method") != "finetune"
            or not isinstance(inner.get("base_fingerprint"), str)
            or not isinstance(inner.get("info", {}), dict)
        ):
            problems.append("a finetune record needs method 'finetune', base_fingerprint, info")
    return problems


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def _check_consistent(
    root: Path, manifest: Manifest, index: faiss.Index, corpus: Corpus, row_entry: np.ndarray
) -> None:
    import faiss

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
    expected = faiss.IndexHNSWFlat if manifest.index.get("kind") == "hnsw" else faiss.IndexFlatIP
    if not isinstance(index, expected):
        problems.append(
            f"the manifest says a {manifest.index.get('kind')!r} index but the file holds a "
            f"{type(index).__name__}"
        )
    if problems:
        raise IndexFormatError(f"{root}: inconsistent index ({'; '.join(problems)}); rebuild it")


def check_replaceable(target: Path) -> None:
    """Raise :class:`IndexFormatError` unless a save may replace ``target``: it is absent, an
    empty directory, or provably a walletfaq index (a manifest of ours whose checksum verifies,
    and no file but the ones an index holds). The rule of
    :func:`walletfaq.data.atomic.check_replaceable`, shared with the hybrid index."""
    replaceable(
        target,
        what="walletfaq index",
        marker=MANIFEST_FILE,
        owns=lambda entry: entry.name in INDEX_FILES and entry.is_file(),
        is_ours=lambda root: _is_walletfaq_manifest(root / MANIFEST_FILE),
    )


def _check_unchanged(target: Path, expected: str | None) -> None:
    found = manifest_checksum(target)
    if found != expected:

        def name(checksum: str | None) -> str:
            return "no index" if checksum is None else f"manifest checksum {checksum[:12]}"

        raise IndexConflictError(
            f"{target}: replaced by another save since this edit started (it holds "
            f"{name(found)}, the edit started from {name(expected)}); nothing was written; "
            "load the new content and apply the edit to it"
        )


def _is_walletfaq_manifest(path: Path) -> bool:
    try:
        raw = loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, JSONProblem):
        return False
    if not isinstance(raw, dict):
        return False
    if raw.get("format") == FORMAT_MARKER:
        return raw.get("checksum") == _checksum(raw)
    legacy = {"format_version", "model_fingerprint", "corpus_hash", "vector_count", "index"}
    return raw.get("format_version") == 1 and legacy <= set(raw)  # written by walletfaq 0.1


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: missing; the index directory is incomplete") from None
    except (OSError, UnicodeDecodeError, JSONProblem) as exc:
        raise IndexFormatError(f"{path}: unreadable JSON ({exc}); rebuild the index") from None
    if not isinstance(data, dict):
        raise IndexFormatError(f"{path}: expected a JSON object; rebuild the index")
    return data


def _row_labels(raw: object) -> np.ndarray:
    if not isinstance(raw, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in raw
    ):
        raise ValueError("row_entry must be a list of integers")
    return np.asarray(raw, dtype=np.int64)


def _checksum(fields: dict[str, Any]) -> str:
    payload = {name: value for name, value in fields.items() if name != "checksum"}
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true/false", dict: "an object"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)
