"""Gap proposals: FAQ changes proposed from the query log, and a person's decision on each.

A proposal (``walletfaq_proposals``) is ``add_alts`` (users' questions that belong to an
existing entry, to add as its alt questions) or ``new_entry`` (questions no entry answers,
with a suggested question). Gap mining (``walletfaq.quality``) records them with
:meth:`Proposals.add_proposals`; a person accepts or rejects each with
:meth:`Proposals.decide_proposal`. Accepting writes a revision (kind ``proposal``), or stages
the change for the next publish (``stage=True``); a decision is final.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, select

from walletfaq.data.corpus import MAX_ALT_QUESTIONS, TEXT_LIMITS, FAQEntry
from walletfaq.data.normalize import clean_text
from walletfaq.errors import StoreError
from walletfaq.store import schema
from walletfaq.store.queries import utc, versions_at
from walletfaq.store.records import Change
from walletfaq.store.staging import Staging, insert_staged, pending_content
from walletfaq.store.traffic_records import (
    MAX_PROPOSAL_QUESTIONS,
    PROPOSAL_KINDS,
    PROPOSAL_STATUSES,
    NewProposal,
    Proposal,
    UnknownProposalError,
    check_choice,
    check_entry_id,
    check_request_id,
    masked_text,
)
from walletfaq.store.writer import Write, clean_author, lock_head, write_revision

NEW_ENTRY_CATEGORY = "gaps"
"""The category of an entry created from a ``new_entry`` proposal when none is given."""

_QUESTION_LIMIT = TEXT_LIMITS["alt_questions"]


class Proposals(Staging):
    """The gap proposal methods of :class:`~walletfaq.store.Store`."""

    def add_proposals(self, proposals: Sequence[NewProposal]) -> tuple[Proposal, ...]:
        """Record ``proposals`` (status ``open``), all or nothing, in the order given.

        Each gets a new id (``prop-`` and 12 hex digits). Its questions are cleaned, masked
        and de-duplicated by the store.

        Raises:
            StoreError: a proposal breaks a rule (the message names it): an unknown kind, no
                question or more than 1,000, a question over 2,000 characters, ``add_alts``
                without a ``target`` entry id, ``new_entry`` without a suggested question or
                with a target.
        """
        if isinstance(proposals, NewProposal) or not isinstance(proposals, Sequence):
            raise StoreError("add_proposals takes a list of NewProposal")
        rows = [_proposal_row(p, number) for number, p in enumerate(proposals)]
        now = datetime.now(timezone.utc)
        for offset, row in enumerate(rows):  # one microsecond apart: listed in this order
            row["created_at"] = now + timedelta(microseconds=offset)
        if rows:
            with self._writing() as connection:
                connection.execute(schema.proposals.insert(), rows)
        return tuple(_proposal(row) for row in rows)

    def proposals(self, status: str | None = None) -> tuple[Proposal, ...]:
        """The proposals (with ``status`` if given: ``open``, ``accepted``, ``rejected``),
        oldest first."""
        p = schema.proposals
        query = select(p).order_by(p.c.created_at, p.c.id)
        if status is not None:
            query = query.where(p.c.status == check_choice(status, PROPOSAL_STATUSES, "status"))
        with self._reading() as connection:
            return tuple(_proposal(row._mapping) for row in connection.execute(query))

    def proposal(self, proposal_id: str) -> Proposal:
        """The proposal ``proposal_id``.

        Raises:
            UnknownProposalError: there is none.
        """
        proposal_id = check_request_id(proposal_id, "the proposal id")
        with self._reading() as connection:
            row = _proposal_row_for(connection, proposal_id, lock=False)
        if row is None:
            raise UnknownProposalError(proposal_id, self.url)
        return _proposal(row._mapping)

    def decide_proposal(
        self,
        proposal_id: str,
        accept: bool,
        *,
        author: str,
        stage: bool = False,
        answer: str | None = None,
        category: str | None = None,
    ) -> Proposal:
        """Accept or reject a proposal (one transaction); a decision is final.

        Accepting ``add_alts`` adds its questions that the target entry does not have yet as
        alt questions. Accepting ``new_entry`` creates an entry (id ``gap-`` and 8 hex digits
        of its question, made unique) whose question is the suggested one, alt questions the
        others, and answer ``answer``, written by a person (never masked: it is the FAQ's
        text), in ``category`` (default :data:`NEW_ENTRY_CATEGORY`). The change is a new
        revision (kind ``proposal``) whose number the proposal records, or, with ``stage``,
        a staged change built on the staged content; the proposal gets the revision that
        publishes it (and is open again if the staged changes are discarded).

        Raises:
            UnknownProposalError: no such proposal.
            StoreError: already decided; ``new_entry`` accepted without ``answer``;
                ``answer``/``category`` given for anything else; the target entry is gone;
                every question is already the entry's; too many alt questions.
            CorpusError: the new or changed entry breaks a corpus rule (e.g. a long answer).
        """
        proposal_id = check_request_id(proposal_id, "the proposal id")
        author = clean_author(author)
        for name, flag in (("accept", accept), ("stage", stage)):
            if not isinstance(flag, bool):
                raise StoreError(f"{name} must be True or False, got {flag!r}")
        with self._writing() as connection:
            head = lock_head(connection).revision
            row = _proposal_row_for(connection, proposal_id, lock=True)
            if row is None:
                raise UnknownProposalError(proposal_id, self.url)
            if row.status != "open":
                raise StoreError(
                    f"proposal {proposal_id} was already {row.status} by {row.decided_by} at "
                    f"{utc(row.decided_at):%Y-%m-%d %H:%M:%S}Z; a decision is final"
                )
            proposal = _proposal(row._mapping)
            if (answer is not None or category is not None) and not (
                accept and proposal.kind == "new_entry"
            ):
                raise StoreError(
                    "answer and category are for accepting a new_entry proposal; proposal "
                    f"{proposal_id} is {proposal.kind}" + ("" if accept else " (rejected)")
                )
            revision = None
            if accept:
                if not head:
                    raise StoreError(f"{self.url} is empty; import a corpus first (store init)")
                staged = pending_content(connection, head)
                published = {v.entry_id: v.entry for v in versions_at(connection, head) if v.entry}
                content = staged if stage else published
                change = _accepted_change(
                    proposal, content, answer, category, {*staged, *published}
                )
                assert change.entry is not None
                if stage:
                    insert_staged(
                        connection, "put", change.entry_id, change.entry, base=head,
                        author=author, reason=f"proposal {proposal_id}", proposal_id=proposal_id,
                    )  # fmt: skip
                else:
                    revision = write_revision(
                        connection,
                        [Write(change.entry_id, change.entry, None)],
                        author=author,
                        reason=f"accepted proposal {proposal_id} ({proposal.kind})",
                        kind="proposal",
                        url=self.url,
                        checks={change.entry_id: change.op},
                    ).number
            now = datetime.now(timezone.utc)
            values = {
                "status": "accepted" if accept else "rejected",
                "decided_by": author,
                "decided_at": now,
                "revision": revision,
            }
            p = schema.proposals
            connection.execute(p.update().where(p.c.id == proposal_id).values(**values))
        return _proposal({**row._mapping, **values})


def _accepted_change(
    proposal: Proposal,
    content: dict[str, FAQEntry],
    answer: str | None,
    category: str | None,
    taken: set[str],
) -> Change:
    """The edit an acceptance makes, against ``content`` (head, or head with staged); a new
    entry's id is none of ``taken``."""
    if proposal.kind == "add_alts":
        target = proposal.target
        assert target is not None
        if target not in content:
            raise StoreError(
                f"entry {target!r}, the target of proposal {proposal.id}, is not in the store "
                "any more; reject the proposal (or record a new_entry one)"
            )
        entry = content[target]
        have = {clean_text(q) for q in entry.questions()}
        new = [q for q in proposal.questions if clean_text(q) not in have]
        if not new:
            raise StoreError(
                f"every question of proposal {proposal.id} is already among the questions of "
                f"entry {target!r}; nothing to add (reject the proposal)"
            )
        if len(entry.alt_questions) + len(new) > MAX_ALT_QUESTIONS:
            raise StoreError(
                f"entry {target!r} has {len(entry.alt_questions)} alt questions; adding "
                f"{len(new)} would pass the limit of {MAX_ALT_QUESTIONS:,}; remove some first"
            )
        record = {**entry.to_dict(), "alt_questions": [*entry.alt_questions, *new]}
        return Change.update(record)
    if answer is None or not isinstance(answer, str) or not clean_text(answer):
        raise StoreError(
            f"accepting new_entry proposal {proposal.id} needs its answer, written by a person: "
            "pass answer=... (the proposal carries only the users' questions)"
        )
    question = proposal.suggested_question
    assert question is not None
    alts = [q for q in proposal.questions if clean_text(q) != clean_text(question)]
    record = {
        "id": _fresh_id(question, taken),
        "category": NEW_ENTRY_CATEGORY if category is None else category,
        "question": question,
        "answer": answer,
        "alt_questions": list(dict.fromkeys(alts)),
    }
    return Change.add(record)


