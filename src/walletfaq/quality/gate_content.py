"""The content check of the quality gate: contact details that an edit brings in.

Retrieval metrics cannot see what an answer *says*. The most damaging edit to a wallet's FAQ
keeps the question and changes where the answer sends the user: a "hotline" that is not the
wallet's, a link to a look-alike site, a card number to transfer to. Every real contact detail
a support answer may give is already known: the contacts directory (the hotlines the service
answers with) and the published content itself. So the gate refuses an added or changed entry
that gives a contact detail found in neither:

- phone numbers: mainland mobiles (``1[3-9]`` + 9 digits), ``400``/``800`` service numbers,
  the 5-digit ``95xxx`` short numbers of banks and payment companies (and their 6-8 digit
  extensions), landlines with an area code (``0`` + 2-3 digits + 7-8 digits); spaces, dashes
  and a ``+86`` prefix allowed; read in :func:`~walletfaq.data.privacy.detection_view`, as
  the masking of personal details reads them (full-width and other-script digits as digits,
  every dash as ``-``, invisible marks as spaces);
- web addresses: ``http(s)://``, ``www.``, or a host name with a common top-level domain;
- account and card numbers: runs of 12 to 19 digits (a bank card, an account to pay into).

A detail is compared by its canonical form (digits only for numbers, the lower-case host for
an address), so ``400-123-4567`` and ``4001234567`` are the same number. The check reads the
question, the alt questions and the answer of each added or changed entry; a removed entry
brings nothing in. A host under a known host (``help.alipay.com`` under ``alipay.com``) is
known too. A detail that the published content already gives (e.g. ``95188`` quoted in
another answer) passes: the check asks only what is *new*, which a person then confirms with
``--force`` when it is right (a new official number: add it to the contacts directory first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.data.privacy import detection_view

__all__ = ["ContactDetail", "NewContactDetail", "contact_details", "new_contact_details"]

_SEP = r"[ -]?"  # in the detection view, every dash is "-" and every space " "
_PHONE = re.compile(
    r"(?<![0-9])(?:\+?86" + _SEP + r")?(?:"
    r"1[3-9][0-9]" + _SEP + r"[0-9]{4}" + _SEP + r"[0-9]{4}"  # mobile
    r"|[48]00" + _SEP + r"[0-9]{3}" + _SEP + r"[0-9]{4}"  # 400 / 800
    r"|95[0-9]{3}(?:" + _SEP + r"[0-9]{1,3})?"  # 95xxx short numbers
    r"|0[1-9][0-9]{1,2}" + _SEP + r"[0-9]{7,8}"  # landline with area code
    r")(?![0-9])"
)
_LONG_NUMBER = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){11,18}(?![0-9])")
_TLDS = "com|cn|net|org|top|xyz|vip|cc|info|io|me|app|shop|site|online|club|hk|tw|co"
_ADDRESS = re.compile(
    r"(?i)(?:https?://|www\.)[^\s<>\"'，。、；！？）)]+"
    r"|(?<![a-z0-9@.\-])(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+(?:"
    + _TLDS
    + r")(?![a-z0-9\-])"
)


@dataclass(frozen=True)
class ContactDetail:
    """A contact detail found in a text: its ``kind`` (``"phone"``, ``"address"`` or
    ``"number"``), the ``text`` as written and its canonical ``key``."""

    kind: str
    text: str
    key: str


@dataclass(frozen=True)
class NewContactDetail:
    """A contact detail that an added or changed entry gives and the published content and
    the contacts directory do not: the entry, the field it is in, and the detail."""

    entry_id: str
    field: str
    detail: ContactDetail

    def describe(self) -> str:
        """One line: where and what."""
        return f"{self.entry_id}.{self.field}: {self.detail.kind} {self.detail.text!r}"

    def to_dict(self) -> dict[str, str]:
        return {
            "entry_id": self.entry_id,
            "field": self.field,
            "kind": self.detail.kind,
            "text": self.detail.text,
        }


def contact_details(text: str) -> list[ContactDetail]:
    """The phone numbers, web addresses and long account/card numbers in ``text`` (module
    doc: the forms), in order of appearance."""
    view = detection_view(text)
    found: list[ContactDetail] = []
    taken: list[tuple[int, int]] = []
    for match in _PHONE.finditer(view):
        digits = re.sub(r"[^0-9]", "", match.group())
        if digits.startswith("86") and len(digits) > 11:
            digits = digits[2:]
        found.append(ContactDetail("phone", match.group(), digits))
        taken.append(match.span())
    for match in _LONG_NUMBER.finditer(view):
        if any(start < match.end() and match.start() < end for start, end in taken):
            continue
        found.append(ContactDetail("number", match.group(), re.sub(r"[^0-9]", "", match.group())))
    for match in _ADDRESS.finditer(view):
        found.append(ContactDetail("address", match.group(), _host(match.group())))
    return found


def new_contact_details(
    known: Corpus, candidate: Corpus, *, entries: Iterable[str]
) -> tuple[NewContactDetail, ...]:
    """The contact details that the candidate's ``entries`` (the ids added or changed) give
    and no text of ``known`` (the published content with the contacts directory's hotline
    entries) does."""
    seen = {
        (d.kind, d.key)
        for entry in known.entries
        for _, text in _texts(entry)
        for d in contact_details(text)
    }
    wanted = set(entries)
    out: list[NewContactDetail] = []
    for entry in candidate.entries:
        if entry.id not in wanted:
            continue
        for field, text in _texts(entry):
            for detail in contact_details(text):
                if not _known(detail, seen):
                    out.append(NewContactDetail(entry.id, field, detail))
                    seen.add((detail.kind, detail.key))  # each new detail reported once
    return tuple(out)


def _known(detail: ContactDetail, seen: set[tuple[str, str]]) -> bool:
    """Whether ``detail`` is known: the same canonical form, or a host under a known host
    (``help.alipay.com`` under ``alipay.com``)."""
    if (detail.kind, detail.key) in seen:
        return True
    return detail.kind == "address" and any(
        kind == "address" and detail.key.endswith("." + key) for kind, key in seen
    )


def _texts(entry: FAQEntry) -> Iterator[tuple[str, str]]:
    yield "question", entry.question
    for position, alt in enumerate(entry.alt_questions):
        yield f"alt_questions[{position}]", alt
    yield "answer", entry.answer


def _host(address: str) -> str:
    """The lower-case host of a web address (scheme, ``www.``, path and port dropped)."""
    host = re.sub(r"(?i)^https?://", "", address).split("/", 1)[0].split("?", 1)[0]
    host = host.split(":", 1)[0].lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host
