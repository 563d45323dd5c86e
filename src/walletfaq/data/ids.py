"""The entry id grammar: one rule for every FAQ entry id, wherever the id comes from.

An id is **1 to 64 characters: lowercase ASCII letters** ``a-z``, **digits** ``0-9``, ``-`` and
``_``, **starting with a letter or a digit** (``topup-not-received``, ``hotline-alipay``,
``q_017``). Nothing else: no ``/`` (an id is one URL path segment: ``/v1/entries/{id}``), no
whitespace, no control, zero-width or bidirectional characters, no non-ASCII letters (a
Cyrillic ``е`` looks like a Latin ``e``), no upper case (``Fees`` and ``fees`` would be two
entries that read as one).

The corpus loader (:mod:`walletfaq.data.corpus`), the live edits of a retriever and every HTTP
route that takes an id apply :func:`check_id` (or :func:`id_problem`) to the id exactly as
given: an id outside the grammar is refused with a message that names the rule, never trimmed
or lower-cased into a valid one.

:func:`id_skeleton` is the look-alike folding the corpus doctor uses to flag ids that a person
could mistake for each other (``top-up`` / ``top_up``, ``l0gin`` / ``login``).
"""

from __future__ import annotations

import re
import unicodedata

from walletfaq.errors import CorpusError, WalletFAQError

ID_MAX_CHARS = 64
"""The longest id, in characters."""

ID_RULE = (
    f"an id is 1 to {ID_MAX_CHARS} characters: lowercase ASCII letters a-z, digits 0-9, '-' "
    "and '_', starting with a letter or a digit"
)
"""The grammar in words, quoted by every refusal."""

_ID = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{ID_MAX_CHARS - 1}}}")
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class InvalidIdError(CorpusError):
    """An entry id outside the grammar, given to a lookup, an edit or a route (a corpus file's
    is a plain :class:`CorpusError` naming its file, line and field). ``field`` is ``"id"``;
    the message says where the id came from, what is wrong with it and quotes :data:`ID_RULE`."""

    def __init__(self, message: str) -> None:
        WalletFAQError.__init__(self, message)  # no file or line to prefix
        self.path, self.line, self.field = None, None, "id"


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a valid entry id (the message quotes :data:`ID_RULE`), or ``None``
    when it is one. The id is judged exactly as given (nothing is trimmed or lower-cased)."""
    if not isinstance(value, str):
        return f"an id must be a string, got {type(value).__name__}; {ID_RULE}"
    if _ID.fullmatch(value):
        return None
    if not value:
        return f"the id is empty; {ID_RULE}"
    if len(value) > ID_MAX_CHARS:
        return f"the id has {len(value)} characters, more than {ID_MAX_CHARS}; {ID_RULE}"
    position, char = next(((i, c) for i, c in enumerate(value) if c not in _ALLOWED), (0, value[0]))
    if char in _ALLOWED:  # every character is allowed: the first one is '-' or '_'
        what = f"starts with {char!r}"
    else:
        what = f"has {_describe(char)} at position {position}"
        if "A" <= char <= "Z":
            what += " (ids are lower case)"
    return f"the id {_shown(value)} {what}; {ID_RULE}"


def check_id(value: object, what: str = "the id") -> str:
    """``value`` if it is a valid entry id; else raise :class:`InvalidIdError` saying why,
    ``what`` naming where the id came from ("the id in the path")."""
    problem = id_problem(value)
    if problem is not None:
        raise InvalidIdError(f"{what} is not a valid entry id: {problem}")
    return value  # type: ignore[return-value]  # a str: id_problem found none


# look-alikes folded onto one ASCII character (NFKC and case folding come first)
_LOOK_ALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "l",
        "ї": "l", "ј": "j", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q",
        "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԝ": "w", "ь": "b", "п": "n",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "l", "κ": "k", "μ": "u", "ν": "v",
        "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
        # Latin and ASCII look-alikes
        "ı": "l", "ɡ": "g", "ℓ": "l", "i": "l", "1": "l", "|": "l", "0": "o", "5": "s",
        "_": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "．": ".",
    }
)  # fmt: skip
_LOOK_ALIKE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def id_skeleton(value: str) -> str:
    """What ``value`` looks like to a reader: NFKC-normalised, case-folded, without invisible
    (format) characters, each look-alike replaced by one representative (``0``→``o``,
    ``1``/``i``→``l``, ``_``→``-``, Cyrillic ``е``→``e``, ``rn``→``m``...). Two ids with the
    same skeleton can be mistaken for each other."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    skeleton = visible.translate(_LOOK_ALIKES)
    for pair, single in _LOOK_ALIKE_PAIRS:
        skeleton = skeleton.replace(pair, single)
    return skeleton


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    if char.isprintable() and not char.isspace() and unicodedata.category(char) != "Cf":
        return f"{char!r} ({code}{' ' + name if name else ''})"
    return f"{code}{' ' + name if name else ''}"  # invisible: name it only


def _shown(value: str) -> str:
    """``value`` quoted for a message, invisible characters escaped, long ones cut."""
    shown = value if len(value) <= 80 else value[:77] + "..."
    return ascii(shown)


__all__ = [
    "ID_MAX_CHARS",
    "ID_RULE",
    "InvalidIdError",
    "check_id",
    "id_problem",
    "id_skeleton",
]
