"""Support-contact directory: official hotlines and channels of wallets.

The bundled directory is ``corpus/contacts.json``::

    {"version": 1, "contacts": [{"id": "alipay", "name": "支付宝",
      "aliases": ["支付宝", "alipay", ...], "misspellings": ["支付包", ...],
      "not_mentions": [...], "hotline": "95188" | null,
      "channels": ["..."], "official_url": "https://...", "notes": "..."}]}

``aliases`` are other names of the wallet (Traditional spellings, English and pinyin names);
``misspellings`` (optional) are known real-world misspellings that should still count as naming
it ("支付包" for 支付宝); ``not_mentions`` (optional) are ordinary words that contain one of its
names without naming it ("和包裹" contains 和包). ``notes`` is what is specific to the wallet:
:meth:`Contact.summary` itself adds the hotline, the channels, the "以官方…为准" caveat with the
official URL and the anti-fraud reminder, so notes should repeat none of them.

:func:`contact_entries` turns every contact into an FAQ entry (``hotline-<id>``, category
``customer-service``) so that "支付宝客服电话是多少" is answered from the directory by the same
search as every other question. A retriever that knows the directory only lets a
``hotline-<id>`` entry answer questions that name that wallet: "钱包客服电话在哪找" goes to the
generic entry, never to some brand's number.

Names are matched exactly (see :meth:`ContactDirectory.matches`), never by edit distance: one
leftmost-longest scan over the names, aliases and misspellings of all contacts, after Unicode
NFKC normalisation, lower-casing and whitespace collapsing. Names that begin or end with an
ASCII letter or digit must stand on a word boundary there ("apple" does not match inside
"pineapple", "PP支付" not inside "app支付"); Chinese names match as substrings, but a longer
name wins where names overlap, so "京东支付" names JD Pay only even if another wallet were
called "支付". A hotline is listed only where it was verified; other contacts point to their
official channels.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from walletfaq.data.corpus import BUNDLED_CONTACTS_FILE, Corpus, FAQEntry, bundled_data_dir
from walletfaq.data.ids import id_problem
from walletfaq.data.strictjson import JSONProblem, loads
from walletfaq.errors import CorpusError

CONTACT_CATEGORY = "customer-service"
CONTACT_ID_PREFIX = "hotline-"
FRAUD_WARNING = "官方客服绝不会索要您的密码或短信验证码，也不会要求转账到“安全账户”。"
_WORD_CHARS = frozenset(string.ascii_lowercase + string.digits)


def normalize_name(text: str) -> str:
    """The form in which names and texts are compared: NFKC (full-width letters and
    punctuation become ASCII), lower-cased, runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


