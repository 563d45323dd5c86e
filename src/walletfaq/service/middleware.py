"""The ASGI layers around the app and its JSON answers: :class:`BodyLimitMiddleware` (``413``
before anything parses a large body), :class:`MetricsMiddleware` (requests, errors and latency
per route, labelled from fixed sets) and :class:`SafeJSONResponse` (JSON that always encodes)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi.responses import JSONResponse  # noqa: E402

if TYPE_CHECKING:
    from walletfaq.service.metrics import ServiceMetrics

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
    """A JSON response that always encodes, whatever a 422 echoes of its request: text holding
    a lone surrogate (``"\\ud800"``) is written escaped, a float that JSON cannot hold (``nan``,
    ``inf``) as the string ``"NaN"``/``"Infinity"``/``"-Infinity"``, and any other value that
    is not JSON as its ``repr``."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError, TypeError):
            text = json.dumps(
                _json_safe(content), ensure_ascii=True, allow_nan=False, separators=(",", ":")
            )
            return text.encode("ascii")


def _json_safe(value: Any) -> Any:
    """``value`` with every part JSON cannot hold replaced by a string (see
    :class:`SafeJSONResponse`); strings stay as they are (``ensure_ascii`` escapes them)."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, (str, int, float)):
        return value
    return repr(value)


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


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
"""The HTTP methods counted under their own name; any other is counted as ``"other"``."""

UNMATCHED = "unmatched"
"""The ``endpoint`` label of a request that no route matched (an unknown path)."""


def method_label(method: str) -> str:
    """The ``method`` label of a request: ``method`` if it is in :data:`KNOWN_METHODS`, else
    ``"other"`` (a client may send any token as its method)."""
    return method if method in KNOWN_METHODS else "other"


def endpoint_label(scope: Scope) -> str:
    """The ``endpoint`` label of a request: the template of the route that matched
    (``/v1/entries/{entry_id}``: the app's own routes, a fixed set), else :data:`UNMATCHED`;
    never the path the client sent."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str) and template:
        return template
    # the schema and the docs' files: served by routes that set no template, labelled as such
    path = scope.get("path", "")
    if path == "/openapi.json":
        return path
    if isinstance(path, str) and path.startswith("/docs/assets/"):
        return "/docs/assets/{name}"
    return UNMATCHED


def status_label(status: int) -> str:
    """The ``status`` label: the HTTP status code, or ``"other"`` outside 100-599."""
    return str(status) if 100 <= status <= 599 else "other"


class MetricsMiddleware:
    """Counts requests, errors and latency per route template (``/v1/entries/{entry_id}``,
    never the raw path), method and status. Every label comes from a fixed set
    (:func:`endpoint_label`, :func:`method_label`, :func:`status_label`), so no client can
    grow ``/metrics`` by sending made-up paths or methods."""

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
            endpoint, code = endpoint_label(scope), status_label(status)
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, method_label(scope["method"]), code).inc()
            if status >= 400:
                self.metrics.errors.labels(endpoint, code).inc()


__all__ = [
    "KNOWN_METHODS",
    "UNMATCHED",
    "BodyLimitMiddleware",
    "MetricsMiddleware",
    "Receive",
    "SafeJSONResponse",
    "Scope",
    "Send",
    "endpoint_label",
    "method_label",
    "status_label",
]
