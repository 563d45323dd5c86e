"""FAQ corpus: validated entries loaded from JSONL.

File format (one JSON object per line, UTF-8)::

    {"id": "login-failed", "category": "account-login", "question": "...", "answer": "...",
     "alt_questions": ["...", "..."]}

``alt_questions`` is optional (default ``[]``). ``category`` is a free string. ``id`` follows
the id grammar of :mod:`walletfaq.data.ids` (1-64 characters of ``a-z``, ``0-9``, ``-``, ``_``,
starting with a letter or digit), as written: an id outside it is refused, never trimmed.
Blank lines are allowed; everything else that is not a valid entry raises
:class:`~walletfaq.errors.CorpusError` naming the file, the line and the field. Nothing is
silently dropped.

Texts have length limits, like the questions users ask (:data:`TEXT_LIMITS`, in characters:
a question or alt question 2,000, an answer 20,000, a category 200; at most
:data:`MAX_ALT_QUESTIONS` alt questions per entry), so that one pasted wall of text cannot make
building, editing or ``doctor`` take minutes and gigabytes. The bundled corpus (longest answer:
273 characters) and the BQ corpus (66) are far below them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from walletfaq.data.atomic import write_text_atomic
from walletfaq.data.ids import check_id, id_problem
from walletfaq.data.normalize import clean_text, lone_surrogate
from walletfaq.data.strictjson import JSONProblem, loads
from walletfaq.errors import CorpusError

CORPUS_FORMAT_VERSION = 1
"""Version of the JSONL corpus format described in this module."""

BUNDLED_CORPUS_FILE = "faq.zh.jsonl"
BUNDLED_CONTACTS_FILE = "contacts.json"

TEXT_LIMITS = {"category": 200, "question": 2_000, "answer": 20_000, "alt_questions": 2_000}
"""The most characters a field's text may have (each alt question for ``alt_questions``); a
question's limit is the one the retriever cuts users' questions to."""

MAX_ALT_QUESTIONS = 1_000
"""The most alt questions one entry may have."""

_REQUIRED = ("id", "category", "question", "answer")
ENTRY_SHAPE = (
    '{"id": ..., "category": ..., "question": ..., "answer": ..., "alt_questions": [...]} '
    "with unique keys"
)
_KNOWN = frozenset((*_REQUIRED, "alt_questions"))


@dataclass(frozen=True)
class FAQEntry:
    """One FAQ entry: a question, its answer, and other ways users ask it."""

    id: str
    category: str
    question: str
    answer: str
    alt_questions: tuple[str, ...] = field(default_factory=tuple)

    def questions(self) -> tuple[str, ...]:
        """The main question followed by every alternative question."""
        return (self.question, *self.alt_questions)

    def to_dict(self) -> dict[str, object]:
        """The entry as a JSON-ready dict in the corpus file format."""
        return {
            "id": self.id,
            "category": self.category,
            "question": self.question,
            "answer": self.answer,
            "alt_questions": list(self.alt_questions),
        }


@dataclass(frozen=True)
class Corpus:
    """An ordered, validated collection of :class:`FAQEntry` with unique ids.

    Build one with :func:`load_corpus` (from a file) or :meth:`Corpus.from_entries`.
    """

    entries: tuple[FAQEntry, ...]
    source: str = "<in-memory corpus>"

    @classmethod
    def from_entries(
        cls, entries: Iterable[FAQEntry | dict[str, object]], source: str = "<in-memory corpus>"
    ) -> Corpus:
        """Validate entries (dicts in the file format, or :class:`FAQEntry`) into a corpus."""
        built: list[FAQEntry] = []
        seen: dict[str, int] = {}
        for number, raw in enumerate(entries, start=1):
            record = raw.to_dict() if isinstance(raw, FAQEntry) else raw
            entry = _entry_from_record(record, path=None, line=number, source=source)
            _check_unique(entry.id, number, seen, path=None, source=source)
            built.append(entry)
        return cls(entries=tuple(built), source=source)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[FAQEntry]:
        return iter(self.entries)

    def __getitem__(self, entry_id: str) -> FAQEntry:
        """The entry with this id: ``KeyError`` if there is none, :class:`CorpusError` (naming
        the id grammar of :mod:`walletfaq.data.ids`) if ``entry_id`` cannot be an id at all."""
        check_id(entry_id)
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(entry_id)

    def __contains__(self, entry_id: object) -> bool:
        return any(entry.id == entry_id for entry in self.entries)

    @property
    def ids(self) -> tuple[str, ...]:
        """Entry ids in corpus order."""
        return tuple(entry.id for entry in self.entries)

    @property
    def categories(self) -> tuple[str, ...]:
        """Distinct categories, in order of first appearance."""
        return tuple(dict.fromkeys(entry.category for entry in self.entries))

    def content_hash(self) -> str:
        """SHA-256 of the entries' canonical JSON: equal corpora hash equal, wherever loaded."""
        digest = hashlib.sha256()
        for entry in self.entries:
            line = json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True)
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()

    def merged(self, other: Corpus) -> Corpus:
        """A new corpus with ``other``'s entries appended; ids must stay unique."""
        return Corpus.from_entries(
            (*self.entries, *other.entries), source=f"{self.source} + {other.source}"
        )

    def __repr__(self) -> str:
        return f"Corpus(source={self.source!r}, entries={len(self)})"