@dataclass(frozen=True)
class Contact:
    """How to reach one wallet's official support.

    Attributes:
        id: short stable identifier; the generated FAQ entry is ``hotline-<id>``, which must
            follow the id grammar (:mod:`walletfaq.data.ids`): lowercase a-z, 0-9, ``-``, ``_``.
        name: display name.
        aliases: other names that identify this wallet and no other.
        hotline: the verified hotline number, or ``None`` where none was verified.
        channels: other official ways to reach support, most useful first.
        official_url: where users verify the information.
        notes: wallet-specific advice appended to :meth:`summary`.
        misspellings: known misspellings that still name this wallet (matched, never shown).
        not_mentions: ordinary words that contain one of its names without naming it.
    """

    id: str
    name: str
    aliases: tuple[str, ...]
    hotline: str | None
    channels: tuple[str, ...]
    official_url: str
    notes: str = ""
    misspellings: tuple[str, ...] = ()
    not_mentions: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Name, aliases and misspellings, in that order, without repeats: everything that
        names this wallet in a question."""
        return tuple(dict.fromkeys((self.name, *self.aliases, *self.misspellings)))

    @property
    def entry_id(self) -> str:
        """Id of the FAQ entry generated for this contact."""
        return f"{CONTACT_ID_PREFIX}{self.id}"

    def summary(self) -> str:
        """One readable Chinese paragraph: hotline (if verified), channels, notes, where to
        verify, and the anti-fraud reminder. The number and the "以官方…为准" caveat appear once
        each (the notes are expected not to repeat them)."""
        parts = []
        if self.hotline:
            parts.append(f"{self.name}官方客服热线：{self.hotline}。")
        else:
            parts.append(f"{self.name}的客服电话未收录在本目录中（我们只列出核实过的号码）。")
        if self.channels:
            parts.append("其他联系渠道：" + "；".join(self.channels) + "。")
        if self.notes:
            parts.append(self.notes)
        parts.append(
            f"号码和入口可能调整，请以官方网站或官方 App 公布的信息为准：{self.official_url} 。"
        )
        parts.append(FRAUD_WARNING)
        return "".join(parts)


@dataclass(frozen=True)
class NameMatch:
    """One wallet name found in a text by :meth:`ContactDirectory.matches`.

    Attributes:
        contact: the wallet named.
        term: the name, alias or misspelling that matched, as written in the contacts file.
        start: offset of the match in the normalised text (:func:`normalize_name`).
    """

    contact: Contact
    term: str
    start: int


class _NameMatcher:
    """One compiled leftmost-longest scan over all names of all contacts."""

    def __init__(self, contacts: tuple[Contact, ...]) -> None:
        # normalised term -> (contact, term as written); None for not-mentions. The first
        # contact in file order keeps a term listed twice (the loader rejects that case).
        self.owner: dict[str, tuple[Contact, str] | None] = {}
        for contact in contacts:
            for term in contact.names:
                self.owner.setdefault(normalize_name(term), (contact, term))
        for contact in contacts:
            for term in contact.not_mentions:
                self.owner.setdefault(normalize_name(term), None)
        terms = sorted((t for t in self.owner if t), key=len, reverse=True)
        # Alternatives are tried in order, so longest first gives the longest match at the
        # leftmost position where any name matches.
        self.pattern = (
            re.compile("|".join(_term_pattern(t) for t in terms), re.DOTALL) if terms else None
        )

    def scan(self, text: str) -> list[NameMatch]:
        if self.pattern is None:
            return []
        found = []
        for match in self.pattern.finditer(normalize_name(text)):
            owner = self.owner[match.group(0)]
            if owner is not None:
                found.append(NameMatch(contact=owner[0], term=owner[1], start=match.start()))
        return found


def _term_pattern(term: str) -> str:
    """Regex for one normalised term: literal, with an ASCII word boundary on each side that
    begins or ends with an ASCII letter or digit."""
    pattern = re.escape(term)
    if term[0] in _WORD_CHARS:
        pattern = r"(?<![a-z0-9])" + pattern
    if term[-1] in _WORD_CHARS:
        pattern += r"(?![a-z0-9])"
    return pattern


@dataclass(frozen=True)
class ContactDirectory:
    """All contacts of a directory file, in file order."""

    contacts: tuple[Contact, ...]
    source: str = "<in-memory contacts>"

    def __iter__(self) -> Iterator[Contact]:
        return iter(self.contacts)

    def __len__(self) -> int:
        return len(self.contacts)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, in the contacts file format."""
        return {
            "version": 1,
            "contacts": [
                {
                    "id": c.id,
                    "name": c.name,
                    "aliases": list(c.aliases),
                    "misspellings": list(c.misspellings),
                    "not_mentions": list(c.not_mentions),
                    "hotline": c.hotline,
                    "channels": list(c.channels),
                    "official_url": c.official_url,
                    "notes": c.notes,
                }
                for c in self.contacts
            ],
        }

    def with_hotline(self) -> tuple[Contact, ...]:
        """Contacts whose hotline is listed."""
        return tuple(c for c in self.contacts if c.hotline)

    @cached_property
    def _matcher(self) -> _NameMatcher:
        return _NameMatcher(self.contacts)

    def matches(self, text: str) -> list[NameMatch]:
        """Every wallet name in ``text``, in text order.

        One scan, left to right, over the names, aliases and misspellings of all contacts
        (compared after :func:`normalize_name`): at each position the longest name that matches
        is taken and the scan resumes after it, so names never overlap and a name inside a
        longer one (of any contact, or a listed not-mention) is not reported. Names beginning
        or ending with an ASCII letter or digit only match on an ASCII word boundary there.
        """
        return self._matcher.scan(text)

    def mentioned(self, text: str) -> set[str]:
        """Ids of all contacts named in ``text`` (see :meth:`matches`); empty if none."""
        return {m.contact.id for m in self.matches(text)}

    def find(self, text: str) -> Contact | None:
        """The contact named in ``text`` by the longest matching name (see :meth:`matches`);
        on a tie, the one first in file order. ``None`` if no wallet is named."""
        found = self.matches(text)
        if not found:
            return None
        order = {c.id: i for i, c in enumerate(self.contacts)}
        best = min(found, key=lambda m: (-len(normalize_name(m.term)), order[m.contact.id]))
        return best.contact


