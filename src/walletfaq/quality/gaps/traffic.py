"""Logged questions as gap mining reads them, and which of them are misses.

:class:`TrafficQuestion` is the one input type of gap mining: what the query log (the store of
record, the service) keeps about one asked question, reduced to what mining needs, so that
mining does not depend on how or where the log is stored. :func:`read_traffic` validates an
iterable of them (or of mappings with the same keys) and :func:`miss_reason` says whether one
is a miss, and why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal, get_args

from walletfaq.data.corpus import TEXT_LIMITS, text_problem
from walletfaq.data.ids import id_problem
from walletfaq.errors import GapError

TrafficDecision = Literal["answer", "clarify", "handoff", "refuse"]
"""What ``answer()`` decided for a logged question."""

DECISIONS: tuple[str, ...] = get_args(TrafficDecision)

MissReason = Literal["not_helpful", "handoff", "clarify", "low_margin"]
"""Why a logged question is a miss (see :func:`miss_reason`), most telling first."""

MISS_REASONS: tuple[str, ...] = get_args(MissReason)

MAX_QUESTION_CHARS = min(TEXT_LIMITS["question"], TEXT_LIMITS["alt_questions"])
"""The longest logged question accepted: every member of a gap cluster must fit as the
question or an alt question of the entry a proposal writes."""


@dataclass(frozen=True)
class TrafficQuestion:
    """One logged question, as gap mining reads it.

    Attributes:
        question: the question as logged (already masked and cleaned by the log).
        decision: what ``answer()`` decided: ``"answer"``, ``"clarify"``, ``"handoff"`` or
            ``"refuse"``.
        top_entry: id of the best-scoring entry (``None`` when there was none, e.g. refused).
        top_score: its score (``None`` when there was no hit).
        margin: top score minus the second entry's score (``None`` when fewer than two hits
            were logged); never negative.
        helpful: the user's feedback on the answer (``None``: no feedback).
        request_id: the id the service returned with the answer, to link back to the log.
        asked_at: when it was asked (needed only to filter with ``since=`` and to break ties
            between equally large gaps).

    Raises:
        GapError: a field has the wrong type or value (the message names the field).
    """

    question: str
    decision: TrafficDecision
    top_entry: str | None = None
    top_score: float | None = None
    margin: float | None = None
    helpful: bool | None = None
    request_id: str | None = None
    asked_at: datetime | None = None

    def __post_init__(self) -> None:
        for name, problem in _problems(self):
            raise GapError(problem, field=name)

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> TrafficQuestion:
        """A logged question from a mapping with the attribute names as keys (``question``
        and ``decision`` required, the others optional).

        Raises:
            GapError: an unknown or missing key, or a field with a bad value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in record if key not in known)
        if unknown:
            raise GapError(
                f"unknown key(s) {unknown}; allowed: {sorted(known)} (check the spelling)",
                field=unknown[0],
            )
        for name in ("question", "decision"):
            if name not in record:
                raise GapError(
                    "missing; every logged question needs question and decision", field=name
                )
        return cls(**record)  # type: ignore[arg-type]


