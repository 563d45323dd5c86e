"""The service's query log: every question it answers is logged to a store of record, off the
request path, under a request id that the client gives feedback on.

Where the log goes (:meth:`ServiceLog.create`): to ``ServerSettings.log_store`` when it is set
(a store opened just for the log, created if empty); else to the store of record the service
follows (``serve --store``); else nowhere (``serve --index`` or a corpus without
``--log-store``), and never with ``query_log=False`` (``--no-log``). Each app (each worker
process) has a :class:`~walletfaq.retrieval.traffic.QueryLog` of its own: records are queued and
written in batches by a background thread, so a request never waits for the database and never
fails because of it (a full queue drops records, a failing store loses batches after retries:
both counted, in ``/metrics`` and ``/readyz``).

What one question logs (:class:`~walletfaq.store.QueryRecord`, source ``http``): when it
arrived, the cleaned question (the store masks mobile, bank card and ID-card numbers and e-mail
addresses before it writes), the hits with their scores (``/v1/ask``: the ``k`` asked for, the
decision ``answer`` when the top score reaches the threshold, else ``handoff``; ``/v1/answer``:
its decision and candidates), the store revision served (``serve --store``), and the time the
retriever took (a question of ``/v1/ask_batch``: the batch's time divided by its questions). A
question the retriever refuses as unusable (answered 400) is logged as ``refuse`` with an empty
question, as :class:`~walletfaq.retrieval.traffic.LoggedRetriever` logs it.

Request ids (:func:`new_request_id`) are 32 lowercase hex digits: the time of issue in
milliseconds (12 digits), then 80 random bits. A client's own ``X-Request-Id`` is not used.

Feedback (:meth:`ServiceLog.feedback`) may come right after the answer, before its record is
written. On the process that answered, the query log writes the record first
(:meth:`QueryLog.feedback <walletfaq.retrieval.traffic.QueryLog.feedback>`); on another worker
process or replica, the feedback waits, reading the store, for as long as a record issued at
that time may still be queued elsewhere (the request timeout plus :data:`FEEDBACK_GRACE_S` after
its issue), and only then answers 404. An id not issued that recently is answered at once.

Retention (:meth:`ServiceLog.keep_purging`): with ``log_retention_days`` above 0, the queries
older than that (with their feedback) are deleted when the app starts and then every
:data:`PURGE_INTERVAL_S` seconds, in a thread (requests never wait for it); every replica
purges (the same delete: idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from walletfaq.errors import QueryError, StoreError
from walletfaq.retrieval.questions import clean_question
from walletfaq.service.errors import NotConfiguredError, NotFoundError, StoreDownError
from walletfaq.service.settings import ServerSettings

if TYPE_CHECKING:
    from walletfaq.index.search import Answer, Hit
    from walletfaq.retrieval.retriever import FAQRetriever
    from walletfaq.retrieval.traffic import QueryLog
    from walletfaq.store import Feedback, Store

logger = logging.getLogger(__name__)

SOURCE = "http"
"""The ``source`` of the questions the service logs."""
REQUEST_ID_HEADER = "X-Request-Id"
"""The response header that carries the request id (also the body's ``request_id``)."""
FEEDBACK_GRACE_S = 2.0
"""How long past the request timeout feedback waits for a fresh request id to be logged."""
CLOSE_TIMEOUT_S = 5.0
"""The longest an app's shutdown waits for its queued records to be written."""
PURGE_INTERVAL_S = 86_400.0
"""Seconds between two retention purges (the first runs when the app starts)."""
WARNING_INTERVAL_S = 60.0
"""The least time between two warnings about a record that could not be queued."""

_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_TIME_DIGITS = 12


def new_request_id(now: float | None = None) -> str:
    """A new request id: the time ``now`` (seconds since the epoch; default the current time)
    in milliseconds as 12 hex digits, then 20 random hex digits."""
    millis = int((time.time() if now is None else now) * 1000) % 16**_TIME_DIGITS
    return f"{millis:0{_TIME_DIGITS}x}{secrets.token_hex(10)}"


def issued_at(request_id: str) -> float | None:
    """When :func:`new_request_id` made ``request_id`` (seconds since the epoch); ``None`` for
    an id of another form."""
    if not _REQUEST_ID.fullmatch(request_id):
        return None
    return int(request_id[:_TIME_DIGITS], 16) / 1000.0


@dataclass(frozen=True)
class LogStatus:
    """Where the query log of one app stands (``/readyz``'s ``log``, ``/metrics``).

    Attributes:
        enabled: whether questions are logged.
        store: the store logged to (password hidden); ``None`` when off.
        reason: why logging is off; ``None`` when on.
        written, dropped, failed, rejected, pending: the records written, dropped (queue full
            or closing), lost after the store's retries, refused by the store, still queued.
        retention_days: how long logged questions are kept (``None``: kept).
        purged: queries deleted by retention since the app started.
        last_purge: when the last purge finished (``None``: none yet).
        purge_error: why the last purge failed (``None``: it did not).
    """

    enabled: bool
    store: str | None
    reason: str | None
    written: int
    dropped: int
    failed: int
    rejected: int
    pending: int
    retention_days: float | None
    purged: int
    last_purge: datetime | None
    purge_error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the time in ISO 8601, UTC)."""
        return {
            "enabled": self.enabled,
            "store": self.store,
            "reason": self.reason,
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "rejected": self.rejected,
            "pending": self.pending,
            "retention_days": self.retention_days,
            "purged": self.purged,
            "last_purge": None if self.last_purge is None else self.last_purge.isoformat(),
            "purge_error": self.purge_error,
        }


class ServiceLog:
    """The query log of one app (module doc); made by :meth:`create`.

    Args:
        log: where records go; ``None`` = logging off.
        reason: why logging is off (with ``log=None``).
        owned: a store opened for the log, closed by :meth:`close`.
        retention_days: how long logged questions are kept (``0``: kept).
        feedback_wait_s: how long after its issue a request id's feedback may wait for it.
        purge_interval_s: seconds between two purges.
    """

    def __init__(
        self,
        log: QueryLog | None,
        *,
        reason: str | None = None,
        owned: Store | None = None,
        retention_days: float = 0.0,
        feedback_wait_s: float = FEEDBACK_GRACE_S,
        purge_interval_s: float = PURGE_INTERVAL_S,
    ) -> None:
        self._log = log
        self._reason = reason
        self._owned = owned
        self._retention_days = retention_days
        self._feedback_wait_s = feedback_wait_s
        self._purge_interval_s = purge_interval_s
        self._purged = 0
        self._last_purge: datetime | None = None
        self._purge_error: str | None = None
        self._warned_at = -WARNING_INTERVAL_S

    @classmethod
    def create(cls, retriever: FAQRetriever, settings: ServerSettings) -> ServiceLog:
        """The log of an app serving ``retriever`` with ``settings`` (module doc).

        Raises:
            StoreError: ``settings.log_store`` cannot be opened or created.
        """
        if not settings.query_log:
            return cls(None, reason="logging is off (--no-log)")
        owned = None
        if settings.log_store is not None:
            from walletfaq.store import Store

            store = owned = Store.open(settings.log_store, create=True)
        elif retriever.follower is not None:
            store = retriever.follower.store
        else:
            return cls(
                None,
                reason="no log store: a service without a store of record logs only with "
                "--log-store URL (ServerSettings.log_store)",
            )
        from walletfaq.retrieval.traffic import QueryLog

        return cls(
            QueryLog(store),
            owned=owned,
            retention_days=settings.log_retention_days,
            feedback_wait_s=settings.timeout_s + FEEDBACK_GRACE_S,
        )

    def __repr__(self) -> str:
        return f"ServiceLog({self._log!r})" if self._log is not None else "ServiceLog(off)"

    @property
    def enabled(self) -> bool:
        """Whether questions are logged."""
        return self._log is not None

    # --- recording (called in the pool's threads; never raises) ---------------------------

    def record_hits(
        self,
        request_ids: Sequence[str],
        questions: Sequence[str],
        results: Sequence[Sequence[Hit]],
        latency_ms: float,
        threshold: float,
        revision: int | None,
    ) -> None:
        """Log the questions of ``/v1/ask`` (or a batch): ``answer`` when the top score reaches
        ``threshold``, else ``handoff``; ``latency_ms`` is shared among them."""
        share = latency_ms / max(1, len(questions))
        for request_id, question, hits in zip(request_ids, questions, results, strict=True):
            decision = "answer" if hits and hits[0].score >= threshold else "handoff"
            self._record(request_id, question, decision, hits, share, revision)

    def record_answer(
        self,
        request_id: str,
        question: str,
        answer: Answer,
        latency_ms: float,
        revision: int | None,
    ) -> None:
        """Log a question of ``/v1/answer`` with its decision and candidates."""
        self._record(request_id, question, answer.decision, answer.candidates, latency_ms, revision)

    def record_unusable(
        self,
        request_ids: Sequence[str],
        questions: Sequence[str],
        latency_ms: float,
        revision: int | None,
    ) -> None:
        """Log as ``refuse`` (with an empty question) each of ``questions`` that the
        retriever's question gate refuses."""
        for request_id, question in zip(request_ids, questions, strict=True):
            try:
                clean_question(question)
            except QueryError:
                self._record(request_id, "", "refuse", (), latency_ms, revision)

    def _record(
        self,
        request_id: str,
        question: str,
        decision: str,
        hits: Sequence[Hit],
        latency_ms: float,
        revision: int | None,
    ) -> None:
        if self._log is None:
            return
        try:
            from walletfaq.retrieval.traffic import loggable_question, logged_hits
            from walletfaq.store import QueryRecord

            issued = issued_at(request_id)
            self._log.record(
                QueryRecord(
                    request_id=request_id,
                    question=loggable_question(question),
                    decision=decision,  # type: ignore[arg-type]  # one of DECISIONS
                    hits=logged_hits(hits),
                    latency_ms=latency_ms,
                    revision=revision,
                    source=SOURCE,
                    created_at=None
                    if issued is None
                    else datetime.fromtimestamp(issued, timezone.utc),
                )
            )
        except Exception as exc:  # noqa: BLE001 (a question never fails for its log)
            now = time.monotonic()
            if now - self._warned_at >= WARNING_INTERVAL_S:
                self._warned_at = now
                logger.warning("query log: a record could not be queued (%s)", exc)

    # --- feedback -------------------------------------------------------------------------

    async def feedback(
        self,
        request_id: str,
        helpful: bool,
        entry_id: str | None,
        comment: str | None,
        retry_after_s: int,
    ) -> Feedback:
        """Record feedback on the answer logged as ``request_id`` (idempotent per request:
        :meth:`Store.add_feedback <walletfaq.store.Store.add_feedback>`), waiting for a fresh
        request id to be logged (module doc).

        Raises:
            NotConfiguredError: logging is off (409).
            NotFoundError: no logged answer has this request id (404).
            StoreDownError: the store failed (503, with ``Retry-After``).
        """
        log = self.require()
        from walletfaq.store import UnknownRequestError

        until = self._wait_until(request_id)
        pause = 0.02
        while True:
            try:
                return await asyncio.to_thread(log.feedback, request_id, helpful, entry_id, comment)
            except UnknownRequestError:
                left = until - time.time()
                if left <= 0:
                    raise NotFoundError(
                        f"no logged answer has request id {request_id!r}; send the request_id "
                        "of an answer of this service (old ones are deleted after the retention "
                        "period)"
                    ) from None
            except StoreError as exc:
                raise StoreDownError.retry_after(
                    f"the feedback was not recorded: {exc}", retry_after_s
                ) from None
            await asyncio.sleep(min(pause, left))
            pause = min(2 * pause, 0.25)

    def require(self) -> QueryLog:
        """The query log.

        Raises:
            NotConfiguredError: logging is off (409), saying why.
        """
        if self._log is None:
            raise NotConfiguredError(
                f"feedback needs the query log, and {self._reason}: no answer of this service "
                "was logged to give feedback on"
            )
        return self._log

    def _wait_until(self, request_id: str) -> float:
        """Until when (seconds since the epoch) feedback on ``request_id`` waits for it to be
        logged: its issue plus the wait, capped at the wait from now; now for an id not issued
        recently (or issued later than :data:`FEEDBACK_GRACE_S` from now: clocks of replicas
        differ by less)."""
        now = time.time()
        issued = issued_at(request_id)
        if issued is None or issued > now + FEEDBACK_GRACE_S:
            return now
        return min(issued + self._feedback_wait_s, now + self._feedback_wait_s)

    # --- retention and shutdown -----------------------------------------------------------

    async def keep_purging(self) -> None:
        """Delete the queries older than the retention period now and then every purge
        interval, each time in a thread; runs until cancelled (returns at once when logging
        is off or the log is kept). A failed purge is logged and tried again next time."""
        if self._log is None or self._retention_days <= 0:
            return
        from walletfaq.retrieval.traffic import purge_older_than

        store, days = self._log.store, self._retention_days
        while True:
            try:
                deleted = await asyncio.to_thread(purge_older_than, store, days)
            except Exception as exc:  # noqa: BLE001 (retention must outlive any failure)
                self._purge_error = str(exc)
                logger.warning("query log retention: the purge of %s failed (%s)", store.url, exc)
            else:
                self._purged += deleted
                self._last_purge = datetime.now(timezone.utc)
                self._purge_error = None
                if deleted:
                    logger.info("query log retention: %d queries older than %g days deleted",
                                deleted, days)  # fmt: skip
            await asyncio.sleep(self._purge_interval_s)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Write what is queued (waiting at most ``timeout`` seconds) and stop the writer, then
        close a store opened for the log. Returns whether everything was written in time (if
        not, the rest is left to the writer thread until the process exits)."""
        if self._log is None:
            return True
        done = self._log.close(timeout)
        if not done:
            logger.warning(
                "query log: %d records were still being written at shutdown", self._log.pending
            )
        elif self._owned is not None:
            self._owned.close()
        return done

    def status(self) -> LogStatus:
        """A snapshot of :class:`LogStatus`."""
        log = self._log
        return LogStatus(
            enabled=log is not None,
            store=None if log is None else log.store.url,
            reason=self._reason,
            written=0 if log is None else log.written,
            dropped=0 if log is None else log.dropped,
            failed=0 if log is None else log.failed,
            rejected=0 if log is None else log.rejected,
            pending=0 if log is None else log.pending,
            retention_days=None
            if log is None or self._retention_days <= 0
            else self._retention_days,
            purged=self._purged,
            last_purge=self._last_purge,
            purge_error=self._purge_error,
        )


__all__ = [
    "CLOSE_TIMEOUT_S",
    "FEEDBACK_GRACE_S",
    "PURGE_INTERVAL_S",
    "REQUEST_ID_HEADER",
    "SOURCE",
    "LogStatus",
    "ServiceLog",
    "issued_at",
    "new_request_id",
]