def load_contacts(path: str | Path) -> ContactDirectory:
    """Load and validate a contacts JSON file.

    Raises:
        CorpusError: unreadable file, malformed JSON, a missing/empty field, a duplicate id.
    """
    path = Path(path)
    try:
        raw = loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError("contacts file not found", path=path) from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"not valid UTF-8 (byte {exc.start})", path=path) from None
    except OSError as exc:
        raise CorpusError(f"cannot read file ({exc.strerror})", path=path) from None
    except JSONProblem as exc:
        raise CorpusError(exc.message, path=path, line=exc.line) from None
    return directory_from_data(raw, path=path)


def directory_from_data(raw: object, path: str | Path | None = None) -> ContactDirectory:
    """Validate the parsed JSON of a contacts file (see :func:`load_contacts`).

    Raises:
        CorpusError: a missing/empty field, a field of the wrong type, a duplicate id, an alias
            or misspelling of one character, a name listed for two contacts, or a not-mention
            that is a name or contains none of its contact's names.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("contacts"), list):
        raise CorpusError('expected {"version": 1, "contacts": [...]}', path=path, field="contacts")
    contacts: list[Contact] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(raw["contacts"]):
        where = f"contacts[{position}]"
        if not isinstance(item, dict):
            raise CorpusError("expected a JSON object", path=path, field=where)
        for name in ("name", "official_url"):
            value = item.get(name)
            if not isinstance(value, str) or not value.strip():
                raise CorpusError(
                    "missing or empty; it must be a non-empty string",
                    path=path,
                    field=f"{where}.{name}",
                )
        hotline = item.get("hotline")
        if hotline is not None and (not isinstance(hotline, str) or not hotline.strip()):
            raise CorpusError(
                "must be a non-empty string or null", path=path, field=f"{where}.hotline"
            )
        notes = item.get("notes")
        if notes is not None and not isinstance(notes, str):
            raise CorpusError("must be a string or null", path=path, field=f"{where}.notes")
        lists = {}
        for name in ("aliases", "misspellings", "not_mentions", "channels"):
            value = item.get(name, [])
            if not isinstance(value, list) or not all(
                isinstance(v, str) and v.strip() for v in value
            ):
                raise CorpusError(
                    "must be a list of non-empty strings", path=path, field=f"{where}.{name}"
                )
            lists[name] = tuple(v.strip() for v in value)
        for name in ("aliases", "misspellings"):
            for k, term in enumerate(lists[name]):
                if len(normalize_name(term)) < 2:
                    raise CorpusError(
                        f"{term!r} is too short to identify one wallet; use two or more characters",
                        path=path,
                        field=f"{where}.{name}[{k}]",
                    )
        contact_id = item.get("id")
        problem = id_problem(contact_id) or id_problem(f"{CONTACT_ID_PREFIX}{contact_id}")
        if problem is not None or not isinstance(contact_id, str):
            raise CorpusError(
                f"the contact id and the entry id it makes, '{CONTACT_ID_PREFIX}<id>', must "
                f"both follow the id grammar: {problem}",
                path=path,
                field=f"{where}.id",
            )
        if contact_id in seen:
            raise CorpusError(
                f"duplicate contact id {contact_id!r} (also contacts[{seen[contact_id]}])",
                path=path,
                field=f"{where}.id",
            )
        seen[contact_id] = position
        contacts.append(
            Contact(
                id=contact_id,
                name=item["name"].strip(),
                aliases=lists["aliases"],
                hotline=hotline.strip() if hotline else None,
                channels=lists["channels"],
                official_url=item["official_url"].strip(),
                notes=(notes or "").strip(),
                misspellings=lists["misspellings"],
                not_mentions=lists["not_mentions"],
            )
        )
    _check_names(contacts, path)
    return ContactDirectory(contacts=tuple(contacts), source=str(path or "<in-memory contacts>"))


def _check_names(contacts: list[Contact], path: str | Path | None) -> None:
    """Every name, alias and misspelling names exactly one contact; every not-mention is no
    name and contains one of its own contact's names."""
    owner: dict[str, tuple[int, str]] = {}
    for position, contact in enumerate(contacts):
        fields = [("name", contact.name)]
        fields += [(f"aliases[{k}]", t) for k, t in enumerate(contact.aliases)]
        fields += [(f"misspellings[{k}]", t) for k, t in enumerate(contact.misspellings)]
        for field, term in fields:
            first = owner.setdefault(normalize_name(term), (position, field))
            if first[0] != position:
                other = contacts[first[0]]
                raise CorpusError(
                    f"{term!r} already names contact {other.id!r} (contacts[{first[0]}]."
                    f"{first[1]}); a name must identify one wallet, keep it in one of them",
                    path=path,
                    field=f"contacts[{position}].{field}",
                )
    for position, contact in enumerate(contacts):
        own = [normalize_name(t) for t in contact.names]
        for k, term in enumerate(contact.not_mentions):
            key = normalize_name(term)
            where = f"contacts[{position}].not_mentions[{k}]"
            if key in owner:
                named = contacts[owner[key][0]].id
                raise CorpusError(
                    f"{term!r} is a name of contact {named!r}; remove it from not_mentions",
                    path=path,
                    field=where,
                )
            if not any(name in key for name in own):
                raise CorpusError(
                    f"{term!r} contains none of this contact's names, so it cannot be mistaken "
                    "for one; list only words that contain a name, alias or misspelling",
                    path=path,
                    field=where,
                )


