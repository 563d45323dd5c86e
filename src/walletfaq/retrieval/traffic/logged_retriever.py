"""The query log's hook for apps: :class:`LoggedRetriever` asks and answers like the retriever
it wraps, and logs every question to a :class:`~walletfaq.retrieval.traffic.QueryLog`.

>>> log = QueryLog(open_store("faq.db"))                           # doctest: +SKIP
>>> r = LoggedRetriever(FAQRetriever.from_corpus(), log)
>>> a = r.answer("充值了钱没到账咋办")
>>> a.message, a.request_id                  # an Answer, plus the id it was logged under
>>> r.feedback(a.request_id, helpful=True)

Results are the wrapped retriever's own, with a ``request_id`` (a fresh ``uuid4().hex``) for
feedback: :meth:`LoggedRetriever.answer` returns a :class:`LoggedAnswer` (an
:class:`~walletfaq.index.search.Answer`, so code written for ``answer()`` keeps working),
:meth:`LoggedRetriever.ask` a :class:`LoggedHits` (the list of hits ``ask()`` returns).

What one question logs (:class:`~walletfaq.store.QueryRecord`): when it was asked, the cleaned
question (the store masks personal details), the hits with their scores (the ``k`` asked for),
the decision, the store revision when a ``revision`` callable is given, the retriever call's
latency and the ``source``. ``answer()`` logs the answer's own decision; ``ask()`` decides
nothing, so it logs ``"answer"`` when the top score reaches the retriever's ``threshold`` and
``"handoff"`` otherwise (no safety gate, no clarify rule: that is ``answer()``'s work). A question
the retriever refuses as unusable (empty, not text, not valid Unicode) is logged as
``"refuse"`` with an empty question before its :class:`~walletfaq.errors.QueryError` goes on up;
a bad ``k``, category or threshold is the caller's error and is not logged.

Logging never fails or slows a question beyond queueing the record (see
:class:`~walletfaq.retrieval.traffic.QueryLog`). The wrapper holds no state besides its
settings: any object with ``ask``, ``answer`` and ``threshold`` (``FAQRetriever``,
``HybridRetriever``) can be wrapped, and one log can serve many wrappers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Generic, Protocol, TypeVar

from walletfaq.errors import QueryError
from walletfaq.index.search import Answer, Hit
from walletfaq.retrieval.questions import clean_question
from walletfaq.retrieval.traffic.query_log import WARNING_INTERVAL_S, QueryLog, Throttle
from walletfaq.store.traffic_records import (
    MAX_LOGGED_HITS,
    Decision,
    Feedback,
    QueryHit,
    QueryRecord,
    check_source,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class AnswersQuestions(Protocol):
    """What :class:`LoggedRetriever` wraps: ``FAQRetriever``, ``HybridRetriever`` or any
    object with their ``ask``, ``answer`` and ``threshold``."""

    @property
    def threshold(self) -> float:
        """The least top score that answers."""
        ...

    def ask(self, question: str, k: int = 5, category: str | None = None) -> list[Hit]:
        """The ``k`` best entries, best first."""
        ...

    def answer(self, question: str, threshold: float | None = None, k: int = 3) -> Answer:
        """The decision on ``question``."""
        ...


class LoggedHits(list[Hit]):
    """What :meth:`LoggedRetriever.ask` returns: the list of hits ``ask()`` returns, with the
    ``request_id`` the question was logged under (for :meth:`LoggedRetriever.feedback`)."""

    request_id: str

    def __init__(self, hits: Iterable[Hit] = (), request_id: str = "") -> None:
        super().__init__(hits)
        self.request_id = request_id


@dataclass(frozen=True)
class LoggedAnswer(Answer):
    """What :meth:`LoggedRetriever.answer` returns: the wrapped retriever's
    :class:`~walletfaq.index.search.Answer`, field for field, and ``request_id``, the id the
    question was logged under (for :meth:`LoggedRetriever.feedback`)."""

    request_id: str = ""

    @classmethod
    def of(cls, answer: Answer, request_id: str) -> LoggedAnswer:
        """``answer`` with ``request_id``."""
        values = {
            f.name: getattr(answer, f.name)
            for f in fields(answer)
            if f.init and f.name != "request_id"  # an answer logged already gets the new id
        }
        return cls(**values, request_id=request_id)

    def to_dict(self) -> dict[str, object]:
        """:meth:`Answer.to_dict <walletfaq.index.search.Answer.to_dict>` with
        ``request_id``."""
        return {"request_id": self.request_id, **super().to_dict()}


class LoggedRetriever:
    """A retriever whose every question is logged, with a request id for feedback.

    Args:
        retriever: what answers (:class:`AnswersQuestions`).
        log: where the records go (disabled: nothing is logged; ids are still returned).
        source: where the questions come from, as logged (``python``, ``http``; the store's
            rule: 1 to 32 characters ``a-z 0-9 - _``, starting with a letter).
        revision: returns the store revision ``retriever`` serves, logged with each question
            (``None``: not logged); one that raises logs a warning and no revision.

    Raises:
        StoreError: ``source`` breaks its rule.
    """

    def __init__(
        self,
        retriever: AnswersQuestions,
        log: QueryLog,
        *,
        source: str = "python",
        revision: Callable[[], int | None] | None = None,
    ) -> None:
        self._retriever = retriever
        self._log = log
        self._source = check_source(source)
        self._revision = revision
        self._revision_warning = Throttle(WARNING_INTERVAL_S)

    def __repr__(self) -> str:
        return f"LoggedRetriever({self._retriever!r}, log={self._log!r}, source={self._source!r})"

    @property
    def retriever(self) -> AnswersQuestions:
        """The wrapped retriever (its other methods and attributes are there)."""
        return self._retriever

    @property
    def log(self) -> QueryLog:
        """Where the questions are logged."""
        return self._log

    @property
    def source(self) -> str:
        """The source logged with each question."""
        return self._source

    @property
    def threshold(self) -> float:
        """The wrapped retriever's threshold (``ask()`` logs ``"answer"`` at or above it)."""
        return self._retriever.threshold

    def ask(self, question: str, k: int = 5, category: str | None = None) -> LoggedHits:
        """The wrapped retriever's ``ask(question, k, category)``, logged.

        Raises:
            QueryError: as the wrapped ``ask`` (an unusable question is logged first).
        """
        call = self._call(question, lambda: self._retriever.ask(question, k=k, category=category))
        hits = call.result
        decision: Decision = (
            "answer" if hits and hits[0].score >= self._retriever.threshold else "handoff"
        )
        self._record(call, question, decision, hits)
        return LoggedHits(hits, call.request_id)

    def answer(self, question: str, threshold: float | None = None, k: int = 3) -> LoggedAnswer:
        """The wrapped retriever's ``answer(question, threshold, k)``, logged with its
        decision and candidates.

        Raises:
            QueryError: as the wrapped ``answer`` (an unusable question is logged first).
        """
        call = self._call(
            question, lambda: self._retriever.answer(question, threshold=threshold, k=k)
        )
        answer = call.result
        self._record(call, question, answer.decision, answer.candidates)
        return LoggedAnswer.of(answer, call.request_id)

    def feedback(
        self,
        request_id: str,
        helpful: bool,
        entry_id: str | None = None,
        comment: str | None = None,
    ) -> Feedback:
        """Record a user's feedback on the answer logged as ``request_id``
        (:meth:`QueryLog.feedback`: idempotent per request, the comment masked).

        Raises:
            UnknownRequestError: no such query in the log.
            StoreError: a field breaks its rule, the store failed, or the log is disabled.
        """
        return self._log.feedback(request_id, helpful, entry_id, comment)

    def _call(self, question: object, run: Callable[[], T]) -> _Call[T]:
        """``run()`` timed, with a new request id; an unusable question is logged as
        refused before its QueryError goes on up."""
        request_id, asked, started = uuid.uuid4().hex, _now(), time.perf_counter()
        try:
            result = run()
        except QueryError:
            self._log_unusable(question, request_id, asked, started)
            raise
        return _Call(result, request_id, asked, (time.perf_counter() - started) * 1000.0)

    def _record(
        self, call: _Call[object], question: object, decision: Decision, hits: Sequence[Hit]
    ) -> None:
        if not self._log.enabled:
            return
        self._log.record(
            QueryRecord(
                request_id=call.request_id,
                question=loggable_question(question),
                decision=decision,
                hits=logged_hits(hits),
                latency_ms=call.latency_ms,
                revision=self._current_revision(),
                source=self._source,
                created_at=call.asked,
            )
        )

    def _log_unusable(
        self, question: object, request_id: str, asked: datetime, started: float
    ) -> None:
        """Log ``question`` as refused if the retriever's gate refuses it (not for a bad
        ``k``, category or threshold: the question was fine)."""
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            clean_question(question)
        except QueryError:
            self._record(_Call(None, request_id, asked, latency_ms), "", "refuse", ())

    def _current_revision(self) -> int | None:
        if self._revision is None:
            return None
        try:
            return self._revision()
        except Exception as exc:  # noqa: BLE001 (the question must not fail for the log)
            if self._revision_warning.ready():
                logger.warning("query log: the revision callable failed (%s); logged none", exc)
            return None


@dataclass(frozen=True)
class _Call(Generic[T_co]):
    """A retriever call's result, the request id given to it, when and how long it ran."""

    result: T_co
    request_id: str
    asked: datetime
    latency_ms: float


def logged_hits(hits: Sequence[Hit]) -> tuple[QueryHit, ...]:
    """The hits to log, in the retriever's order: the longest leading run whose scores do not
    increase (the store keeps hits best first by score; a fused order such as
    ``HybridRetriever``'s may break it further down, never at the first hit), at most
    :data:`~walletfaq.store.traffic_records.MAX_LOGGED_HITS`."""
    kept: list[QueryHit] = []
    for hit in hits[:MAX_LOGGED_HITS]:
        score = float(hit.score)
        if kept and score > kept[-1].score:
            break
        kept.append(QueryHit(hit.id, score))
    return tuple(kept)


def loggable_question(question: object) -> str:
    """The question as the retriever searched it (cleaned, cut to its length limit), or ``""``
    for one its question gate refuses (logged as a refusal with an empty question)."""
    try:
        return clean_question(question)
    except QueryError:
        return ""  # the wrapped retriever took what the gate refuses: the store will say so


def _now() -> datetime:
    return datetime.now(timezone.utc)
