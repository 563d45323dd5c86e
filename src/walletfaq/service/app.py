"""HTTP service: a :class:`~walletfaq.retrieval.retriever.FAQRetriever` behind a small JSON API.

:func:`create_app` returns a FastAPI (ASGI) application that any ASGI server runs, or that an
application mounts inside its own (``parent.mount("/faq", create_app(retriever))``);
:func:`~walletfaq.service.run.serve` runs one with uvicorn (``walletfaq serve`` on the command
line). It needs the ``serve`` extra: ``pip install "walletfaq[serve]"``.

Endpoints (JSON unless said otherwise):

- ``POST /v1/ask`` ``{"question", "k"?, "category"?}`` → ``{"hits": [hit, ...], "request_id"}``,
  best first; a hit is :meth:`Hit.to_dict <walletfaq.index.search.Hit.to_dict>` (as
  ``walletfaq ask --json``).
- ``POST /v1/ask_batch`` ``{"questions": [...], "k"?, "category"?}`` →
  ``{"results": [[hit, ...], ...], "request_ids": [...]}``, in input order.
- ``POST /v1/answer`` ``{"question", "k"?}`` → ``{"question", "confident", "message", "hit",
  "candidates", "request_id", ...}``
  (:meth:`Answer.to_dict <walletfaq.index.search.Answer.to_dict>`).
- ``POST /v1/feedback`` ``{"request_id", "helpful", "entry_id"?, "comment"?}``; the gap
  proposals ``GET /v1/proposals``, ``POST /v1/proposals/{id}/accept|reject`` (admin, a store).
  Every question is logged under its request id (also the ``X-Request-Id`` header) when the
  service logs: :mod:`walletfaq.service.traffic`.
- ``GET /v1/entries/{id}`` → the entry in the corpus file format; ``GET /v1/categories``.
- ``GET /healthz`` (the process answers), ``GET /readyz`` (an index is loaded),
  ``GET /metrics`` (Prometheus text format), ``GET /openapi.json``, ``GET /docs`` (Swagger UI
  served from the ``swagger-ui-py`` package: no CDN), ``GET /`` (a self-contained playground).

Behaviour under load: questions are encoded in a bounded thread pool
(:attr:`ServerSettings.workers` threads), never on the event loop; at most
:attr:`ServerSettings.queue_size` more requests wait for a thread, and any request beyond that
is answered at once with ``503`` and ``Retry-After`` rather than queued. A request whose ask
takes longer than :attr:`ServerSettings.timeout_s` is answered ``504``.

Errors are ``{"detail": message}`` (``422``: a list of field errors): ``400`` an unusable
question or category (:class:`~walletfaq.errors.QueryError`), ``401`` a missing or wrong bearer
token, ``404`` an unknown entry id, ``413`` a body, question or batch over the limits, ``422``
malformed JSON (``NaN``, ``Infinity`` and numbers out of range included: they are not JSON) or
fields of the wrong type, ``503`` overloaded, ``504`` timed out.

When a read token is set (:attr:`ServerSettings.read_token`, by default from the environment
variable ``WALLETFAQ_READ_TOKEN``), every ``/v1/`` endpoint requires
``Authorization: Bearer <token>`` (the admin token is accepted too); the probes, metrics,
schema, docs and playground stay open (they reveal no FAQ content).

Admin endpoints (``POST/PUT/DELETE /v1/entries``, ``POST /v1/reload``) need
``Authorization: Bearer <admin token>`` (:attr:`ServerSettings.admin_token`, by default from
``WALLETFAQ_ADMIN_TOKEN``; without one they answer ``403``).

Reloading: a service started from an index directory (:attr:`ServerSettings.persist_dir`,
``walletfaq serve --index DIR``) serves a :class:`ServedIndex`. ``POST /v1/reload`` loads the
directory again when its manifest checksum differs from the one served, and every
:attr:`ServerSettings.reload_interval_s` seconds a background task does the same, so a
directory replaced by ``walletfaq build --out DIR`` (or by an edit saved by another worker
process) is served within that delay. Each request reads the served retriever once: requests
in flight finish on the old index, later ones use the new one. A directory that cannot be
loaded leaves the old index in service (``POST /v1/reload`` answers ``500`` saying why; the
poller logs it once and sets the ``walletfaq_reload_failing`` metric). A service without a
directory answers ``POST /v1/reload`` with ``409``: there is nothing on disk to reload from.

Running it: :func:`walletfaq.service.run.serve` (one process) and
:func:`walletfaq.service.run.serve_index` (a saved index, several worker processes, whose
edits reach each other through the directory); the pieces: :mod:`walletfaq.service.settings`,
:mod:`walletfaq.service.routes` (the endpoints, one router per area, with their models),
:mod:`walletfaq.service.state` (what they share), :mod:`walletfaq.service.middleware`,
:mod:`walletfaq.service.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

# the serve extra is present: import what the routes and handlers need
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.encoders import jsonable_encoder  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

import walletfaq.service.routes.ask as ask_routes  # noqa: E402
import walletfaq.service.routes.entries as entry_routes  # noqa: E402
import walletfaq.service.routes.feedback as feedback_routes  # noqa: E402
import walletfaq.service.routes.operations as operation_routes  # noqa: E402
import walletfaq.service.routes.proposals as proposal_routes  # noqa: E402
from walletfaq.errors import WalletFAQError  # noqa: E402
from walletfaq.service.errors import SERVING_STATUS, OverloadedError, ServerError  # noqa: E402
from walletfaq.service.holder import ReloadError, ServedIndex  # noqa: E402
from walletfaq.service.middleware import (  # noqa: E402
    BodyLimitMiddleware,
    MetricsMiddleware,
    SafeJSONResponse,
)
from walletfaq.service.settings import ServerSettings  # noqa: E402
from walletfaq.service.state import ServiceState  # noqa: E402

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- lifespan
def _lifespan(state: ServiceState) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """Start the directory poller (when there is a directory and an interval) and the query
    log's retention purges with the app; stop them, then the pool, write the queued log records
    (bounded: :data:`~walletfaq.service.traffic.CLOSE_TIMEOUT_S`) and remove the edit lock file
    beside the directory when the app shuts down."""
    index, interval_s = state.index, state.settings.reload_interval_s

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(state.traffic.keep_purging(), name="walletfaq-retention")]
        if index.directory is not None and interval_s > 0:
            tasks.append(asyncio.create_task(_poll(index, interval_s), name="walletfaq-reload"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            state.pool.shutdown()
            await asyncio.to_thread(state.traffic.close)
            index.remove_lock_file()

    return lifespan


async def _poll(index: ServedIndex, interval_s: float) -> None:
    """Every ``interval_s`` seconds, reload ``index`` if its directory changed (in a thread:
    loading never blocks the event loop). Runs until cancelled; a failure is logged and the
    old index stays served."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(index.poll)
        except ReloadError:
            pass  # logged once by the index, counted in the metrics
        except Exception:  # the poller must outlive any surprise
            logger.exception("checking %s for a new index failed", index.directory)


