"""Ranked answers: from FAISS row hits to one :class:`Hit` per FAQ entry.

Every question and alt question of an entry is a vector row. A search fetches more rows than
answers wanted and keeps each entry's best-scoring row, so an entry never appears twice.

The answer decision (:func:`decide`) takes a threshold, a cosine score (:func:`in_score_range`),
a clarify margin (:func:`margin_problem`) and optional messages (:func:`fallback_problem`); the
retriever and a saved index's manifest apply these rules. Its rule on the ranked scores alone is
:func:`close_positions`: answer, clarify (two or more entries close to each other above the
threshold) or hand off.
"""

from __future__ import annotations

import math
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

MAX_CLARIFY_MARGIN = 2.0
"""The widest clarify margin: two cosine scores differ by at most 2."""

MAX_OPTIONS = 3
"""The most entries a clarify decision offers (the best first)."""

DEFAULT_CLARIFY_MESSAGE = "您的问题可能是以下几个之一，请选择最接近的一个："
"""What :meth:`FAQRetriever.answer` says before the options when it asks the user to choose
(``clarify_message=None``)."""


def in_score_range(value: float) -> bool:
    """Whether ``value`` can be a cosine score (a threshold): within [-1, 1], give or take
    :data:`SCORE_ROUNDING`."""
    return -1.0 - SCORE_ROUNDING <= value <= 1.0 + SCORE_ROUNDING


def fallback_problem(value: object, name: str = "fallback") -> str | None:
    """Why ``value`` cannot be a message such as the fallback (``None``: it can): it must be
    ``None`` or a non-empty string of at most :data:`MAX_FALLBACK_CHARS` characters. The
    problem starts with ``name``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"{name} must be a non-empty string or None, got {value!r:.80}"
    if len(value) > MAX_FALLBACK_CHARS:
        return f"{name} has {len(value):,} characters, more than {MAX_FALLBACK_CHARS:,}"
    return None


def margin_problem(value: object) -> str | None:
    """Why ``value`` cannot be a clarify margin (``None``: it can): it must be a finite number
    (not a bool) from 0 (never clarify) to :data:`MAX_CLARIFY_MARGIN`. The problem starts with
    ``clarify_margin``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
    ):
        return f"clarify_margin must be a finite number (a score difference), got {value!r:.40}"
    if not 0.0 <= float(value) <= MAX_CLARIFY_MARGIN:
        return (
            f"clarify_margin must be from 0 (never clarify) to {MAX_CLARIFY_MARGIN:g}, got "
            f"{value!r:.40}"
        )
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


Decision = Literal["answer", "clarify", "handoff", "refuse"]
"""What :meth:`FAQRetriever.answer` decided: ``"answer"`` (one confident entry), ``"clarify"``
(two or more entries close to each other above the threshold: the app asks the user to choose
among the ``options``), ``"handoff"`` (no confident entry: a pointer to human support) or
``"refuse"`` (a harmful request: the safety message, no entry)."""

DECISIONS: tuple[Decision, ...] = ("answer", "clarify", "handoff", "refuse")