def load_bundled_contacts() -> ContactDirectory:
    """The bundled support-contact directory."""
    return load_contacts(bundled_data_dir() / BUNDLED_CONTACTS_FILE)


def as_contacts(value: str | Path | ContactDirectory | None) -> ContactDirectory | None:
    """``value`` as a contact directory: a directory or ``None`` as it is, a path loaded with
    :func:`load_contacts`."""
    if value is None or isinstance(value, ContactDirectory):
        return value
    return load_contacts(value)


def corpus_with_contacts(
    corpus: str | Path | Corpus | None, contacts: str | Path | ContactDirectory | None
) -> tuple[Corpus, ContactDirectory | None]:
    """The corpus a retriever indexes (``corpus`` plus one entry per hotline of ``contacts``)
    and the contact directory it answers with.

    ``corpus``: a JSONL path or a :class:`Corpus`; ``None`` = the bundled wallet FAQ.
    ``contacts``: a contacts JSON path or directory; ``None`` = the bundled directory with the
    bundled corpus, and none with any other corpus.
    """
    from walletfaq.data.corpus import load_bundled_corpus, load_corpus

    directory = as_contacts(contacts)
    if corpus is None:
        base = load_bundled_corpus()
        directory = load_bundled_contacts() if contacts is None else directory
    else:
        base = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)
    return (base.merged(contact_entries(directory)) if directory is not None else base), directory


def contact_entries(directory: ContactDirectory) -> Corpus:
    """One FAQ entry per contact, asking for that wallet's customer-service hotline."""
    entries = []
    for contact in directory:
        names = list(dict.fromkeys((contact.name, *contact.aliases)))
        alts = []
        for alias in names:
            alts += [f"{alias}客服电话", f"{alias}人工客服怎么联系", f"{alias}的热线号码是多少"]
        alts.append(f"{contact.name} customer service phone number")
        entries.append(
            FAQEntry(
                id=contact.entry_id,
                category=CONTACT_CATEGORY,
                question=f"{contact.name}的客服电话是多少？",
                answer=contact.summary(),
                alt_questions=tuple(dict.fromkeys(alts)),
            )
        )
    return Corpus.from_entries(entries, source=directory.source)
