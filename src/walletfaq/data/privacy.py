"""Masking personal details in free text before it is stored: :func:`mask_personal`.

Users paste their details into questions ("我的手机号138 1234 5678收不到验证码"). The query log
and the feedback comments keep only the masked text; each detail becomes a typed placeholder
(:data:`PLACEHOLDERS`), so the question still reads naturally and still clusters with others:

- mobile numbers (mainland, 11 digits ``1[3-9]x``): plain, grouped 3-4-4 / 3-8 / 7-4 with spaces
  or dashes, with ``+86``, ``0086``, ``86`` or ``(+86)`` in front → ``[手机号]``;
- ID-card numbers: 18 characters (17 digits and a digit or ``X``/``x``) whose birth date is
  plausible (a year 18xx-20xx, month 01-12, day 01-31), grouped 6-8-4, 6-4-4-4 or plain; the
  old 15-digit form (``YYMMDD`` birth date) → ``[身份证号]``;
- bank card numbers: 16-19 digits, plain, in groups of four (the last group shorter), or 6+13
  → ``[银行卡号]``. The Luhn check decides nothing on its own: a mistyped card number is still
  personal. It is used only as a hint between two readings of 18 digits: a plausible ID-card
  number whose check digit is wrong but that passes the Luhn check is called a card;
- e-mail addresses → ``[邮箱]``;
- any run of 20 or more digits (an account or transaction number; it could hold any of the
  above) → ``[长号码]``.

What is left alone: amounts (``100元``, ``12,345.67``), dates and times (``2024-05-01``,
``20240501``, ``13:45``), short numbers (verification codes ``验证码6位`` / ``123456``,
counts ``3笔``, hotlines ``95188``), and digit runs of other lengths.

Detection reads a *view* of the text in which every decimal digit of any script (full-width
``１３８`` included), the full-width forms of ``+ - @ . X``, and space-like characters are
replaced one-for-one by their ASCII form; the replacement then cuts the spans out of the
original text, so everything else (full-width punctuation, Traditional characters, spacing) is
kept as written. Numbers are found only between non-digits: a mobile number inside a longer
digit run is not a mobile number (the run is masked as what its length says it is, or kept).

Masking is idempotent (``mask_personal(mask_personal(t)) == mask_personal(t)``): passes are
repeated until nothing more is found, and placeholders hold no digit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

PersonalKind = Literal["email", "id_card", "bank_card", "mobile", "long_number"]

PLACEHOLDERS: dict[PersonalKind, str] = {
    "email": "[邮箱]",
    "id_card": "[身份证号]",
    "bank_card": "[银行卡号]",
    "mobile": "[手机号]",
    "long_number": "[长号码]",
}
"""The text that replaces each kind of personal detail."""

_SEP = "[ -]"  # one separator between digit groups (in the detection view)
_BIRTH8 = r"(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_BIRTH6 = r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    r"(?![A-Za-z])"
)
_ID_18 = re.compile(
    rf"(?<![0-9])[0-9]{{6}}{_SEP}?(?:{_BIRTH8}|(?:18|19|20)[0-9]{{2}}{_SEP}"
    rf"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]))"
    rf"{_SEP}?[0-9]{{3}}[0-9Xx](?![0-9])"
)
_ID_15 = re.compile(rf"(?<![0-9])[0-9]{{6}}{_SEP}?{_BIRTH6}{_SEP}?[0-9]{{3}}(?![0-9])")
_CARD = re.compile(
    rf"(?<![0-9])(?:[0-9]{{4}}(?:{_SEP}?[0-9]{{4}}){{3}}(?:{_SEP}?[0-9]{{1,3}})?"
    rf"|[0-9]{{6}}{_SEP}[0-9]{{10,13}})(?![0-9])"
)
_MOBILE = re.compile(
    rf"(?<![0-9])(?:(?:\(\+?86\)|(?:\+|00)?86){_SEP}?)?1[3-9][0-9](?:{_SEP}?[0-9]{{4}}){{2}}"
    r"(?![0-9])"
)
_LONG = re.compile(r"(?<![0-9])[0-9]{20,}(?![0-9])")

_PASSES: tuple[tuple[PersonalKind, re.Pattern[str]], ...] = (
    ("email", _EMAIL),  # first: 13812345678@163.com is one address, not a number
    ("id_card", _ID_18),
    ("id_card", _ID_15),
    ("bank_card", _CARD),
    ("mobile", _MOBILE),
    ("long_number", _LONG),
)

_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class MaskedText:
    """The result of :func:`mask_details`: the masked text and what was masked.

    Attributes:
        text: the text with each personal detail replaced by its placeholder.
        kinds: the kind of each detail masked (one item per detail, by kind then position).
    """

    text: str
    kinds: tuple[PersonalKind, ...]

    @property
    def masked(self) -> bool:
        """Whether anything was masked."""
        return bool(self.kinds)


def mask_personal(text: str) -> str:
    """``text`` with mobile, bank card, ID-card numbers and e-mail addresses (and runs of 20+
    digits) replaced by typed placeholders (:data:`PLACEHOLDERS`); the rest unchanged.

    >>> mask_personal("我的手机号１３８ １２３４ ５６７８，邮箱a.b@qq.com，充值100元")
    '我的手机号[手机号]，邮箱[邮箱]，充值100元'

    Raises:
        TypeError: ``text`` is not a string.
    """
    return mask_details(text).text


def mask_details(text: str) -> MaskedText:
    """Like :func:`mask_personal`, also saying which kinds of detail were masked."""
    if not isinstance(text, str):
        raise TypeError(f"mask_personal takes text (str), got {type(text).__name__}")
    kinds: list[PersonalKind] = []
    while True:  # until nothing more is found: each round removes digits, so it ends
        text, found = _one_round(text)
        if not found:
            return MaskedText(text=text, kinds=tuple(kinds))
        kinds.extend(found)


def _one_round(text: str) -> tuple[str, list[PersonalKind]]:
    found: list[PersonalKind] = []
    for kind, pattern in _PASSES:
        view = detection_view(text)
        spans: list[tuple[int, int, PersonalKind]] = []
        for match in pattern.finditer(view):
            named = kind
            if pattern is _ID_18 and _reads_as_card(match.group()):
                named = "bank_card"
            spans.append((match.start(), match.end(), named))
        if not spans:
            continue
        pieces: list[str] = []
        last = 0
        for start, end, named in spans:
            pieces += [text[last:start], PLACEHOLDERS[named]]
            found.append(named)
            last = end
        pieces.append(text[last:])
        text = "".join(pieces)
    return text, found


def detection_view(text: str) -> str:
    """``text`` with, one character for one: every decimal digit (full-width, Arabic-Indic...)
    as ASCII ``0-9``, full-width ASCII forms (``＋ ＠ ．Ｘ``) as ASCII, dashes as ``-`` and
    space-like characters (ideographic space, no-break space, invisible format marks) as a
    space. Positions in the view are positions in ``text``."""
    if text.isascii():
        return text
    out: list[str] = []
    for char in text:
        if char.isascii():
            out.append(char)
        elif char.isdecimal():
            out.append(str(unicodedata.decimal(char)))
        elif "\uff01" <= char <= "\uff5e":  # full-width ASCII forms
            out.append("-" if char == "\uff0d" else chr(ord(char) - 0xFEE0))
        elif char in _DASHES:
            out.append("-")
        elif char.isspace() or unicodedata.category(char) == "Cf":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _reads_as_card(candidate: str) -> bool:
    """Whether an ID-card-shaped 18-digit number reads better as a card number: its ID check
    digit is wrong and it passes the Luhn check (a hint only; both are masked)."""
    digits = "".join(c for c in candidate if c not in " -")
    if not digits.isdigit():
        return False  # ends in X: an ID-card number
    return not id_check_digit_ok(digits) and luhn_ok(digits)


def id_check_digit_ok(number: str) -> bool:
    """Whether an 18-character ID-card number's last character is its check character
    (GB 11643, ISO 7064 MOD 11-2)."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (as valid card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


__all__ = [
    "PLACEHOLDERS",
    "MaskedText",
    "PersonalKind",
    "detection_view",
    "id_check_digit_ok",
    "luhn_ok",
    "mask_details",
    "mask_personal",
]
