"""Logging queries off the request path: :class:`QueryLog` queues records and a background
thread writes them to the store of record in batches.

A logged question must not wait for the database: one ``Store.log_query`` is one commit (on
SQLite an fsync, ≈ 4 ms), more than the 5 % of an ``ask`` the log may cost. So
:meth:`QueryLog.record` only appends the record to a bounded in-memory queue and returns; a
writer thread takes up to ``batch_size`` records at a time — when that many are queued, or when
the oldest has waited ``flush_interval_s`` — and writes them with ``Store.log_queries`` (one
transaction, all or none: ≈ 0.12 ms a query on SQLite).

What can go wrong, and what happens then (never an error in the question's path):

- the queue is full (the store is slower than the traffic, or down): the record is dropped and
  counted (:attr:`QueryLog.dropped`), with a warning at most once a minute;
- the store fails a write: the batch is retried ``retries`` times with a doubling delay, then
  dropped and counted (:attr:`QueryLog.failed`); the next batches are tried afresh, so logging
  resumes by itself when the store is back;
- a record breaks one of the store's rules (a field, a request id logged before): that record
  alone is left out and counted (:attr:`QueryLog.rejected`); the rest of its batch is written.

A process that dies without :meth:`QueryLog.close` (``kill -9``, a crash, the interpreter
exiting: the writer is a daemon thread) loses the records still queued — at most one flush
interval's worth while the store keeps up — and the batch being written if its transaction had
not committed; never part of a batch: the store writes a batch in one transaction, all or none.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from walletfaq.errors import StoreError, WalletFAQError
from walletfaq.store.traffic import check_query_record
from walletfaq.store.traffic_records import Feedback, QueryRecord, UnknownRequestError

if TYPE_CHECKING:
    from walletfaq.store import Store

logger = logging.getLogger(__name__)

WARNING_INTERVAL_S = 60.0
"""The least time between two warnings of the same kind (queue full, batch lost)."""
FEEDBACK_WAIT_S = 5.0
"""How long :meth:`QueryLog.feedback` waits for its query, still queued, to be written."""


class QueryLog:
    """A store's query log, written in the background: :meth:`record` never waits.

    >>> with QueryLog(store) as log:                      # doctest: +SKIP
    ...     LoggedRetriever(retriever, log).answer("充值没到账")

    Args:
        store: the store of record the records go to (the log does not close it).
        enabled: ``False`` logs nothing (``--no-log``): :meth:`record` returns ``False`` and
            no thread is started.
        batch_size: the most records written in one transaction; a batch is written as soon as
            this many are queued.
        flush_interval_s: the longest a queued record waits for its batch to fill (seconds);
            also what a killed process loses at most while the store keeps up.
        max_queue: the most records waiting; more are dropped and counted.
        retries: how many times a failed batch is tried again before it is dropped.
        retry_delay_s: the delay before the first retry, doubled before each next one.

    Raises:
        WalletFAQError: a setting out of range (the message names it).
    """

    def __init__(
        self,
        store: Store,
        *,
        enabled: bool = True,
        batch_size: int = 100,
        flush_interval_s: float = 0.25,
        max_queue: int = 10_000,
        retries: int = 3,
        retry_delay_s: float = 0.1,
    ) -> None:
        self._store = store
        self._enabled = _checked_bool(enabled, "enabled")
        self._batch_size = _checked_count(batch_size, "batch_size", minimum=1)
        self._interval = _checked_seconds(flush_interval_s, "flush_interval_s")
        self._capacity = _checked_count(max_queue, "max_queue", minimum=1)
        self._retries = _checked_count(retries, "retries", minimum=0)
        self._retry_delay = _checked_seconds(retry_delay_s, "retry_delay_s")
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits on it
        self._done = threading.Condition(self._lock)  # flush() and close() wait on it
        self._queue: deque[tuple[float, QueryRecord]] = deque()
        self._pending_ids: set[str] = set()  # queued or being written
        self._thread: threading.Thread | None = None
        self._closing = False
        self._accepted = self._taken = self._handled = self._flush_target = 0
        self._written = self._dropped = self._failed = self._rejected = 0
        self._drop_warning = Throttle(WARNING_INTERVAL_S)
        self._failure_warning = Throttle(WARNING_INTERVAL_S)

    def __repr__(self) -> str:
        return (
            f"QueryLog(store={self._store!r}, enabled={self._enabled}, "
            f"batch_size={self._batch_size}, flush_interval_s={self._interval}, "
            f"max_queue={self._capacity}, retries={self._retries})"
        )

    def __enter__(self) -> QueryLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """The store of record written to."""
        return self._store

    @property
    def enabled(self) -> bool:
        """Whether records are logged at all."""
        return self._enabled

    @property
    def written(self) -> int:
        """Records written to the store."""
        return self._written

    @property
    def dropped(self) -> int:
        """Records dropped by :meth:`record`: the queue was full, or the log closed."""
        return self._dropped

    @property
    def failed(self) -> int:
        """Records lost because the store kept failing to write their batch."""
        return self._failed

    @property
    def rejected(self) -> int:
        """Records the store refused (a field broke its rule, or the request id was logged
        before)."""
        return self._rejected

    @property
    def pending(self) -> int:
        """Records queued or being written."""
        with self._lock:
            return self._accepted - self._handled

    def record(self, record: QueryRecord) -> bool:
        """Queue ``record`` for the store and return at once (never waits for the database).

        Returns:
            ``True`` if queued; ``False`` if the log is disabled, or the record was dropped
            (the queue full, or the log closed: counted in :attr:`dropped`).

        Raises:
            WalletFAQError: ``record`` is not a :class:`~walletfaq.store.QueryRecord`.
        """
        if not isinstance(record, QueryRecord):
            raise WalletFAQError(f"record takes a QueryRecord, got {type(record).__name__}")
        if not self._enabled:
            return False
        with self._lock:
            if self._closing or len(self._queue) >= self._capacity:
                self._dropped += 1
                warn = self._drop_warning.ready()
                dropped, closing = self._dropped, self._closing
            else:
                self._queue.append((time.monotonic(), record))
                self._pending_ids.add(record.request_id)
                self._accepted += 1
                if self._thread is None:
                    self._start()
                if len(self._queue) in (1, self._batch_size):
                    self._work.notify()
                return True
        if warn:
            reason = "the log is closed" if closing else f"the queue holds {self._capacity:,}"
            logger.warning(
                "query log of %s: a record was dropped (%s); %d dropped so far",
                self._store.url,
                reason,
                dropped,
            )
        return False

    def flush(self, timeout: float | None = None) -> bool:
        """Write what was recorded before this call now, and wait until it is handled
        (written, or dropped after the retries).

        Returns:
            Whether everything recorded before the call was handled within ``timeout`` seconds
            (``None``: no limit).
        """
        with self._lock:
            target = self._accepted
            self._flush_target = max(self._flush_target, target)
            self._work.notify()
            return self._done.wait_for(lambda: self._handled >= target, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write everything queued, then stop the writer; later records are dropped.

        Returns:
            Whether everything was handled within ``timeout`` seconds (``None``: no limit);
            ``False`` leaves the writer finishing in the background.
        """
        with self._lock:
            self._closing = True
            self._work.notify()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def feedback(
        self,
        request_id: str,
        helpful: bool,
        entry_id: str | None = None,
        comment: str | None = None,
    ) -> Feedback:
        """A user's feedback on the query ``request_id``
        (:meth:`Store.add_feedback <walletfaq.store.Store.add_feedback>`: idempotent; the
        comment is masked). A query still queued here is written first (waiting at most
        :data:`FEEDBACK_WAIT_S`).

        Raises:
            UnknownRequestError: no such query in the log.
            StoreError: a field breaks its rule, the store failed, or the log is disabled.
        """
        if not self._enabled:
            raise StoreError(
                "the query log is off (enabled=False, --no-log): no query was logged to give "
                "feedback on; turn logging on to collect feedback"
            )
        try:
            return self._store.add_feedback(request_id, helpful, entry_id, comment)
        except UnknownRequestError:
            with self._lock:
                queued = request_id in self._pending_ids
            if not queued:
                raise
        self.flush(FEEDBACK_WAIT_S)
        return self._store.add_feedback(request_id, helpful, entry_id, comment)

    # --- the writer thread ---------------------------------------------------------------

    def _start(self) -> None:
        """Start the writer (the lock held)."""
        self._thread = threading.Thread(target=self._run, name="walletfaq-query-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                batch = self._next_batch()
            if batch is None:
                return
            try:
                written, failed, rejected = self._write(batch)
            except Exception:  # noqa: BLE001 (a bug here must not stop the log, nor hang flush)
                logger.exception("query log: a batch of %d records was lost", len(batch))
                written, failed, rejected = 0, len(batch), 0
            with self._lock:
                self._written += written
                self._failed += failed
                self._rejected += rejected
                self._handled += len(batch)
                self._pending_ids.difference_update(r.request_id for r in batch)
                self._done.notify_all()

    def _next_batch(self) -> list[QueryRecord] | None:
        """The next batch, once full, old enough or asked for (the lock held); ``None`` when
        closed and empty."""
        while not self._queue:
            if self._closing:
                return None
            self._work.wait()
        while (
            len(self._queue) < self._batch_size
            and not self._closing
            and self._flush_target <= self._taken
        ):
            remaining = self._queue[0][0] + self._interval - time.monotonic()
            if remaining <= 0:
                break
            self._work.wait(remaining)
        size = min(self._batch_size, len(self._queue))
        self._taken += size
        return [self._queue.popleft()[1] for _ in range(size)]

    def _write(self, batch: list[QueryRecord]) -> tuple[int, int, int]:
        """Write ``batch``, retrying; ``(written, failed, rejected)`` records."""
        rejected = 0
        sifted = False
        attempt = 0
        while True:
            try:
                self._store.log_queries(batch)
                return len(batch), 0, rejected
            except Exception as exc:  # noqa: BLE001 (the writer must outlive any failure)
                error = exc
            if not sifted:  # a bad record fails its whole batch: leave it out, try the rest
                sifted = True
                batch, bad = _valid_records(batch)
                rejected += bad
                if bad:
                    if not batch:
                        return 0, 0, rejected
                    continue
            logged = self._logged(batch)
            if logged and len(logged) == len(batch):
                return len(batch), 0, rejected  # an attempt committed, its answer got lost
            if logged:
                logger.warning("query log: %d request ids were logged before", len(logged))
                rejected += len(logged)
                batch = [r for r in batch if r.request_id not in logged]
                continue
            attempt += 1
            if attempt > self._retries:
                if self._failure_warning.ready():
                    logger.warning(
                        "query log of %s: %d records lost after %d tries (%s); %d lost so far",
                        self._store.url,
                        len(batch),
                        attempt,
                        error,
                        self._failed + len(batch),
                    )
                return 0, len(batch), rejected
            time.sleep(self._retry_delay * 2 ** (attempt - 1))

    def _logged(self, batch: Sequence[QueryRecord]) -> set[str]:
        """The request ids of ``batch`` already in the log (none when the store cannot say)."""
        found: set[str] = set()
        for record in batch:
            try:
                self._store.query(record.request_id)
            except UnknownRequestError:
                continue
            except Exception:  # noqa: BLE001 (the store is failing: nothing is known)
                return set()
            found.add(record.request_id)
        return found


def purge_older_than(store: Store, days: float, *, now: datetime | None = None) -> int:
    """Delete the logged queries older than ``days`` days, with their feedback (the
    retention period; :meth:`Store.purge_traffic <walletfaq.store.Store.purge_traffic>`).

    Args:
        store: the store of record.
        days: the retention period, a positive number of days (fractions allowed).
        now: the time to count back from (default: now, UTC; timezone-aware).

    Returns:
        How many logged queries were deleted.

    Raises:
        StoreError: ``days`` is not a positive finite number, or ``now`` has no time zone.
    """
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days):
        raise StoreError(f"days must be a positive number of days, got {days!r}")
    if days <= 0:
        raise StoreError(f"days must be more than 0 (the retention period), got {days!r}")
    start = datetime.now(timezone.utc) if now is None else now
    return store.purge_traffic(start - timedelta(days=days))


def _valid_records(batch: list[QueryRecord]) -> tuple[list[QueryRecord], int]:
    """The records of ``batch`` the store accepts (each request id once) and how many were
    left out, each with a warning."""
    kept: list[QueryRecord] = []
    seen: set[str] = set()
    for record in batch:
        try:
            check_query_record(record)
        except StoreError as exc:
            logger.warning("query log: a record was refused: %s", exc)
            continue
        if record.request_id in seen:
            logger.warning("query log: request id %r recorded twice", record.request_id)
            continue
        seen.add(record.request_id)
        kept.append(record)
    return kept, len(batch) - len(kept)


class Throttle:
    """Says yes at most once per ``interval_s`` seconds (thread-safe)."""

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._last = -math.inf
        self._lock = threading.Lock()

    def ready(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                return False
            self._last = now
            return True


def _checked_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise WalletFAQError(f"{what} must be True or False, got {value!r}")
    return value


def _checked_count(value: object, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WalletFAQError(f"{what} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _checked_seconds(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise WalletFAQError(f"{what} must be a finite number of seconds (>= 0), got {value!r}")
    return float(value)
