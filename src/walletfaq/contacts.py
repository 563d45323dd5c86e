"""Support-contact directory: official hotlines and channels of wallets.

The bundled directory is ``corpus/contacts.json``::

    {"version": 1, "contacts": [{"id": "alipay", "name": "支付宝",
      "aliases": ["支付宝", "alipay", ...], "hotline": "95188" | null,
      "channels": ["..."], "official_url": "https://...", "notes": "..."}]}

:func:`contact_entries` turns every contact into an FAQ entry (``hotline-<id>``, category
``customer-service``) so that "支付宝客服电话是多少" is answered from the directory by the same
search as every other question. A retriever that knows the directory only lets a
``hotline-<id>`` entry answer questions that name that wallet (by name or alias): "钱包客服电话
在哪找" goes to the generic entry, never to some brand's number. A hotline is listed only
where it was verified; other contacts point to their official channels.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .corpus import BUNDLED_CONTACTS_FILE, Corpus, FAQEntry, bundled_data_dir
from .errors import CorpusError

CONTACT_CATEGORY = "customer-service"
CONTACT_ID_PREFIX = "hotline-"


@dataclass(frozen=True)
class Contact:
    """How to reach one wallet's official support."""

    id: str
    name: str
    aliases: tuple[str, ...]
    hotline: str | None
    channels: tuple[str, ...]
    official_url: str
    notes: str = ""

    @cached_property
    def name_pattern(self) -> re.Pattern[str]:
        """Matches the lower-cased name or an alias, allowing one mistyped character in Chinese
        names of three or more characters (支付包 for 支付宝); compiled once per contact."""
        variants = set()
        for alias in (self.name, *self.aliases):
            lowered = alias.lower()
            variants.add(re.escape(lowered))
            if len(lowered) >= 3 and not lowered.isascii():
                variants.update(
                    re.escape(lowered[:i]) + "." + re.escape(lowered[i + 1 :])
                    for i in range(len(lowered))
                )
        return re.compile("|".join(sorted(variants, key=len, reverse=True)), re.DOTALL)

    @property
    def entry_id(self) -> str:
        """Id of the FAQ entry generated for this contact."""
        return f"{CONTACT_ID_PREFIX}{self.id}"

    def summary(self) -> str:
        """One readable Chinese paragraph: hotline (if verified), channels, where to verify."""
        parts = []
        if self.hotline:
            parts.append(f"{self.name}官方客服热线：{self.hotline}。")
        else:
            parts.append(f"{self.name}的客服电话未收录在本目录中（我们只列出核实过的号码）。")
        if self.channels:
            parts.append("其他联系渠道：" + "；".join(self.channels) + "。")
        parts.append(f"请以官方网站或官方 App 公布的信息为准：{self.official_url} 。")
        if self.notes:
            parts.append(self.notes)
        return "".join(parts)


@dataclass(frozen=True)
class ContactDirectory:
    """All contacts of a directory file, in file order."""

    contacts: tuple[Contact, ...]
    source: str = "<in-memory contacts>"

    def __iter__(self):  # type: ignore[no-untyped-def]
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

    def mentioned(self, text: str) -> set[str]:
        """Ids of the contacts named in ``text`` (see :attr:`Contact.name_pattern`)."""
        lowered = text.lower()
        return {c.id for c in self.contacts if c.name_pattern.search(lowered)}

    def find(self, text: str) -> Contact | None:
        """The contact whose longest alias occurs in ``text`` (case-insensitive), if any."""
        lowered = text.lower()
        best: tuple[int, Contact] | None = None
        for contact in self.contacts:
            for alias in (contact.name, *contact.aliases):
                if alias and alias.lower() in lowered and (best is None or len(alias) > best[0]):
                    best = (len(alias), contact)
        return best[1] if best else None


def load_contacts(path: str | Path) -> ContactDirectory:
    """Load and validate a contacts JSON file.

    Raises:
        CorpusError: unreadable file, malformed JSON, a missing/empty field, a duplicate id.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError("contacts file not found", path=path) from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"not valid UTF-8 (byte {exc.start})", path=path) from None
    except json.JSONDecodeError as exc:
        raise CorpusError(f"malformed JSON ({exc.msg})", path=path, line=exc.lineno) from None
    return directory_from_data(raw, path=path)


def directory_from_data(raw: object, path: str | Path | None = None) -> ContactDirectory:
    """Validate the parsed JSON of a contacts file (see :func:`load_contacts`)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("contacts"), list):
        raise CorpusError('expected {"version": 1, "contacts": [...]}', path=path, field="contacts")
    contacts: list[Contact] = []
    seen: set[str] = set()
    for position, item in enumerate(raw["contacts"]):
        where = f"contacts[{position}]"
        if not isinstance(item, dict):
            raise CorpusError("expected a JSON object", path=path, field=where)
        for name in ("id", "name", "official_url"):
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
        lists = {}
        for name in ("aliases", "channels"):
            value = item.get(name, [])
            if not isinstance(value, list) or not all(
                isinstance(v, str) and v.strip() for v in value
            ):
                raise CorpusError(
                    "must be a list of non-empty strings", path=path, field=f"{where}.{name}"
                )
            lists[name] = tuple(v.strip() for v in value)
        if item["id"] in seen:
            raise CorpusError(
                f"duplicate contact id {item['id']!r}", path=path, field=f"{where}.id"
            )
        seen.add(item["id"])
        contacts.append(
            Contact(
                id=item["id"].strip(),
                name=item["name"].strip(),
                aliases=lists["aliases"],
                hotline=hotline.strip() if hotline else None,
                channels=lists["channels"],
                official_url=item["official_url"].strip(),
                notes=str(item.get("notes", "")).strip(),
            )
        )
    return ContactDirectory(contacts=tuple(contacts), source=str(path or "<in-memory contacts>"))


def load_bundled_contacts() -> ContactDirectory:
    """The bundled support-contact directory."""
    return load_contacts(bundled_data_dir() / BUNDLED_CONTACTS_FILE)


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
