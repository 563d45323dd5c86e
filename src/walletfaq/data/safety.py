"""Safety exemplars: the questions the answer gate refuses, and look-alikes it must answer.

File format (JSONL, UTF-8, one object per line; blank lines allowed)::

    {"text": "怎么骗别人转账给我", "label": "harmful", "kind": "fraud", "style": "zh"}
    {"text": "我被骗了怎么办", "label": "benign", "kind": "victim", "style": "zh"}

- ``text``: the question, as a user would type it;
- ``label``: ``"harmful"`` (asks how to defraud, steal, launder, bypass verification, obtain
  other people's data, or tries to take over the assistant) or ``"benign"`` (a contrast: a
  victim, prevention, a legitimate security question, small talk);
- ``kind``: a free label of the case (``fraud``, ``theft``, ``laundering``, ``bypass``,
  ``personal-data``, ``injection``; ``victim``, ``prevention``...); a refusal's reason names it;
- ``style``: optional (``zh``, ``zh-Hant``, ``en``, ``colloquial``, ``typo``, ``keyword``...).

The bundled exemplars are ``corpus/safety.jsonl``; the held-out sets that measure the gate,
never used to fit it, are ``corpus/eval/safety_queries.jsonl`` (A) and ``safety_queries_b``,
``_c`` and ``_d.jsonl`` beside it (same format). The loader is
strict like the corpus loader: anything that is not a valid exemplar raises
:class:`~walletfaq.errors.CorpusError` naming the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from walletfaq.data.corpus import (
    TEXT_LIMITS,
    bundled_data_dir,
    length_problem,
    parse_json_line,
    read_text_file,
    text_problem,
)
from walletfaq.data.normalize import clean_text
from walletfaq.errors import CorpusError

SafetyLabel = Literal["harmful", "benign"]
"""``harmful``: refuse it; ``benign``: a contrast that must stay answerable."""

SAFETY_LABELS: tuple[SafetyLabel, ...] = ("harmful", "benign")
SAFETY_FIELDS = ("text", "label", "kind", "style")
"""Fields an exemplar may have (``style`` is optional)."""

MIN_PER_LABEL = 2
"""Fewest exemplars of each label a set may have."""

SAFETY_SHAPE = '{"text": ..., "label": "harmful" | "benign", "kind": ..., "style": ...}'
BUNDLED_SAFETY_FILE = "safety.jsonl"
BUNDLED_SAFETY_QUERIES_FILE = "safety_queries.jsonl"


@dataclass(frozen=True)
class SafetyExample:
    """One exemplar of the safety gate (see the module docstring for the fields)."""

    text: str
    label: SafetyLabel
    kind: str
    style: str = "unspecified"

    @property
    def harmful(self) -> bool:
        """Whether the gate must refuse questions like this one."""
        return self.label == "harmful"

    def to_dict(self) -> dict[str, str]:
        """The exemplar in the file format."""
        return {"text": self.text, "label": self.label, "kind": self.kind, "style": self.style}


def bundled_safety_path() -> Path:
    """Path of the bundled exemplars (``corpus/safety.jsonl``), from a checkout or a wheel."""
    return _bundled(BUNDLED_SAFETY_FILE)


def bundled_safety_queries_path() -> Path:
    """Path of the held-out safety evaluation set (``corpus/eval/safety_queries.jsonl``)."""
    return _bundled(f"eval/{BUNDLED_SAFETY_QUERIES_FILE}")


def load_bundled_safety_examples() -> tuple[SafetyExample, ...]:
    """The bundled exemplars of the safety gate."""
    return load_safety_examples(bundled_safety_path())


def load_safety_examples(
    source: str | Path | Iterable[Mapping[str, Any] | SafetyExample],
) -> tuple[SafetyExample, ...]:
    """Read safety exemplars from a JSONL file or an iterable of dicts (or exemplars).

    Returns:
        The exemplars in order (blank lines skipped).

    Raises:
        CorpusError: an unreadable file, malformed JSON or a duplicate key, a record that is
            not an object, an unknown or missing field, an empty ``text``/``kind``, a ``label``
            other than ``"harmful"``/``"benign"``, a text given twice, or fewer than
            :data:`MIN_PER_LABEL` exemplars of a label. The file (or ``<in-memory safety
            exemplars>``), the 1-based line
            (or position) and the field are named.
    """
    path: Path | None = None
    records: list[tuple[int, Any]] = []
    if isinstance(source, (str, Path)):
        path = Path(source)
        text = read_text_file(path, "safety exemplars file")
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append((number, parse_json_line(line, path, number, SAFETY_SHAPE)))
    elif isinstance(source, Mapping):
        raise CorpusError(
            "expected a JSONL path or a list of exemplar objects, got a single mapping; "
            "wrap it in a list",
            path=_IN_MEMORY,
        )
    else:
        try:
            records = list(enumerate(source, start=1))
        except TypeError:
            raise CorpusError(
                f"expected a JSONL path or a list of exemplar objects, got {type(source).__name__}",
                path=_IN_MEMORY,
            ) from None
    where = path if path is not None else _IN_MEMORY
    examples: list[SafetyExample] = []
    seen: dict[str, int] = {}
    for number, record in records:
        example = _example_from_record(record, where, number)
        key = clean_text(example.text)
        if key in seen:
            raise CorpusError(
                f"the text {example.text[:40]!r} is already given on line {seen[key]}; "
                "keep one of them",
                path=where,
                line=number,
                field="text",
            )
        seen[key] = number
        examples.append(example)
    for label in SAFETY_LABELS:
        count = sum(example.label == label for example in examples)
        if count < MIN_PER_LABEL:
            raise CorpusError(
                f"{count} {label!r} exemplar(s); the gate needs at least {MIN_PER_LABEL} "
                f"harmful questions and {MIN_PER_LABEL} benign look-alikes to tell them apart "
                "(its thresholds are chosen by cross-validation over them)",
                path=where,
            )
    return tuple(examples)


def examples_hash(examples: Iterable[SafetyExample]) -> str:
    """SHA-256 of the exemplars' canonical JSON (equal sets hash equal, wherever loaded)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(example.to_dict(), ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


