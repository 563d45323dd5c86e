"""JSON parsing that refuses what :func:`json.loads` lets through silently.

- a key repeated inside one object (``json`` keeps the last value; we reject it),
- nesting deep enough to exhaust the interpreter's stack (``RecursionError`` otherwise),
- ``NaN``/``Infinity`` literals, which are not JSON, and numbers that would become them
  (``1e400`` is a float out of range: ``inf``),
- integers too long for Python to read (over 4300 digits: ``ValueError`` otherwise).

Every problem is a :class:`JSONProblem` (a ``ValueError``) carrying a message, and a line and
column when known, so each caller can raise its own error type naming its file.
"""

from __future__ import annotations

import json
import math
from typing import Any


class JSONProblem(ValueError):
    """A JSON text that cannot be used: malformed, duplicate key, too deep.

    Attributes: ``message`` (what is wrong), ``line``/``column`` (where, when known), ``key``
    (the repeated key, for duplicates)."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.key = key
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(message + where)


def loads(text: str) -> Any:
    """Parse ``text`` as JSON; raise :class:`JSONProblem` on anything questionable."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
            parse_float=_finite_float,
            parse_int=_readable_int,
        )
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"malformed JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise JSONProblem(
            "nested too deeply to parse; a walletfaq file needs only a few levels"
        ) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JSONProblem(f"duplicate key {key!r} in one object; keep one of them", key=key)
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise JSONProblem(f"{name} is not valid JSON; use a number or null")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONProblem(
            f"the number {_cut(text)} is out of the range of a double-precision float; "
            "use a smaller number"
        )
    return value


def _readable_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than int() converts
        raise JSONProblem(
            f"the integer {_cut(text)} has {len(text.lstrip('-'))} digits, too many to read; "
            "use a smaller number"
        ) from None


def _cut(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-8:]}"
