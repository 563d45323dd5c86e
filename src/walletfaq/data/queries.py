"""Labelled queries: the evaluation set's format, the bundled set, and a strict reader.

A labelled query is a JSONL line (or a dict) ``{"query": str, "gold": [entry ids], "style":
str}``; ``gold: []`` marks an out-of-domain question that no entry answers. Evaluation,
calibration, tuning and the hybrid retriever's weight fitting all read them through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walletfaq.data.corpus import parse_json_line, read_text_file
from walletfaq.errors import CorpusError

QUERY_FIELDS = ("query", "gold", "style")
"""Fields a labelled query may have (``style`` is optional)."""

BUNDLED_QUERIES_FILE = "queries.jsonl"
QUERY_SHAPE = '{"query": ..., "gold": [...], "style": ...}'


@dataclass(frozen=True)
class LabelledQuery:
    """One evaluation question and the entry ids that answer it (empty = out of domain)."""

    query: str
    gold: tuple[str, ...]
    style: str = "unspecified"


def bundled_queries_path() -> Path:
    """Path of the bundled labelled evaluation queries (``corpus/eval/queries.jsonl``).

    Works from a source checkout and from an installed wheel alike.
    """
    from walletfaq.data.corpus import bundled_data_dir

    path = bundled_data_dir() / "eval" / BUNDLED_QUERIES_FILE
    if not path.is_file():
        raise CorpusError(
            "the bundled evaluation queries are missing from this installation; "
            "reinstall walletfaq",
            path=path,
        )
    return path


def load_bundled_queries() -> list[LabelledQuery]:
    """The bundled labelled evaluation queries (in- and out-of-domain)."""
    return load_queries(bundled_queries_path())


def load_queries(
    source: str | Path | Iterable[Mapping[str, Any]] | None = None,
) -> list[LabelledQuery]:
    """Read labelled queries from a JSONL file or an iterable of dicts.

    Args:
        source: a JSONL path, or dicts ``{"query": str, "gold": [str, ...], "style": str}``
            (``style`` optional, ``gold: []`` = out of domain); ``None`` = the bundled set.

    Returns:
        One :class:`LabelledQuery` per record, in order (blank lines skipped).

    Raises:
        CorpusError: an unreadable file, malformed or too deeply nested JSON, a duplicate key,
            an unknown field, a missing/empty ``query``, a ``gold`` that is not a list of
            distinct non-empty strings, a ``style`` that is not a string, or no query at all;
            the file, line and field are named. No other exception escapes for bad content.
    """
    if source is None:
        return load_bundled_queries()
    return [query for _, query in numbered_queries(source)]


def numbered_queries(
    source: str | Path | Iterable[Mapping[str, Any]],
) -> list[tuple[int, LabelledQuery]]:
    """:func:`load_queries` with where each query came from: its line in a JSONL file, or
    its 1-based position in an iterable (for error messages that point at a query).

    Raises:
        CorpusError: as :func:`load_queries`.
    """
    path: Path | None = None
    records: list[tuple[int, Any]] = []
    if isinstance(source, (str, Path)):
        path = Path(source)
        text = read_text_file(path, "queries file")
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append((number, parse_json_line(line, path, number, QUERY_SHAPE)))
    elif isinstance(source, Mapping):
        raise CorpusError(
            "expected a JSONL path or a list of query objects, got a single mapping; "
            "wrap it in a list"
        )
    else:
        try:
            records = list(enumerate(source, start=1))
        except TypeError:
            raise CorpusError(
                f"expected a JSONL path or a list of query objects, got {type(source).__name__}"
            ) from None
    queries = [(number, _query_from_record(record, path, number)) for number, record in records]
    if not queries:
        raise CorpusError("no queries to evaluate; add at least one query line", path=path)
    return queries


def _query_from_record(record: Any, path: Path | None, number: int) -> LabelledQuery:
    def fail(message: str, field_name: str | None = None) -> CorpusError:
        return CorpusError(message, path=path, line=number, field=field_name)

    if isinstance(record, LabelledQuery):
        return record
    if not isinstance(record, Mapping):
        raise fail(
            f"expected an object with 'query' and 'gold', got {type(record).__name__}",
        )
    unknown = sorted(str(key) for key in record if key not in QUERY_FIELDS)
    if unknown:
        raise fail(
            f"unknown field(s) {unknown}; allowed: {list(QUERY_FIELDS)} (check the spelling)",
            unknown[0],
        )
    text = record.get("query")
    if not isinstance(text, str) or not text.strip():
        got = "missing" if "query" not in record else f"got {_describe(text)}"
        raise fail(f"must be a non-empty string ({got})", "query")
    _check_encodable(text, fail, "query")
    gold = record.get("gold")
    if not isinstance(gold, list):
        got = "missing" if "gold" not in record else f"got {_describe(gold)}"
        raise fail(f"must be a list of entry ids ([] = out of domain) ({got})", "gold")
    for position, item in enumerate(gold):
        if not isinstance(item, str) or not item.strip():
            raise fail(
                f"item {position} must be a non-empty entry id string, got {_describe(item)}",
                "gold",
            )
        _check_encodable(item, fail, "gold")
    duplicates = sorted({g for g in gold if gold.count(g) > 1})
    if duplicates:
        raise fail(f"duplicate entry id(s) {duplicates}; list each gold id once", "gold")
    style = record.get("style", "unspecified")
    if not isinstance(style, str) or not style.strip():
        raise fail(f"must be a non-empty string when given, got {_describe(style)}", "style")
    return LabelledQuery(text, tuple(g.strip() for g in gold), style)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the string {value[:30]!r}"
    return f"{type(value).__name__}"


def _check_encodable(text: str, fail: Any, field_name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise fail(
            "contains a lone surrogate escape (\\ud800-\\udfff); fix the text", field_name
        ) from None


def as_labelled(queries: Any) -> list[LabelledQuery]:
    """``queries`` as labelled queries: a list of :class:`LabelledQuery` as it is, anything
    else through :func:`load_queries`."""
    if (
        isinstance(queries, (list, tuple))
        and queries
        and all(isinstance(q, LabelledQuery) for q in queries)
    ):
        return list(queries)
    return load_queries(queries)