# --------------------------------------------------------------------------- error answers
def _refusal(exc: Exception, status: int, headers: dict[str, str]) -> JSONResponse:
    # shed load is counted in /metrics; a log line per 503 would add to the overload
    if status >= 500:
        log = logger.debug if isinstance(exc, OverloadedError) else logger.warning
        log("%s: %s", type(exc).__name__, exc)
    return SafeJSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _server_error(_request: Request, exc: Exception) -> JSONResponse:
    error = cast(ServerError, exc)  # registered for ServerError only
    return _refusal(error, error.status, error.headers)


async def _serving_error(_request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in SERVING_STATUS.items() if isinstance(exc, kind))
    return _refusal(exc, status, {})


async def _query_error(_request: Request, exc: Exception) -> JSONResponse:
    return SafeJSONResponse({"detail": str(exc)}, status_code=400)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own handler, but its answer echoes the input: it must encode whatever came
    errors = cast(RequestValidationError, exc).errors()  # registered for it only
    return SafeJSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


# --------------------------------------------------------------------------- the app
def create_app(
    retriever: FAQRetriever,
    settings: ServerSettings | None = None,
    *,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """A FastAPI application answering questions with ``retriever`` (endpoints: module doc).

    Args:
        retriever: the retriever served at first; it is shared by the worker threads (it is
            thread-safe). With ``settings.persist_dir``, it should be the index saved there:
            the app serves a :class:`ServedIndex` of that directory (``app.state.index``),
            replaced by a reload when the directory changes.
        settings: limits, pool size, tokens, directory and reload interval; ``None`` =
            :meth:`ServerSettings.from_env` (the tokens come from ``$WALLETFAQ_READ_TOKEN``
            and ``$WALLETFAQ_ADMIN_TOKEN``).
        registry: the Prometheus registry to record into (default: a new one per app, exposed
            at ``/metrics`` and as ``app.state.metrics.registry``).

    The directory poller runs while the app runs (its lifespan: an ASGI server, or
    ``with TestClient(app)``). Nothing is encoded here: the first question loads whatever the
    encoder loads lazily (call ``retriever.ask`` once before serving to warm it up, as
    :func:`~walletfaq.service.run.serve` does). Importing this module without the ``serve``
    extra raises a one-line :class:`WalletFAQError`.
    """
    from walletfaq._version import __version__

    settings = settings if settings is not None else ServerSettings.from_env()
    state = ServiceState.create(retriever, settings, registry)
    app = FastAPI(
        title="walletfaq",
        version=__version__,
        description=(
            "Semantic FAQ retrieval for digital-wallet customer service. Errors are "
            '`{"detail": message}`; 503 answers carry `Retry-After`.'
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(state),
    )
    app.state.index = state.index
    app.state.settings = settings
    app.state.metrics = state.metrics
    app.state.pool = state.pool
    app.state.traffic = state.traffic

    app.add_exception_handler(ServerError, _server_error)
    for error_class in SERVING_STATUS:
        app.add_exception_handler(error_class, _serving_error)
    app.add_exception_handler(WalletFAQError, _query_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)

    # in this order: the schema lists the paths as they are included
    for routes in (ask_routes, feedback_routes, entry_routes, proposal_routes, operation_routes):
        app.include_router(routes.make_router(state))

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


__all__ = ["create_app"]
