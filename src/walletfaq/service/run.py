"""HTTP service: a :class:`~walletfaq.retrieval.retriever.FAQRetriever` behind a small JSON API.

:func:`create_app` returns a FastAPI (ASGI) application that any ASGI server runs, or that an
application mounts inside its own (``parent.mount("/faq", create_app(retriever))``);
:func:`serve` runs one with uvicorn (``walletfaq serve`` on the command line). It needs the
``serve`` extra: ``pip install "walletfaq[serve]"``.

Endpoints (JSON unless said otherwise):

- ``POST /v1/ask`` ``{"question", "k"?, "category"?}`` → ``{"hits": [hit, ...]}``, best first;
  a hit is :meth:`Hit.to_dict <walletfaq.index.search.Hit.to_dict>` (as ``walletfaq ask --json``).
- ``POST /v1/ask_batch`` ``{"questions": [...], "k"?, "category"?}`` →
  ``{"results": [[hit, ...], ...]}``, in input order.
- ``POST /v1/answer`` ``{"question", "k"?}`` → ``{"question", "confident", "message", "hit",
  "candidates"}`` (:meth:`Answer.to_dict <walletfaq.index.search.Answer.to_dict>`).
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
malformed JSON or fields of the wrong type, ``503`` overloaded, ``504`` timed out.

When a read token is set (:attr:`ServerSettings.read_token`, by default from the environment
variable ``WALLETFAQ_READ_TOKEN``), every ``/v1/`` endpoint requires
``Authorization: Bearer <token>``; the probes, metrics, schema, docs and playground stay open
(they reveal no FAQ content).

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

Several worker processes (``walletfaq serve --workers N``, :func:`serve_index`) each load the
directory; an edit takes a lock file beside it (``.<name>.walletfaq-serve.lock``), first loads
what another worker saved there, then saves its own, so edits from all workers apply one after
the other and none is lost; the other workers pick each edit up on their next poll.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import walletfaq.index.store as store
from walletfaq.errors import IndexFormatError, QueryError, WalletFAQError
from walletfaq.retrieval.retriever import MAX_QUESTION_CHARS
from walletfaq.service.holder import (
    LOCK_SUFFIX,
    NothingToReloadError,
    PersistError,
    ReloadError,
    ReloadResult,
    Served,
    ServedIndex,
    manifest_checksum,
)


def check_server_dependencies() -> None:
    """Raise a one-line :class:`WalletFAQError` when the ``serve`` extra is missing."""
    import importlib.util

    missing = [
        package
        for module, package in (
            ("fastapi", "fastapi"),
            ("pydantic", "pydantic"),
            ("uvicorn", "uvicorn"),
            ("prometheus_client", "prometheus-client"),
        )
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise WalletFAQError(
            f"serving needs {', '.join(missing)}; install them with: pip install 'walletfaq[serve]'"
        )


check_server_dependencies()

# the serve extra is present: import what the endpoints' annotations name
from fastapi import Depends, FastAPI, Request  # noqa: E402
from fastapi.encoders import jsonable_encoder  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.openapi.docs import get_swagger_ui_html  # noqa: E402
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, field_validator  # noqa: E402

from walletfaq.retrieval.retriever import FAQRetriever  # noqa: E402

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from walletfaq.index.search import Hit

logger = logging.getLogger(__name__)

READ_TOKEN_ENV = "WALLETFAQ_READ_TOKEN"
ADMIN_TOKEN_ENV = "WALLETFAQ_ADMIN_TOKEN"
"""Environment variables read by :meth:`ServerSettings.from_env` for the bearer tokens."""

WORKER_CONFIG_ENV = "WALLETFAQ_SERVE_CONFIG"
"""Environment variable through which :func:`serve_index` hands its configuration (JSON) to
the worker processes uvicorn starts (:func:`app_from_environment`)."""

MAX_K = 100
"""Largest ``k`` a request may ask for."""

_T = TypeVar("_T")

_SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The Swagger UI files the docs page loads, served from the swagger-ui-py package."""


# --------------------------------------------------------------------------- errors
class ServerError(WalletFAQError):
    """A request the service refuses; :attr:`status` is the HTTP status it answers with."""

    status = 500
    headers: dict[str, str] = {}

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        if headers is not None:
            self.headers = headers


class PayloadTooLargeError(ServerError):
    """The body, a question or a batch is over the configured limit (413)."""

    status = 413


class UnauthorizedError(ServerError):
    """The bearer token is missing or wrong (401)."""

    status = 401


class ForbiddenError(ServerError):
    """The admin endpoints are disabled: the server has no admin token (403)."""

    status = 403