@dataclass(frozen=True)
class Answer:
    """Outcome of :meth:`FAQRetriever.answer`: an answer, a question back to the user, a
    pointer to human support, or a refusal.

    Attributes:
        question: the question asked.
        hit: the best entry when it answers, else ``None`` (always ``None`` for a clarify, a
            handoff and a refusal).
        confident: whether one entry answers; ``True`` exactly when ``decision == "answer"``
            (``False`` for a clarify: the app must ask the user to choose, not answer).
        message: the text to show: the entry's answer; for a clarify, the clarify message
            followed by the options' questions, numbered (:func:`clarify_text`); the
            human-support fallback; or the safety message.
        candidates: the top hits (for logging or "did you mean"); empty for a refusal.
        decision: ``"answer"``, ``"clarify"``, ``"handoff"`` or ``"refuse"``
            (:data:`Decision`); left at its default, ``"answer"`` if confident else
            ``"handoff"``.
        reason: why, in a few words, with the scores and, past the top one, the margin (e.g.
            ``"score 0.912 >= threshold 0.860"``, ``"harmful request (fraud)"``).
        options: for a clarify, the close entries to choose from (2 to :data:`MAX_OPTIONS`
            distinct entries, best first); empty for every other decision.
    """

    question: str
    hit: Hit | None
    confident: bool
    message: str
    candidates: tuple[Hit, ...]
    decision: Decision = "answer"
    reason: str = ""
    options: tuple[Hit, ...] = ()

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
                "and has a hit; a clarify, a handoff or a refusal has neither"
            )
        if decision == "refuse" and self.candidates:
            raise WalletFAQError("a refusal carries no candidates")
        ids = [option.id for option in self.options]
        if decision == "clarify" and not 2 <= len(set(ids)) == len(ids) <= MAX_OPTIONS:
            raise WalletFAQError(f"a clarify offers 2 to {MAX_OPTIONS} distinct entries, got {ids}")
        if decision != "clarify" and ids:
            raise WalletFAQError(f"only a clarify has options; decision {decision!r} has {ids}")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: ``question``, ``confident``, ``decision``, ``reason``,
        ``message``, ``hit`` (or ``None``), ``options``, ``candidates``."""
        return {
            "question": self.question,
            "confident": self.confident,
            "decision": self.decision,
            "reason": self.reason,
            "message": self.message,
            "hit": self.hit.to_dict() if self.hit is not None else None,
            "options": [hit.to_dict() for hit in self.options],
            "candidates": [hit.to_dict() for hit in self.candidates],
        }


def close_positions(scores: Sequence[float], threshold: float, clarify_margin: float) -> list[int]:
    """The answer rule on ranked scores (best first, in the retriever's order, one per
    distinct entry): the positions an answer chooses among.

    - ``[]``: no score, or the top one is below ``threshold``: hand off.
    - ``[0]``: the top entry answers.
    - ``[0, i, ...]`` (2 to :data:`MAX_OPTIONS` positions, in order): clarify. Every later
      score at least ``threshold`` and less than ``clarify_margin`` below the top one is close
      to it; with sorted scores that is: clarify when ``top2 >= threshold`` and
      ``top1 - top2 < clarify_margin``. ``clarify_margin`` 0 never clarifies.
    """
    if not len(scores) or scores[0] < threshold:
        return []
    if clarify_margin <= 0:
        return [0]
    top = scores[0]
    close = [
        i
        for i in range(1, len(scores))
        if threshold <= scores[i] and top - scores[i] < clarify_margin
    ]
    return [0, *close][:MAX_OPTIONS]


def decide(
    question: str,
    hits: Sequence[Hit],
    threshold: float,
    fallback: str | None,
    contacts: ContactDirectory | None,
    clarify_margin: float = 0.0,
    clarify_message: str | None = None,
) -> Answer:
    """The :class:`Answer` for ranked ``hits`` (each entry once: a repeated id is dropped),
    by :func:`close_positions`: the top hit (``"answer"``), the close hits as ``options``
    with ``clarify_message`` (``"clarify"``), or ``fallback`` (else
    :func:`fallback_message`: ``"handoff"``)."""
    distinct: dict[str, Hit] = {}
    for hit in hits:
        distinct.setdefault(hit.id, hit)
    hits = tuple(distinct.values())
    close = close_positions([hit.score for hit in hits], threshold, clarify_margin)
    if len(close) > 1:
        options = tuple(hits[i] for i in close)
        scores = ", ".join(f"{hit.score:.4f}" for hit in options)
        reason = (
            f"scores {scores} >= threshold {threshold:.4f}, within clarify margin "
            f"{clarify_margin:.4f} of the top one (top1 - top2 = "
            f"{options[0].score - options[1].score:.4f})"
        )
        message = clarify_text(clarify_message, options)
        return Answer(question, None, False, message, hits, "clarify", reason, options)
    if close:
        reason = f"score {hits[0].score:.3f} >= threshold {threshold:.3f}"
        if clarify_margin > 0 and len(hits) > 1 and hits[1].score >= threshold:
            reason += (
                f"; margin {hits[0].score - hits[1].score:.4f} over the next entry "
                f"({hits[1].score:.4f}) >= clarify margin {clarify_margin:.4f}"
            )
        return Answer(question, hits[0], True, hits[0].answer, hits, "answer", reason)
    message = fallback or fallback_message(question, contacts)
    reason = (
        f"score {hits[0].score:.3f} < threshold {threshold:.3f}" if hits else "no entry matched"
    )
    return Answer(question, None, False, message, hits, "handoff", reason)


def clarify_text(message: str | None, options: Sequence[Hit]) -> str:
    """What a clarify shows: ``message`` (``None``: :data:`DEFAULT_CLARIFY_MESSAGE`), then
    each option's question on a line of its own, numbered from 1."""
    lines = [message or DEFAULT_CLARIFY_MESSAGE]
    lines += [f"{number}. {hit.question}" for number, hit in enumerate(options, start=1)]
    return "\n".join(lines)


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
