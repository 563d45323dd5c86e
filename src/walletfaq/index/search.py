"""Ranked answers: from FAISS row hits to one :class:`Hit` per FAQ entry.

Every question and alt question of an entry is a vector row. A search fetches more rows than
answers wanted and keeps each entry's best-scoring row, so an entry never appears twice.

The answer decision (:func:`decide`) takes a threshold, a cosine score (:func:`in_score_range`),
and an optional fallback message (:func:`fallback_problem`); the retriever and a saved index's
manifest apply these two rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from walletfaq.data.contacts import ContactDirectory
from walletfaq.data.corpus import TEXT_LIMITS, FAQEntry
from walletfaq.errors import WalletFAQError

SCORE_ROUNDING = 1e-5
"""How far float32 rounding may take a cosine of unit vectors beyond [-1, 1]."""

MAX_FALLBACK_CHARS = TEXT_LIMITS["answer"]
"""The longest fallback message: an answer's limit."""


def in_score_range(value: float) -> bool:
    """Whether ``value`` can be a cosine score (a threshold): within [-1, 1], give or take
    :data:`SCORE_ROUNDING`."""
    return -1.0 - SCORE_ROUNDING <= value <= 1.0 + SCORE_ROUNDING


def fallback_problem(value: object) -> str | None:
    """Why ``value`` cannot be a fallback message (``None``: it can): it must be ``None`` or a
    non-empty string of at most :data:`MAX_FALLBACK_CHARS` characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"fallback must be a non-empty string or None, got {value!r:.80}"
    if len(value) > MAX_FALLBACK_CHARS:
        return f"fallback has {len(value):,} characters, more than {MAX_FALLBACK_CHARS:,}"
    return None


@dataclass(frozen=True)
class Hit:
    """One ranked answer.

    Attributes:
        id: the FAQ entry's id.
        question: the entry's main question.
        answer: the entry's answer.
        score: cosine similarity of the question to the entry's best-matching text (higher is
            better, at most 1).
        category: the entry's category.
        matched: the entry text (question or alt question) that matched best.
    """

    id: str
    question: str
    answer: str
    score: float
    category: str
    matched: str = ""

    @classmethod
    def of(cls, entry: FAQEntry, score: float, matched: str) -> Hit:
        """The hit of ``entry`` with the cosine ``score`` of its text ``matched`` (capped at 1:
        unit vectors exceed it only by float rounding)."""
        return cls(
            id=entry.id,
            question=entry.question,
            answer=entry.answer,
            score=min(score, 1.0),
            category=entry.category,
            matched=matched,
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "category": self.category,
            "question": self.question,
            "answer": self.answer,
            "score": self.score,
            "matched": self.matched,
        }


Decision = Literal["answer", "handoff", "refuse"]
"""What :meth:`FAQRetriever.answer` decided: ``"answer"`` (a confident entry), ``"handoff"``
(no confident entry: a pointer to human support) or ``"refuse"`` (a harmful request: the
safety message, no entry)."""

DECISIONS: tuple[Decision, ...] = ("answer", "handoff", "refuse")


@dataclass(frozen=True)
class Answer:
    """Outcome of :meth:`FAQRetriever.answer`: an answer, a pointer to human support, or a
    refusal.

    Attributes:
        question: the question asked.
        hit: the best entry when confident, else ``None`` (always ``None`` for a refusal).
        confident: whether an entry answers (the top score reached the threshold and the
            question was not refused); ``True`` exactly when ``decision == "answer"``.
        message: the text to show: the entry's answer, the human-support fallback, or the
            safety message.
        candidates: the top hits (for logging or "did you mean"); empty for a refusal.
        decision: ``"answer"``, ``"handoff"`` or ``"refuse"`` (:data:`Decision`); left at its
            default, ``"answer"`` if confident else ``"handoff"``.
        reason: why, in a few words (e.g. ``"score 0.912 >= threshold 0.860"``, ``"harmful
            request (fraud)"``).
    """

    question: str
    hit: Hit | None
    confident: bool
    message: str
    candidates: tuple[Hit, ...]
    decision: Decision = "answer"
    reason: str = ""

    def __post_init__(self) -> None:
        decision = self.decision
        if decision == "answer" and not self.confident:
            decision = "handoff"  # the two-outcome form: Answer(q, None, False, message, hits)
            object.__setattr__(self, "decision", decision)
        if decision not in DECISIONS:
            raise WalletFAQError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if (decision == "answer") != (self.confident and self.hit is not None):
            raise WalletFAQError(
                f"decision {decision!r} with confident={self.confident} and "
                f"hit={'an entry' if self.hit is not None else None}: an answer is confident "
                "and has a hit; a handoff or a refusal has neither"
            )
        if decision == "refuse" and self.candidates:
            raise WalletFAQError("a refusal carries no candidates")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: ``question``, ``confident``, ``decision``, ``reason``,
        ``message``, ``hit`` (or ``None``), ``candidates``."""
        return {
            "question": self.question,
            "confident": self.confident,
            "decision": self.decision,
            "reason": self.reason,
            "message": self.message,
            "hit": self.hit.to_dict() if self.hit is not None else None,
            "candidates": [hit.to_dict() for hit in self.candidates],
        }


def decide(
    question: str,
    hits: Sequence[Hit],
    threshold: float,
    fallback: str | None,
    contacts: ContactDirectory | None,
) -> Answer:
    """The :class:`Answer` for ranked ``hits``: the top hit when its score reaches
    ``threshold`` (``"answer"``), else ``fallback`` (or :func:`fallback_message`:
    ``"handoff"``)."""
    if hits and hits[0].score >= threshold:
        reason = f"score {hits[0].score:.3f} >= threshold {threshold:.3f}"
        return Answer(question, hits[0], True, hits[0].answer, tuple(hits), "answer", reason)
    message = fallback or fallback_message(question, contacts)
    reason = (
        f"score {hits[0].score:.3f} < threshold {threshold:.3f}" if hits else "no entry matched"
    )
    return Answer(question, None, False, message, tuple(hits), "handoff", reason)


def refusal(question: str, message: str, reason: str) -> Answer:
    """The :class:`Answer` that refuses ``question``: ``message``, no entry, no candidates."""
    return Answer(question, None, False, message, (), "refuse", reason)


def fallback_message(question: str, contacts: ContactDirectory | None) -> str:
    """What to tell a user when no entry answers confidently: where to reach a human."""
    lead = "抱歉，没有找到足够确定的答案。建议联系人工客服："
    if contacts is not None:
        named = contacts.find(question)
        if named is not None:
            return lead + named.summary()
        listed = contacts.with_hotline()[:3]
        if listed:
            numbers = "、".join(f"{c.name} {c.hotline}" for c in listed)
            return (
                lead + "请在您所用钱包 App 的“客服中心/帮助中心”联系在线客服，或拨打官方热线"
                f"（例如 {numbers}，以官方公布为准）。联系前准备好账户信息和问题描述；"
                "官方客服不会索要密码或验证码。"
            )
    return (
        lead + "请在您所用钱包 App 的“客服中心/帮助中心”或官方网站“联系我们”页面查找官方客服"
        "渠道。官方客服不会索要密码或验证码。"
    )


def best_per_entry(
    scores: np.ndarray,
    rows: np.ndarray,
    row_entry: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """Collapse ranked row hits into at most ``k`` distinct entries.

    Args:
        scores, rows: one query's FAISS results, best first, shape ``(n,)``; row ``-1`` = none.
        row_entry: entry position of every row of the index.
        k: number of entries wanted.
        allowed: optional boolean mask over entry positions (category filter).

    Returns:
        ``(entry position, row, score)`` per entry, best first; each entry once, at the score
        of its best row.
    """
    picked: list[tuple[int, int, float]] = []
    seen: set[int] = set()
    for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
        if row < 0:
            continue
        entry = int(row_entry[row])
        if entry in seen or (allowed is not None and not allowed[entry]):
            continue
        seen.add(entry)
        picked.append((entry, row, float(score)))
        if len(picked) == k:
            break
    return picked


def to_hits(
    picked: Sequence[tuple[int, int, float]],
    entries: Sequence[FAQEntry],
    row_text: Sequence[str],
) -> list[Hit]:
    """Turn :func:`best_per_entry` output into :class:`Hit` objects."""
    hits = []
    for entry_position, row, score in picked:
        hits.append(Hit.of(entries[entry_position], score, row_text[row]))
    return hits