class ConflictError(ServerError):
    """An entry with this id already exists (409)."""

    status = 409


class EntryNotFoundError(ServerError):
    """No entry has the requested id (404)."""

    status = 404


class OverloadedError(ServerError):
    """Every worker is busy and the waiting queue is full (503, with ``Retry-After``)."""

    status = 503


class AskTimeoutError(ServerError):
    """An ask took longer than the per-request timeout (504)."""

    status = 504


class NotReadyError(ServerError):
    """The service has no usable index (503)."""

    status = 503


_SERVING_STATUS: dict[type[WalletFAQError], int] = {
    NothingToReloadError: 409,
    ReloadError: 500,
    PersistError: 500,
}
"""The statuses of the errors :class:`ServedIndex` raises (:mod:`walletfaq.service.holder`, no HTTP
there): 409 nothing on disk to reload, 500 a directory that cannot be loaded or an edit that
cannot be persisted."""


# --------------------------------------------------------------------------- settings
def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerSettings:
    """How the service bounds its work.

    Attributes:
        workers: threads that encode and search at the same time (default: the CPU cores this
            process may use).
        queue_size: requests that may wait for a free worker; beyond ``workers + queue_size``
            requests in progress, a request is answered ``503`` at once. ``None`` = 4 per
            worker.
        timeout_s: a request whose ask has not finished after this many seconds gets ``504``.
        max_body_bytes: larger request bodies get ``413`` (checked before parsing).
        max_question_chars: longer questions get ``413`` (default: the length the retriever
            would cut them to, :data:`walletfaq.retrieval.retriever.MAX_QUESTION_CHARS`).
        max_batch: larger ``/v1/ask_batch`` requests get ``413``.
        retry_after_s: the ``Retry-After`` seconds sent with ``503``.
        read_token: when set, ``/v1/`` read endpoints require ``Authorization: Bearer
            <token>``.
        admin_token: enables the admin endpoints (``POST/PUT/DELETE /v1/entries``,
            ``POST /v1/reload``), which then require ``Authorization: Bearer <admin token>``;
            ``None`` = they answer 403.
        persist_dir: the saved index directory the service answers from: every accepted edit
            is written there (atomically) before the response, ``POST /v1/reload`` loads it
            again, and it is watched for replacement (``reload_interval_s``); ``None`` = edits
            live in memory only and there is nothing to reload.
        reload_interval_s: seconds between two checks of ``persist_dir``'s manifest checksum;
            a changed directory is loaded and served (hot reload). ``0`` = no background
            check (``POST /v1/reload`` still works).
    """

    workers: int = field(default_factory=_default_workers)
    queue_size: int | None = None
    timeout_s: float = 10.0
    max_body_bytes: int = 64 * 1024
    max_question_chars: int = MAX_QUESTION_CHARS
    max_batch: int = 64
    retry_after_s: int = 1
    read_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    persist_dir: Path | None = None
    reload_interval_s: float = 2.0

    def __post_init__(self) -> None:
        positive_ints = {
            "workers": self.workers,
            "max_body_bytes": self.max_body_bytes,
            "max_question_chars": self.max_question_chars,
            "max_batch": self.max_batch,
            "retry_after_s": self.retry_after_s,
        }
        for name, value in positive_ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WalletFAQError(f"{name} must be a positive int, got {value!r}")
        if self.queue_size is not None and (
            isinstance(self.queue_size, bool)
            or not isinstance(self.queue_size, int)
            or self.queue_size < 0
        ):
            raise WalletFAQError(
                f"queue_size must be an int >= 0 or None (4 per worker), got {self.queue_size!r}"
            )
        if (
            isinstance(self.timeout_s, bool)
            or not isinstance(self.timeout_s, (int, float))
            or not self.timeout_s > 0
        ):
            raise WalletFAQError(f"timeout_s must be a positive number, got {self.timeout_s!r}")
        if (
            isinstance(self.reload_interval_s, bool)
            or not isinstance(self.reload_interval_s, (int, float))
            or not 0 <= self.reload_interval_s < float("inf")
        ):
            raise WalletFAQError(
                f"reload_interval_s must be a number of seconds >= 0 (0 = no hot reload), got "
                f"{self.reload_interval_s!r}"
            )
        for name, variable in (("read_token", READ_TOKEN_ENV), ("admin_token", ADMIN_TOKEN_ENV)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise WalletFAQError(
                    f"{name} must be a non-empty string or None; unset {variable} instead of "
                    "setting it empty"
                )

    @property
    def queue_limit(self) -> int:
        """How many requests may wait for a worker (``queue_size`` resolved)."""
        return 4 * self.workers if self.queue_size is None else self.queue_size

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings with ``read_token`` from ``$WALLETFAQ_READ_TOKEN`` (unset or empty: no
        token); ``overrides`` whose value is not ``None`` replace the defaults."""
        values = {name: value for name, value in overrides.items() if value is not None}
        if "read_token" not in values:
            values["read_token"] = os.environ.get(READ_TOKEN_ENV) or None
        if "admin_token" not in values:
            values["admin_token"] = os.environ.get(ADMIN_TOKEN_ENV) or None
        return cls(**values)


# --------------------------------------------------------------------------- work pool
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


# --------------------------------------------------------------------------- metrics
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
            "Version of the served index in this process: 1 at start, then one more per "
            "applied edit or reload.",
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


# --------------------------------------------------------------------------- ASGI layers
Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


async def _send_json_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SafeJSONResponse(JSONResponse):
    """A JSON response that always encodes: text holding a lone surrogate (a malformed
    request's ``"\\ud800"`` echoed in a 422, say) is written escaped instead of failing."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            text = json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
            return text.encode("ascii")


class BodyLimitMiddleware:
    """Answers ``413`` to request bodies over ``max_bytes``, declared or streamed, before
    anything parses them; smaller bodies are buffered and passed on unchanged."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = (
            f"the request body is over {self.max_bytes} bytes; send smaller requests "
            "(split a batch)"
        )
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _send_json_error(send, 413, too_large)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_json_error(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # type: ignore[no-any-return]

        await self.app(scope, replay, send)


class MetricsMiddleware:
    """Counts requests, errors and latency per route template (``/v1/entries/{entry_id}``,
    never the raw path, so labels stay few)."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(endpoint, str(status)).inc()


# --------------------------------------------------------------------------- JSON shapes
def _check_text(value: str, label: str) -> str:
    """Raise when ``value`` holds a lone surrogate (JSON's ``"\\ud800"`` parses to one): it is
    not Unicode text and could be neither encoded nor saved."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{label} has a lone surrogate (U+{ord(value[exc.start]):04X}) at position "
            f"{exc.start}, which is not valid Unicode text; send UTF-8 text"
        ) from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_text(cls, value: object) -> object:
        """Every string (alone or in a list) is valid Unicode text."""
        if isinstance(value, str):
            _check_text(value, "the text")
        elif isinstance(value, list):
            for position, item in enumerate(value):
                if isinstance(item, str):
                    _check_text(item, f"item {position}")
        return value


class AskIn(_Model):
    """Body of ``POST /v1/ask``."""

    question: str = Field(description="the user's question", examples=["充值了钱没到账咋办"])
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="number of hits")
    category: str | None = Field(None, description="only entries of this category")


class AskBatchIn(_Model):
    """Body of ``POST /v1/ask_batch``."""

    questions: list[str] = Field(examples=[["登不上去了", "how do refunds work"]])
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="number of hits per question")
    category: str | None = Field(None, description="only entries of this category")


class AnswerIn(_Model):
    """Body of ``POST /v1/answer``."""

    question: str = Field(description="the user's question", examples=["今天天气怎么样"])
    k: int = Field(3, ge=1, le=MAX_K, strict=True, description="number of candidates")


class HitOut(BaseModel):
    """One ranked entry (:class:`walletfaq.index.search.Hit`)."""

    id: str
    category: str
    question: str
    answer: str
    score: float = Field(description="cosine similarity to the best-matching text, at most 1")
    matched: str = Field(description="the entry's question or alt question that matched best")


class AskOut(BaseModel):
    """Answer of ``POST /v1/ask``: hits, best first."""

    hits: list[HitOut]


class AskBatchOut(BaseModel):
    """Answer of ``POST /v1/ask_batch``: one list of hits per question, in input order."""

    results: list[list[HitOut]]


class AnswerOut(BaseModel):
    """Answer of ``POST /v1/answer`` (:class:`walletfaq.index.search.Answer`)."""

    question: str
    confident: bool = Field(description="whether the top score reached the threshold")
    message: str = Field(description="the entry's answer, or where to reach human support")
    hit: HitOut | None = Field(description="the best entry when confident, else null")
    candidates: list[HitOut] = Field(description="the top hits either way")


class EntryOut(BaseModel):
    """An FAQ entry in the corpus file format."""

    id: str
    category: str
    question: str
    answer: str
    alt_questions: list[str]


class EntryIn(_Model):
    """An FAQ entry to add or replace, in the corpus file format."""

    id: str | None = Field(None, description="required by POST; PUT takes it from the path")
    category: str
    question: str
    answer: str
    alt_questions: list[str] = Field(default_factory=list)


class EditOut(BaseModel):
    """What an accepted edit did."""

    id: str
    action: str = Field(description="added, replaced or removed")
    version: int = Field(description="the index version after the edit")
    persisted: bool = Field(description="written to the index directory before this answer")


class CategoriesOut(BaseModel):
    """The corpus categories."""

    categories: list[str]


class StatusOut(BaseModel):
    """A liveness answer."""

    status: str


class ReadyOut(BaseModel):
    """A readiness answer: what index is served."""

    status: str
    entries: int
    vectors: int
    model: str
    index_version: int = Field(description="1 at start, +1 per applied edit or reload")
    corpus_hash: str = Field(description="the served corpus content hash (16 hex digits)")
    index_checksum: str | None = Field(
        None,
        description="the served index directory's manifest checksum (16 hex digits); null "
        "without a directory",
    )
    reload_error: str | None = Field(
        None,
        description="why the index directory's current content could not be loaded (the "
        "index served is the previous one); null when it is served",
    )


class ReloadOut(BaseModel):
    """Answer of ``POST /v1/reload`` (:class:`ReloadResult`)."""

    changed: bool = Field(description="whether a new index is now served")
    version: int = Field(description="the index version served now")
    previous_version: int = Field(description="the index version served before")
    entries: int = Field(description="FAQ entries served now")
    vectors: int = Field(description="vectors in the index served now")
    index_checksum: str | None = Field(
        description="the served directory content's manifest checksum (16 hex digits)"
    )


class ErrorOut(BaseModel):
    """Every error answer (422 answers list field errors instead of one message)."""

    detail: str


# --------------------------------------------------------------------------- the app
def _lifespan(
    pool: AskPool, index: ServedIndex, interval_s: float
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """Start the directory poller (when there is a directory and an interval) with the app;
    stop it, then the pool, when the app shuts down."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        poller = None
        if index.directory is not None and interval_s > 0:
            poller = asyncio.create_task(_poll(index, interval_s), name="walletfaq-reload")
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            pool.shutdown()

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


def _check_bearer(
    credentials: HTTPAuthorizationCredentials | None, token: str, placeholder: str
) -> None:
    """Raise 401 unless the request's bearer token equals ``token`` (constant-time)."""
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise UnauthorizedError(
            f"a valid bearer token is required: send 'Authorization: Bearer {placeholder}'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _is_cached(retriever: FAQRetriever, question: str, k: int, category: str | None) -> bool:
    """Whether ``retriever.ask(question, k, category)`` will be served from its query cache."""
    return retriever.is_cached(question, k, category)


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
    :func:`serve` does). Importing
    this module without the ``serve`` extra raises a one-line :class:`WalletFAQError`.
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from walletfaq._version import __version__

    settings = settings if settings is not None else ServerSettings.from_env()
    metrics = ServiceMetrics(registry)
    pool = AskPool(settings.workers, settings.queue_limit)
    served_index = ServedIndex(retriever, settings.persist_dir, metrics=metrics)
    metrics.entries.set_function(lambda: len(served_index.current.retriever.corpus))
    metrics.vectors.set_function(lambda: int(served_index.current.retriever.index.ntotal))
    metrics.index_version.set_function(lambda: served_index.current.version)
    metrics.describe(retriever)
    metrics.in_progress.set_function(lambda: pool.in_progress)

    app = FastAPI(
        title="walletfaq",
        version=__version__,
        description=(
            "Semantic FAQ retrieval for digital-wallet customer service. Errors are "
            '`{"detail": message}`; 503 answers carry `Retry-After`.'
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(pool, served_index, settings.reload_interval_s),
    )
    app.state.index = served_index
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.pool = pool

    def refusal(exc: Exception, status: int, headers: dict[str, str]) -> JSONResponse:
        # shed load is counted in /metrics; a log line per 503 would add to the overload
        if status >= 500:
            log = logger.debug if isinstance(exc, OverloadedError) else logger.warning
            log("%s: %s", type(exc).__name__, exc)
        return SafeJSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(ServerError)
    async def _server_error(_request: Request, exc: ServerError) -> JSONResponse:
        return refusal(exc, exc.status, exc.headers)

    async def _serving_error(_request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _SERVING_STATUS.items() if isinstance(exc, kind))
        return refusal(exc, status, {})

    for error_class in _SERVING_STATUS:
        app.add_exception_handler(error_class, _serving_error)

    @app.exception_handler(WalletFAQError)
    async def _query_error(_request: Request, exc: WalletFAQError) -> JSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, but its answer echoes the input: it must encode whatever came
        return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    bearer = HTTPBearer(
        auto_error=False,
        description=f"Required on /v1/ endpoints when the server has a read token "
        f"(${READ_TOKEN_ENV}).",
    )

    async def require_read_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if settings.read_token is not None:
            _check_bearer(credentials, settings.read_token, "<token>")

    def submit(function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
        """``function(*args)`` in the pool; a full queue is 503 with ``Retry-After``."""
        try:
            return pool.submit(function, *args)
        except OverloadedError as exc:
            exc.headers = {"Retry-After": str(settings.retry_after_s)}
            raise

    async def run(function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in the pool, bounded by the per-request timeout."""
        future = submit(function, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
        except asyncio.TimeoutError:
            raise AskTimeoutError(
                f"the question took more than {settings.timeout_s:g} s to answer; retry later"
            ) from None

    def check_question(question: str, label: str = "the question") -> None:
        if len(question) > settings.max_question_chars:
            raise PayloadTooLargeError(
                f"{label} has {len(question)} characters, more than the limit of "
                f"{settings.max_question_chars}; send the user's question, not a document"
            )

    def ask_counted(
        retriever: FAQRetriever, questions: Sequence[str], k: int, category: str | None
    ) -> list[list[Hit]]:
        metrics.questions.inc(len(questions))
        hits = sum(_is_cached(retriever, q, k, category) for q in questions)
        if hits:
            metrics.cache_hits.inc(hits)
        if len(questions) == 1:
            return [retriever.ask(questions[0], k=k, category=category)]
        return retriever.ask_batch(list(questions), k=k, category=category)

    read = [Depends(require_read_token)]
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": text}
        for code, text in (
            (400, "unusable question or unknown category"),
            (401, "missing or wrong bearer token (when the server has one)"),
            (413, "body, question or batch over the limits"),
            (503, "busy: retry after the Retry-After seconds"),
            (504, "the ask timed out"),
        )
    }

    @app.post(
        "/v1/ask",
        response_model=AskOut,
        dependencies=read,
        responses=errors,
        tags=["questions"],
        summary="Rank the best entries for a question",
    )
    async def ask(body: AskIn) -> dict[str, Any]:
        check_question(body.question)
        retriever = served_index.current.retriever  # read once: a reload may swap it later
        (hits,) = await run(ask_counted, retriever, [body.question], body.k, body.category)
        return {"hits": [hit.to_dict() for hit in hits]}

    @app.post(
        "/v1/ask_batch",
        response_model=AskBatchOut,
        dependencies=read,
        responses=errors,
        tags=["questions"],
        summary="Rank the best entries for each of several questions",
    )
    async def ask_batch(body: AskBatchIn) -> dict[str, Any]:
        if len(body.questions) > settings.max_batch:
            raise PayloadTooLargeError(
                f"the batch has {len(body.questions)} questions, more than the limit of "
                f"{settings.max_batch}; split it"
            )
        if not body.questions:
            return {"results": []}
        for position, question in enumerate(body.questions):
            check_question(question, f"question {position}")
        retriever = served_index.current.retriever
        results = await run(ask_counted, retriever, body.questions, body.k, body.category)
        return {"results": [[hit.to_dict() for hit in hits] for hits in results]}

    def answer_counted(retriever: FAQRetriever, question: str, k: int) -> dict[str, Any]:
        metrics.questions.inc()
        if _is_cached(retriever, question, k, None):
            metrics.cache_hits.inc()
        return retriever.answer(question, k=k).to_dict()

    @app.post(
        "/v1/answer",
        response_model=AnswerOut,
        dependencies=read,
        responses=errors,
        tags=["questions"],
        summary="The answer if confident, else where to reach human support",
    )
    async def answer(body: AnswerIn) -> dict[str, Any]:
        check_question(body.question)
        return await run(answer_counted, served_index.current.retriever, body.question, body.k)

    @app.get(
        "/v1/entries/{entry_id}",
        response_model=EntryOut,
        dependencies=read,
        responses={404: {"model": ErrorOut, "description": "no entry has this id"}},
        tags=["corpus"],
        summary="One FAQ entry, in the corpus file format",
    )
    async def entry(entry_id: str) -> dict[str, object]:
        try:
            return served_index.current.retriever.entry(entry_id).to_dict()
        except KeyError:
            raise EntryNotFoundError(f"no entry has id {entry_id!r}") from None

    async def require_admin_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if settings.admin_token is None:
            raise ForbiddenError(
                f"the admin endpoints are disabled; start the server with {ADMIN_TOKEN_ENV} set"
            )
        _check_bearer(credentials, settings.admin_token, "<admin token>")

    async def run_edit(function: Callable[..., _T], *args: Any) -> _T:
        """An edit in the pool, awaited to the end (no timeout: an accepted edit completes)."""
        return await asyncio.wrap_future(submit(function, *args))

    admin = [Depends(require_admin_token)]
    edit_errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": text}
        for code, text in (
            (400, "an invalid entry"),
            (401, "missing or wrong admin token"),
            (403, "edits are disabled (no admin token configured)"),
            (500, "the edit could not be persisted; it was not applied"),
            (503, "busy: retry after the Retry-After seconds"),
        )
    }

    def persisted(edit: Callable[[], object]) -> None:
        try:
            edit()
        except IndexFormatError as exc:  # the save before the swap failed: nothing changed
            raise PersistError(f"the edit was not applied: {exc}") from None

    def edited(entry_id: str, action: str, served: Served) -> dict[str, Any]:
        return {
            "id": entry_id,
            "action": action,
            "version": served.version,
            "persisted": served_index.directory is not None,
        }

    def add_entry(record: dict[str, Any]) -> dict[str, Any]:
        def change(retriever: FAQRetriever, directory: Path | None) -> str:
            if record["id"] in retriever.corpus:
                raise ConflictError(
                    f"id {record['id']!r} exists; PUT /v1/entries/{{id}} replaces it"
                )
            persisted(lambda: retriever.add([record], persist_to=directory))
            return "added"

        action, served = served_index.edit(change)
        return edited(record["id"], action, served)

    def put_entry(record: dict[str, Any]) -> dict[str, Any]:
        def change(retriever: FAQRetriever, directory: Path | None) -> str:
            replaced = record["id"] in retriever.corpus
            persisted(lambda: retriever.update(record, persist_to=directory))
            return "replaced" if replaced else "added"

        action, served = served_index.edit(change)
        return edited(record["id"], action, served)

    def remove_entry(entry_id: str) -> dict[str, Any]:
        def change(retriever: FAQRetriever, directory: Path | None) -> str:
            if entry_id not in retriever.corpus:
                raise EntryNotFoundError(f"no entry has id {entry_id!r}")
            persisted(lambda: retriever.remove([entry_id], persist_to=directory))
            return "removed"

        action, served = served_index.edit(change)
        return edited(entry_id, action, served)

    @app.post(
        "/v1/entries",
        response_model=EditOut,
        status_code=201,
        dependencies=admin,
        responses={**edit_errors, 409: {"model": ErrorOut, "description": "the id exists"}},
        tags=["edits"],
        summary="Add an entry (embeds only its texts; persisted before the answer)",
    )
    async def post_entry(body: EntryIn) -> dict[str, Any]:
        if body.id is None:
            raise WalletFAQError("the entry needs an 'id'")
        return await run_edit(add_entry, body.model_dump())

    @app.put(
        "/v1/entries/{entry_id}",
        response_model=EditOut,
        dependencies=admin,
        responses=edit_errors,
        tags=["edits"],
        summary="Add or replace the entry with this id",
    )
    async def put_entry_route(entry_id: str, body: EntryIn) -> dict[str, Any]:
        try:
            _check_text(entry_id, "the entry id in the path")
        except ValueError as exc:
            raise WalletFAQError(str(exc)) from None
        if body.id is not None and body.id != entry_id:
            raise WalletFAQError(f"the body's id {body.id!r} differs from the path's {entry_id!r}")
        return await run_edit(put_entry, {**body.model_dump(), "id": entry_id})

    @app.delete(
        "/v1/entries/{entry_id}",
        response_model=EditOut,
        dependencies=admin,
        responses={**edit_errors, 404: {"model": ErrorOut, "description": "no such entry"}},
        tags=["edits"],
        summary="Remove the entry with this id",
    )
    async def delete_entry(entry_id: str) -> dict[str, Any]:
        return await run_edit(remove_entry, entry_id)

    @app.post(
        "/v1/reload",
        response_model=ReloadOut,
        dependencies=admin,
        responses={
            **{code: edit_errors[code] for code in (401, 403)},
            409: {
                "model": ErrorOut,
                "description": "the service was not started from an index directory",
            },
            500: {
                "model": ErrorOut,
                "description": "the directory could not be loaded; the previous index is "
                "still served",
            },
        },
        tags=["edits"],
        summary="Serve the index directory again if it changed on disk",
    )
    async def reload() -> dict[str, Any]:
        """Load the ``--index`` directory and serve it when its manifest checksum differs
        from the one served (``changed``); requests in flight finish on the old index."""
        # a thread outside the ask pool: a reload is never shed, and never blocks the loop
        return (await asyncio.to_thread(served_index.reload)).to_dict()

    @app.get(
        "/v1/categories",
        response_model=CategoriesOut,
        dependencies=read,
        tags=["corpus"],
        summary="The categories usable as `category` filters",
    )
    async def categories() -> dict[str, Any]:
        return {"categories": list(served_index.current.retriever.categories)}

    @app.get("/healthz", response_model=StatusOut, tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """The process is alive and its event loop answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadyOut,
        responses={503: {"model": ErrorOut, "description": "no usable index"}},
        tags=["operations"],
    )
    async def readyz() -> dict[str, Any]:
        """An index is loaded and can be searched."""
        served = served_index.current
        retriever = served.retriever
        vectors = int(retriever.index.ntotal)
        if vectors == 0 or len(retriever.corpus) == 0:
            raise NotReadyError("the index is empty")
        return {
            "status": "ready",
            "entries": len(retriever.corpus),
            "vectors": vectors,
            "model": retriever.encoder.name,
            "index_version": served.version,
            "corpus_hash": retriever.corpus.content_hash()[:16],
            "index_checksum": served.checksum[:16] if served.checksum is not None else None,
            "reload_error": served_index.last_error if served_index.failing else None,
        }

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics_endpoint() -> Response:
        """Prometheus text format: requests, latency, errors, cache hits, index."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    playground = resources.files("walletfaq.service").joinpath("static/playground.html")
    playground_html = playground.read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(playground_html)

    assets = swagger_assets_dir()
    if assets is None:
        logger.warning("swagger-ui-py is not installed: /docs is disabled (see /openapi.json)")
    else:

        @app.get("/docs", include_in_schema=False)
        async def docs(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return get_swagger_ui_html(
                openapi_url=f"{root}/openapi.json",
                title="walletfaq API",
                swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
                swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
                swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
                swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True},
            )

        @app.get("/docs/assets/{name}", include_in_schema=False)
        async def docs_asset(name: str) -> FileResponse:
            if name not in _SWAGGER_ASSETS:
                raise EntryNotFoundError(f"no docs asset {name!r}")
            return FileResponse(
                assets / name,
                media_type=_SWAGGER_ASSETS[name],
                headers={"Cache-Control": "public, max-age=86400"},
            )

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def swagger_assets_dir() -> Path | None:
    """The folder of Swagger UI files shipped by the ``swagger-ui-py`` package, if installed."""
    try:
        import swagger_ui
    except ImportError:
        return None
    folder = Path(swagger_ui.__file__).parent / "static"
    return folder if all((folder / name).is_file() for name in _SWAGGER_ASSETS) else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    retriever: FAQRetriever,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Answer one warm-up question, then serve ``retriever`` with uvicorn (one process) until
    interrupted.

    Args:
        retriever: the retriever served.
        host: the address to listen on (default loopback only; a non-loopback address without
            a read token logs a warning).
        port: the TCP port.
        settings: see :func:`create_app`.
        access_log: log one line per request (uvicorn's access log).
        log_level: uvicorn's log level.
    """
    import uvicorn

    settings = settings if settings is not None else ServerSettings.from_env()
    _warn_if_exposed(host, settings)
    _warm_up(retriever)
    app = create_app(retriever, settings)
    logger.info(
        "serving %r on http://%s:%d (%s threads, %s queued at most; docs at /docs)",
        retriever,
        host,
        port,
        settings.workers,
        settings.queue_limit,
    )
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)


def serve_index(
    directory: str | Path,
    *,
    model: str | None = None,
    workers: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve a saved index directory with ``workers`` uvicorn worker processes until
    interrupted (``walletfaq serve --index DIR --workers N``).

    Every process loads ``directory`` itself (one encoder per process), answers on the same
    port, persists the edits it accepts to ``directory`` and picks up those of the others
    (and any replacement of the directory) within ``settings.reload_interval_s`` seconds; see
    :class:`ServedIndex`. With one worker this is :func:`serve` of the loaded index.

    Args:
        directory: the saved index (``settings.persist_dir`` is set to it).
        model: the model questions are encoded with; ``None`` = the one the index names.
        workers: worker processes (``>= 1``).
        host, port, access_log, log_level: as for :func:`serve`.
        settings: as for :func:`create_app`; with several workers, ``settings.workers``
            threads run in *each* process, and the settings (tokens included) reach the
            worker processes through the environment variable ``WALLETFAQ_SERVE_CONFIG``.

    Raises:
        IndexFormatError: ``directory`` is not a readable saved index (checked before any
            worker starts).
        WalletFAQError: ``workers`` is not a positive int.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise WalletFAQError(f"workers must be a positive int (processes), got {workers!r}")
    root = Path(directory).expanduser().absolute()
    store.read_manifest(root)  # a bad directory fails here, in one line, not in N workers
    settings = replace(
        settings if settings is not None else ServerSettings.from_env(), persist_dir=root
    )
    if workers == 1:
        retriever = FAQRetriever.load(root, model=model)
        serve(
            retriever,
            host=host,
            port=port,
            settings=settings,
            access_log=access_log,
            log_level=log_level,
        )
        return
    import uvicorn

    _warn_if_exposed(host, settings)
    config = {
        "index": str(root),
        "model": model,
        "log_level": log_level,
        "settings": {
            **asdict(settings),
            "persist_dir": str(root),
        },
    }
    previous = os.environ.get(WORKER_CONFIG_ENV)
    os.environ[WORKER_CONFIG_ENV] = json.dumps(config)  # inherited by the worker processes
    logger.info(
        "serving %s on http://%s:%d with %d worker processes (%d threads each)",
        root,
        host,
        port,
        workers,
        settings.workers,
    )
    try:
        uvicorn.run(
            f"{__name__}:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            access_log=access_log,
            log_level=log_level,
        )
    finally:
        if previous is None:
            os.environ.pop(WORKER_CONFIG_ENV, None)
        else:
            os.environ[WORKER_CONFIG_ENV] = previous


def app_from_environment() -> FastAPI:
    """The app of one worker process started by :func:`serve_index` (a uvicorn factory): it
    reads its configuration from ``$WALLETFAQ_SERVE_CONFIG``, loads the index, answers one
    warm-up question and returns :func:`create_app` of it.

    Raises:
        WalletFAQError: the variable is missing or malformed (this factory is only for the
            processes :func:`serve_index` starts).
    """
    raw = os.environ.get(WORKER_CONFIG_ENV)
    config: Any = None
    settings_fields = None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        config = json.loads(raw) if raw else None
        settings_fields = dict(config["settings"])
    if not isinstance(config, dict) or settings_fields is None or "index" not in config:
        raise WalletFAQError(
            f"${WORKER_CONFIG_ENV} is missing or malformed; app_from_environment is the "
            "factory of the worker processes that walletfaq.service.app.serve_index starts"
        )
    _log_to_stderr(str(config.get("log_level", "info")))
    settings_fields["persist_dir"] = Path(settings_fields["persist_dir"])
    settings = ServerSettings(**settings_fields)
    retriever = FAQRetriever.load(config["index"], model=config.get("model"))
    _warm_up(retriever)
    logger.info("worker process %d serves %r", os.getpid(), retriever)
    return create_app(retriever, settings)


def threads_per_process(processes: int = 1) -> int:
    """The CPU cores this process may use, shared among ``processes`` (at least 1): the
    default encoding threads of each of that many worker processes."""
    return max(1, _default_workers() // max(1, processes))


def _warn_if_exposed(host: str, settings: ServerSettings) -> None:
    if not _is_loopback(host) and settings.read_token is None:
        logger.warning(
            "listening on %s without a read token: anyone who reaches it can read the FAQ "
            "(set %s to require one)",
            host,
            READ_TOKEN_ENV,
        )


def _warm_up(retriever: FAQRetriever) -> None:
    """Answer one question, so that the first request does not load the query encoder."""
    started = time.perf_counter()
    try:
        retriever.ask("你好", k=1)
    except QueryError:  # pragma: no cover - a custom normalizer may reject it
        pass
    logger.info("model warm in %.2f s", time.perf_counter() - started)


def _log_to_stderr(level: str) -> None:
    """In a worker process (which does not run the command line's setup), send walletfaq's
    log lines to stderr as the command line does."""
    package_logger = logging.getLogger("walletfaq")
    if package_logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"walletfaq[{os.getpid()}]: %(message)s"))
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.WARNING if level.lower() != "info" else logging.INFO)
    package_logger.propagate = False


__all__ = [
    "ADMIN_TOKEN_ENV",
    "LOCK_SUFFIX",
    "READ_TOKEN_ENV",
    "WORKER_CONFIG_ENV",
    "AskPool",
    "AskTimeoutError",
    "EntryNotFoundError",
    "NotReadyError",
    "NothingToReloadError",
    "OverloadedError",
    "PayloadTooLargeError",
    "ReloadError",
    "ReloadResult",
    "Served",
    "ServedIndex",
    "ServerError",
    "ServerSettings",
    "ServiceMetrics",
    "UnauthorizedError",
    "app_from_environment",
    "create_app",
    "manifest_checksum",
    "serve_index",
    "threads_per_process",
    "serve",
]