def load_corpus(path: str | Path) -> Corpus:
    """Load and validate a JSONL corpus file.

    Raises:
        CorpusError: the file is missing, not UTF-8, has a malformed line, a missing or empty
            field, a field of the wrong type, an unknown field, or a duplicate id. The message
            names the file, the 1-based line and the field.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(
            "file not found; pass the path of a JSONL corpus file", path=path
        ) from None
    except OSError as exc:
        raise CorpusError(f"cannot read file ({exc.strerror})", path=path) from None
    entries: list[FAQEntry] = []
    seen: dict[str, int] = {}
    for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8",
                path=path,
                line=number,
            ) from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        record = parse_json_line(line, path, number, ENTRY_SHAPE)
        entry = _entry_from_record(record, path=path, line=number, source=str(path))
        _check_unique(entry.id, number, seen, path=path, source=str(path))
        entries.append(entry)
    if not entries:
        raise CorpusError("the corpus has no entries; add at least one JSON line", path=path)
    return Corpus(entries=tuple(entries), source=str(path))


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped); ``what`` names the file in errors.

    Raises:
        CorpusError: the file is missing, unreadable or not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CorpusError(f"{what} not found; check the path", path=path) from None
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8", path=path
        ) from None
    except OSError as exc:
        raise CorpusError(f"cannot read the {what} ({exc.strerror})", path=path) from None


def parse_json_line(line: str, path: Path, number: int, shape: str) -> Any:
    """One line of a JSONL file, parsed strictly (:func:`~walletfaq.data.strictjson.loads`).

    Raises:
        CorpusError: the line is not valid JSON (named by ``path`` and ``number``; the message
            shows ``shape``, the object each line should hold).
    """
    try:
        return loads(line)
    except JSONProblem as exc:
        column = f" (column {exc.column})" if exc.column is not None else ""
        raise CorpusError(
            f"{exc.message}{column}; write one JSON object per line: {shape}",
            path=path,
            line=number,
            field=exc.key,
        ) from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise CorpusError(f"unreadable JSON value ({exc})", path=path, line=number) from None


def write_corpus(entries: Iterable[FAQEntry], path: str | Path) -> Path:
    """Write ``entries`` as a JSONL corpus file that :func:`load_corpus` reads back equal.

    The file is written beside its target and renamed into place (atomic); returns the path.
    """
    target = Path(path)
    lines = [json.dumps(entry.to_dict(), ensure_ascii=False) + "\n" for entry in entries]
    if not lines:
        raise CorpusError("nothing to write: a corpus needs at least one entry", path=target)
    try:
        write_text_atomic(target, "".join(lines))
    except OSError as exc:
        raise CorpusError(f"cannot write the corpus ({exc.strerror})", path=target) from None
    return target


def bundled_data_dir() -> Path:
    """Folder of the data shipped with walletfaq (the repository's ``corpus/`` folder)."""
    packaged = Path(str(resources.files("walletfaq"))) / "corpus"
    if (packaged / BUNDLED_CORPUS_FILE).is_file():
        return packaged
    source_tree = Path(str(resources.files("walletfaq"))).resolve().parents[1] / "corpus"
    if (source_tree / BUNDLED_CORPUS_FILE).is_file():
        return source_tree
    raise CorpusError(
        "the bundled corpus is missing from this installation; reinstall walletfaq",
        path=packaged / BUNDLED_CORPUS_FILE,
    )


def bundled_corpus_path() -> Path:
    """Path of the bundled digital-wallet FAQ (``corpus/faq.zh.jsonl``)."""
    return bundled_data_dir() / BUNDLED_CORPUS_FILE


def load_bundled_corpus() -> Corpus:
    """The bundled digital-wallet FAQ corpus."""
    return load_corpus(bundled_corpus_path())


def _check_unique(
    entry_id: str, line: int, seen: dict[str, int], *, path: Path | None, source: str
) -> None:
    if entry_id in seen:
        raise CorpusError(
            f"duplicate id {entry_id!r} (first used on line {seen[entry_id]}); ids must be unique",
            path=path if path is not None else None,
            line=line,
            field="id",
        )
    seen[entry_id] = line


def _entry_from_record(record: object, *, path: Path | None, line: int, source: str) -> FAQEntry:
    def fail(message: str, field_name: str | None = None) -> CorpusError:
        return CorpusError(
            message, path=path if path is not None else source, line=line, field=field_name
        )

    if not isinstance(record, dict):
        raise fail(f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - _KNOWN)
    if unknown:
        raise fail(
            f"unknown field(s) {unknown}; allowed: {sorted(_KNOWN)} (check the spelling)",
            unknown[0],
        )
    values: dict[str, str] = {}
    for name in _REQUIRED:
        if name not in record:
            raise fail(
                "missing required field; every entry needs id, category, question, answer", name
            )
        value = record[name]
        if not isinstance(value, str):
            raise fail(f"expected a string, got {type(value).__name__}", name)
        if name == "id":  # the one id grammar, judged as written: never trimmed
            problem = id_problem(value)
            if problem:
                raise fail(problem, name)
            values[name] = value
            continue
        problem = length_problem(value, TEXT_LIMITS.get(name)) or text_problem(value)
        if problem:
            raise fail(problem, name)
        values[name] = value.strip()
    alts_raw = record.get("alt_questions", [])
    if not isinstance(alts_raw, list):
        raise fail(f"expected a list of strings, got {type(alts_raw).__name__}", "alt_questions")
    if len(alts_raw) > MAX_ALT_QUESTIONS:
        raise fail(
            f"{len(alts_raw):,} alt questions, more than the {MAX_ALT_QUESTIONS:,} an entry may "
            "have; keep the distinct ways users ask, or split the entry",
            "alt_questions",
        )
    alts: list[str] = []
    for position, alt in enumerate(alts_raw):
        if not isinstance(alt, str):
            raise fail(
                f"item {position} is {type(alt).__name__}, expected a string", "alt_questions"
            )
        problem = length_problem(alt, TEXT_LIMITS["alt_questions"]) or text_problem(alt)
        if problem:
            raise fail(f"item {position}: {problem}", "alt_questions")
        alts.append(alt.strip())
    return FAQEntry(
        id=values["id"],
        category=values["category"],
        question=values["question"],
        answer=values["answer"],
        alt_questions=tuple(alts),
    )


def length_problem(value: str, limit: int | None) -> str | None:
    """Why ``value`` is too long for a field limited to ``limit`` characters (``None``: fine)."""
    if limit is None or len(value) <= limit:
        return None
    return (
        f"{len(value):,} characters, over the limit of {limit:,} for this field; shorten it "
        "(an FAQ text is a question or an answer, not a document)"
    )


def text_problem(value: str) -> str | None:
    """Why a text field is unusable (``None`` if it is fine): a lone surrogate, or nothing
    left once control and invisible characters are removed."""
    bad = lone_surrogate(value)
    if bad is not None:
        return (
            f"not valid Unicode (lone surrogate U+{ord(value[bad]):04X} at character {bad}); "
            "fix the escape sequence or the file's encoding"
        )
    if not clean_text(value):
        return "empty text (control and invisible characters do not count); write the text"
    return None


def index_texts(
    entries: Sequence[FAQEntry], include_answers: bool = False
) -> tuple[list[str], list[int]]:
    """The texts embedded for ``entries`` and, for each, the position of its entry.

    Every question and alt question is one text; with ``include_answers`` each entry adds one
    more text, its question and answer joined by a newline.
    """
    texts: list[str] = []
    owners: list[int] = []
    for position, entry in enumerate(entries):
        for text in entry.questions():
            texts.append(text)
            owners.append(position)
        if include_answers:
            texts.append(f"{entry.question}\n{entry.answer}")
            owners.append(position)
    return texts, owners
