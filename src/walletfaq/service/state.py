"""What the routers of one app share: :class:`ServiceState`, its settings, metrics, work pool
and served index, and running work in that pool within the settings' bounds.

Each router factory (``walletfaq.service.routes.*.make_router``) receives the state of its app:
there is no module-level state, so several apps live side by side in one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from walletfaq.service.errors import AskTimeoutError, OverloadedError
from walletfaq.service.holder import ServedIndex
from walletfaq.service.metrics import ServiceMetrics
from walletfaq.service.pool import AskPool
from walletfaq.service.settings import ServerSettings
from walletfaq.service.traffic import ServiceLog

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from walletfaq.retrieval.retriever import FAQRetriever

_T = TypeVar("_T")


@dataclass(frozen=True)
class ServiceState:
    """The parts of one app (also on ``app.state``: ``settings``, ``metrics``, ``pool``,
    ``index``, ``traffic``).

    Attributes:
        settings: the limits, tokens, directory and reload interval.
        metrics: the app's Prometheus metrics.
        pool: where questions are encoded and edits applied.
        index: the served index; a request reads ``index.current`` once.
        traffic: the query log (off when nothing is logged).
    """

    settings: ServerSettings
    metrics: ServiceMetrics
    pool: AskPool
    index: ServedIndex
    traffic: ServiceLog

    @classmethod
    def create(
        cls,
        retriever: FAQRetriever,
        settings: ServerSettings,
        registry: CollectorRegistry | None = None,
    ) -> ServiceState:
        """The state of an app serving ``retriever`` (see
        :func:`walletfaq.service.app.create_app`), its metrics recorded into ``registry``
        (``None`` = a new one).

        Raises:
            StoreError: ``settings.log_store`` cannot be opened.
        """
        traffic = ServiceLog.create(retriever, settings)
        metrics = ServiceMetrics(registry)
        pool = AskPool(settings.workers, settings.queue_limit)
        index = ServedIndex(retriever, settings.persist_dir, metrics=metrics)
        metrics.watch(index, pool)
        metrics.watch_log(traffic.status)
        metrics.describe(retriever)
        return cls(settings=settings, metrics=metrics, pool=pool, index=index, traffic=traffic)

    def submit(self, function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
        """``function(*args)`` in the pool; a full queue is 503 with ``Retry-After``."""
        try:
            return self.pool.submit(function, *args)
        except OverloadedError as exc:
            exc.headers = {"Retry-After": str(self.settings.retry_after_s)}
            raise

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in the pool, bounded by the per-request timeout."""
        future = self.submit(function, *args)
        timeout_s = self.settings.timeout_s
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except asyncio.TimeoutError:
            raise AskTimeoutError(
                f"the question took more than {timeout_s:g} s to answer; retry later"
            ) from None

    async def run_edit(self, function: Callable[..., _T], *args: Any) -> _T:
        """An edit in the pool, awaited to the end (no timeout: an accepted edit completes)."""
        return await asyncio.wrap_future(self.submit(function, *args))


__all__ = ["ServiceState"]
