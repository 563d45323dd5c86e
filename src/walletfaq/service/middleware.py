"""The ASGI layers around the app and its JSON answers: :class:`BodyLimitMiddleware` (``413``
before anything parses a large body), :class:`MetricsMiddleware` (requests, errors and latency
per route) and :class:`SafeJSONResponse` (JSON that always encodes)."""

from __future__ import annotations

import json
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
            endpoint = _endpoint_label(scope)
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(endpoint, str(status)).inc()


def _endpoint_label(scope: Scope) -> str:
    """The route template of a request; the schema and the docs' files, whose routes FastAPI
    or Starlette serve without setting one, by their own (few) labels; else ``unmatched``."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    raw = scope.get("path", "")
    if raw == "/openapi.json":
        return raw
    if raw.startswith("/docs/assets/"):
        return "/docs/assets/{name}"
    return "unmatched"


__all__ = [
    "BodyLimitMiddleware",
    "MetricsMiddleware",
    "Receive",
    "SafeJSONResponse",
    "Scope",
    "Send",
]