def _fresh_id(question: str, taken: set[str]) -> str:
    """``gap-`` and 8 hex digits of ``question``; ``-2``, ``-3``... if that id is taken."""
    base = "gap-" + hashlib.sha256(question.encode("utf-8")).hexdigest()[:8]
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _proposal_row(proposal: object, number: int) -> dict[str, Any]:
    """The row of a new proposal, every field checked, its texts masked."""
    where = f"proposal {number}"
    if not isinstance(proposal, NewProposal):
        raise StoreError(f"{where} must be a NewProposal, got {type(proposal).__name__}")
    kind = check_choice(proposal.kind, PROPOSAL_KINDS, f"{where}'s kind")
    raw = proposal.questions
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise StoreError(f"{where}'s questions must be a list of texts, got {type(raw).__name__}")
    if not 1 <= len(raw) <= MAX_PROPOSAL_QUESTIONS:
        raise StoreError(f"{where} has {len(raw)} questions; give 1 to {MAX_PROPOSAL_QUESTIONS:,}")
    questions = [
        masked_text(q, f"{where}'s question {i}", _QUESTION_LIMIT) for i, q in enumerate(raw)
    ]
    if kind == "new_entry" and proposal.suggested_question is None:
        raise StoreError(
            f"{where} is new_entry: give the new entry's question (suggested_question=...)"
        )
    suggested = masked_text(
        proposal.suggested_question,
        f"{where}'s suggested question",
        _QUESTION_LIMIT,
        required=kind == "new_entry",
    )
    target = proposal.target
    if kind == "add_alts":
        if target is None:
            raise StoreError(f"{where} is add_alts: name the entry to add to (target=...)")
        target = check_entry_id(target, f"{where}'s target")
    elif target is not None:
        raise StoreError(f"{where} is new_entry: it has no target entry (target=None)")
    return {
        "id": f"prop-{uuid.uuid4().hex[:12]}",
        "kind": kind,
        "target": target,
        "questions": json.dumps(list(dict.fromkeys(questions)), ensure_ascii=False),
        "suggested_question": suggested,
        "status": "open",
        "decided_by": None,
        "decided_at": None,
        "revision": None,
    }


def _proposal_row_for(connection: Connection, proposal_id: str, *, lock: bool) -> Any:
    query = select(schema.proposals).where(schema.proposals.c.id == proposal_id)
    return connection.execute(query.with_for_update() if lock else query).first()


def _proposal(row: Mapping[Any, Any]) -> Proposal:
    """A proposal from its row's values."""
    decided_at = row["decided_at"]
    return Proposal(
        id=row["id"],
        created_at=utc(row["created_at"]),
        kind=row["kind"],
        target=row["target"],
        questions=tuple(json.loads(row["questions"])),
        suggested_question=row["suggested_question"],
        status=row["status"],
        decided_by=row["decided_by"],
        decided_at=utc(decided_at) if decided_at is not None else None,
        revision=row["revision"],
    )
