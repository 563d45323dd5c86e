"""The service's Prometheus metrics: :class:`ServiceMetrics`, one registry per app.

Exposed at ``GET /metrics``; :class:`walletfaq.service.middleware.MetricsMiddleware` counts
the requests, the ask routes count questions and cache hits, and the served-index holder
counts its reloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from walletfaq.retrieval.retriever import FAQRetriever
    from walletfaq.service.holder import ServedIndex
    from walletfaq.service.pool import AskPool
    from walletfaq.service.traffic import LogStatus

LOG_RESULTS = ("written", "dropped", "failed", "rejected")
"""The ``result`` labels of ``walletfaq_query_log_records_total``: always these four."""


class ServiceMetrics:
    """Prometheus metrics of one app, in their own registry (several apps never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "walletfaq_requests",
            "HTTP requests answered, by route, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "walletfaq_request_duration_seconds",
            "Time from request to the end of its response, by route.",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "walletfaq_errors",
            "Requests answered with an error status (4xx, 5xx), by route and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.questions = Counter(
            "walletfaq_questions",
            "Questions asked (a batch counts each of its questions).",
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "walletfaq_cache_hits",
            "Questions answered from the retriever's query cache (nothing encoded).",
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "walletfaq_asks_in_progress",
            "Asks running or waiting for a worker.",
            registry=self.registry,
        )
        self.entries = Gauge(
            "walletfaq_entries", "FAQ entries in the served index.", registry=self.registry
        )
        self.vectors = Gauge(
            "walletfaq_index_vectors", "Vectors in the served index.", registry=self.registry
        )
        self.index_version = Gauge(
            "walletfaq_index_version",
            "Version of the served index: the saved one at start (1 for a new build), then "
            "one more per applied edit or reload.",
            registry=self.registry,
        )
        self.index = Info(
            "walletfaq_index",
            "The index served (updated on reload): model, corpus hash, index kind, walletfaq "
            "version.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "walletfaq_reloads",
            "Loads of the index directory, by result: reloaded (a new index is served), "
            "unchanged (POST /v1/reload found nothing new), failed (the old index is kept).",
            ["result"],
            registry=self.registry,
        )
        for result in ("reloaded", "unchanged", "failed"):
            self.reloads.labels(result)
        self.reload_failing = Gauge(
            "walletfaq_reload_failing",
            "1 while the index directory holds content that could not be loaded (the previous "
            "index is served), else 0.",
            registry=self.registry,
        )

    def watch(self, index: ServedIndex, pool: AskPool) -> None:
        """Read the gauges of the served index (entries, vectors, version) and of the pool
        (asks in progress) from ``index`` and ``pool`` at each scrape."""
        self.entries.set_function(lambda: len(index.current.retriever.corpus))
        self.vectors.set_function(lambda: int(index.current.retriever.index.ntotal))
        self.index_version.set_function(lambda: index.current.version)
        self.in_progress.set_function(lambda: pool.in_progress)

    def watch_log(self, status: Callable[[], LogStatus]) -> None:
        """Export the query log's counts (read from ``status()`` at each scrape), with the same
        names and labels whether logging is on or off."""
        self.registry.register(_QueryLogCollector(status))

    def describe(self, retriever: FAQRetriever) -> None:
        """Set the ``walletfaq_index`` info to what ``retriever`` serves."""
        from walletfaq._version import __version__

        self.index.info(
            {
                "model": retriever.encoder.name,
                "corpus_hash": retriever.corpus.content_hash()[:16],
                "index": retriever.index_spec.kind,
                "walletfaq_version": __version__,
            }
        )


class _QueryLogCollector:
    """``walletfaq_query_log_records_total{result}`` (:data:`LOG_RESULTS`),
    ``walletfaq_query_log_pending``, ``walletfaq_query_log_enabled`` and
    ``walletfaq_query_log_purged_total``, read from the log's status at each scrape."""

    def __init__(self, status: Callable[[], LogStatus] | None) -> None:
        self._status = status

    def describe(self) -> Iterator[Metric]:
        return _QueryLogCollector(None).collect()

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = None if self._status is None else self._status()
        records = CounterMetricFamily(
            "walletfaq_query_log_records",
            "Query log records by result: written to the store, dropped (queue full or "
            "closing), failed (lost after the store's retries), rejected (refused by the store).",
            labels=["result"],
        )
        for result in LOG_RESULTS:
            records.add_metric([result], 0 if status is None else getattr(status, result))
        yield records
        yield GaugeMetricFamily(
            "walletfaq_query_log_pending",
            "Query log records queued or being written.",
            value=0 if status is None else status.pending,
        )
        yield GaugeMetricFamily(
            "walletfaq_query_log_enabled",
            "1 when questions are logged, 0 when logging is off.",
            value=int(status is not None and status.enabled),
        )
        yield CounterMetricFamily(
            "walletfaq_query_log_purged",
            "Logged queries deleted by the retention period.",
            value=0 if status is None else status.purged,
        )


__all__ = ["LOG_RESULTS", "ServiceMetrics"]