def _problems(item: TrafficQuestion) -> Iterable[tuple[str, str]]:
    """(field, why it is unusable) for each bad field of ``item``, in field order."""
    question = item.question
    if not isinstance(question, str):
        yield "question", f"expected a string, got {type(question).__name__}"
    else:
        problem = text_problem(question)
        if problem is not None:
            yield "question", problem
        elif len(question) > MAX_QUESTION_CHARS:
            yield (
                "question",
                f"{len(question):,} characters, over the limit of {MAX_QUESTION_CHARS:,} of a "
                "question; the log cuts questions to it",
            )
    if item.decision not in DECISIONS:
        yield "decision", f"expected one of {list(DECISIONS)}, got {item.decision!r}"
    if item.top_entry is not None:
        if not isinstance(item.top_entry, str):
            yield "top_entry", f"expected an entry id or None, got {type(item.top_entry).__name__}"
        else:
            problem = id_problem(item.top_entry)
            if problem:
                yield "top_entry", problem
    for name in ("top_score", "margin"):
        value = getattr(item, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield name, f"expected a number or None, got {type(value).__name__}"
        elif not math.isfinite(value):
            yield name, f"expected a finite number, got {value!r}"
        elif name == "margin" and value < 0:
            yield name, f"a margin (top score minus the second) is never negative, got {value!r}"
    if item.helpful is not None and not isinstance(item.helpful, bool):
        yield "helpful", f"expected True, False or None, got {type(item.helpful).__name__}"
    if item.request_id is not None and (
        not isinstance(item.request_id, str) or not item.request_id
    ):
        yield "request_id", f"expected a non-empty string or None, got {item.request_id!r}"
    if item.asked_at is not None and not isinstance(item.asked_at, datetime):
        yield "asked_at", f"expected a datetime or None, got {type(item.asked_at).__name__}"


def read_traffic(
    items: Iterable[TrafficQuestion | Mapping[str, object]], since: datetime | None = None
) -> list[TrafficQuestion]:
    """The logged questions of ``items`` (objects or mappings), validated, in input order;
    with ``since``, only those asked at or after it.

    Raises:
        GapError: ``items`` is not an iterable of logged questions, an item is invalid, or
            ``since`` is given and an item has no ``asked_at``, or times are naive and
            timezone-aware mixed (among the items or with ``since``); the message gives the
            position and the field.
    """
    if since is not None and not isinstance(since, datetime):
        raise GapError(f"expected a datetime or None, got {type(since).__name__}", field="since")
    if isinstance(items, (str, bytes, Mapping, TrafficQuestion)) or not isinstance(items, Iterable):
        raise GapError(
            f"expected an iterable of TrafficQuestion (or mappings), got {type(items).__name__}",
            field="questions",
        )
    kept: list[TrafficQuestion] = []
    aware: bool | None = None  # whether the times seen so far carry a timezone
    for position, item in enumerate(items):
        question = _read_one(item, position)
        if question.asked_at is not None:
            has_zone = question.asked_at.utcoffset() is not None
            if aware is None:
                aware = has_zone
            elif has_zone != aware:
                raise GapError(
                    f"{'has' if has_zone else 'has no'} timezone, unlike the times before it; "
                    "log every time with a timezone or every time without",
                    position=position,
                    field="asked_at",
                )
        if since is None:
            kept.append(question)
            continue
        if question.asked_at is None:
            raise GapError(
                "missing, so since= cannot be applied; log the time of every question or "
                "leave since out",
                position=position,
                field="asked_at",
            )
        try:
            recent = question.asked_at >= since
        except TypeError as error:
            raise GapError(
                f"cannot be compared with since={since.isoformat()} ({error}); give both with "
                "a timezone or both without",
                position=position,
                field="asked_at",
            ) from None
        if recent:
            kept.append(question)
    return kept


def _read_one(item: object, position: int) -> TrafficQuestion:
    if isinstance(item, TrafficQuestion):
        return item
    if not isinstance(item, Mapping):
        raise GapError(
            f"expected a TrafficQuestion or a mapping, got {type(item).__name__}",
            position=position,
        )
    try:
        return TrafficQuestion.from_dict(item)
    except GapError as error:
        raise GapError(error.detail, position=position, field=error.field) from None
    except TypeError as error:  # a non-string key
        raise GapError(f"invalid keys ({error})", position=position) from None


def miss_reason(question: TrafficQuestion, low_margin: float) -> MissReason | None:
    """Why ``question`` is a miss, or ``None`` if it is not one.

    In this order: ``"not_helpful"`` (the user said the answer did not help), ``"handoff"``
    (no entry was confident: the fallback was shown), ``"clarify"`` (two entries were too close
    to choose: the user was asked), ``"low_margin"`` (answered, but the second entry scored
    within ``low_margin`` of the first). A refused question is never a miss, whatever its
    feedback: a harmful request is not a gap in the FAQ. Positive feedback (``helpful=True``)
    clears ``"clarify"`` and ``"low_margin"`` (the user confirms the entry given) but not
    ``"handoff"`` (no entry was given: the feedback is about the fallback message).
    """
    if question.decision == "refuse":
        return None
    if question.helpful is False:
        return "not_helpful"
    if question.decision == "handoff":
        return "handoff"
    if question.helpful is True:
        return None
    if question.decision == "clarify":
        return "clarify"
    if question.margin is not None and question.margin < low_margin:
        return "low_margin"
    return None