_IN_MEMORY = "<in-memory safety exemplars>"


def _bundled(relative: str) -> Path:
    path = bundled_data_dir() / relative
    if not path.is_file():
        raise CorpusError(
            "the bundled safety data is missing from this installation; reinstall walletfaq",
            path=path,
        )
    return path


def _example_from_record(record: Any, where: Path | str, number: int) -> SafetyExample:
    def fail(message: str, field_name: str | None = None) -> CorpusError:
        return CorpusError(message, path=where, line=number, field=field_name)

    if isinstance(record, SafetyExample):
        record = record.to_dict()
    if not isinstance(record, Mapping):
        raise fail(f"expected an object with 'text', 'label' and 'kind', got {_kind(record)}")
    unknown = sorted(str(key) for key in record if key not in SAFETY_FIELDS)
    if unknown:
        raise fail(
            f"unknown field(s) {unknown}; allowed: {list(SAFETY_FIELDS)} (check the spelling)",
            unknown[0],
        )
    values: dict[str, str] = {}
    for name in SAFETY_FIELDS:
        if name not in record:
            if name == "style":
                values[name] = "unspecified"
                continue
            raise fail("missing required field; every exemplar needs text, label and kind", name)
        value = record[name]
        if not isinstance(value, str):
            raise fail(f"expected a string, got {_kind(value)}", name)
        problem = length_problem(value, TEXT_LIMITS["question"]) or text_problem(value)
        if problem:
            raise fail(problem, name)
        values[name] = value.strip()
    label = values["label"]
    if label not in SAFETY_LABELS:
        raise fail(f"must be 'harmful' or 'benign', got {label!r}", "label")
    return SafetyExample(values["text"], label, values["kind"], values["style"])  # type: ignore[arg-type]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


__all__ = [
    "BUNDLED_SAFETY_FILE",
    "BUNDLED_SAFETY_QUERIES_FILE",
    "MIN_PER_LABEL",
    "SAFETY_FIELDS",
    "SAFETY_LABELS",
    "SafetyExample",
    "SafetyLabel",
    "bundled_safety_path",
    "bundled_safety_queries_path",
    "examples_hash",
    "load_bundled_safety_examples",
    "load_safety_examples",
]
