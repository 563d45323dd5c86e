"""The work pool: :class:`AskPool`, a bounded thread pool with admission control, where
questions are encoded and edits applied (never on the event loop)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from walletfaq.service.errors import OverloadedError

_T = TypeVar("_T")


class AskPool:
    """A bounded thread pool with admission control.

    At most ``workers`` calls run at once and ``queue_limit`` more wait; :meth:`submit` beyond
    that raises :class:`OverloadedError` at once. A slot is given back when its call really
    ends (a timed-out call still holds its slot while its thread works), so the bound holds.
    """

    def __init__(self, workers: int, queue_limit: int) -> None:
        self.workers = workers
        self.queue_limit = queue_limit
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="walletfaq-ask"
        )
        self._lock = threading.Lock()
        self._in_progress = 0

    def __repr__(self) -> str:
        return f"AskPool(workers={self.workers}, queue_limit={self.queue_limit})"

    @property
    def in_progress(self) -> int:
        """Calls running or waiting for a thread."""
        return self._in_progress

    def submit(self, function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
        """Schedule ``function(*args)``; raises :class:`OverloadedError` when full."""
        with self._lock:
            if self._in_progress >= self.workers + self.queue_limit:
                raise OverloadedError(
                    f"the service is busy ({self._in_progress} requests in progress, "
                    f"{self.workers} workers + {self.queue_limit} queued at most); retry shortly"
                )
            self._in_progress += 1
        try:
            future = self._executor.submit(function, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: object) -> None:
        with self._lock:
            self._in_progress -= 1

    def shutdown(self) -> None:
        """Stop accepting work; running calls finish in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["AskPool"]
