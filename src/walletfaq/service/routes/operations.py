"""The operations endpoints, open without a token (they reveal no FAQ content), with their
models: ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus text format), and
outside the schema ``GET /`` (the self-contained playground), ``GET /docs`` and its assets
(Swagger UI served from the ``swagger-ui-py`` package: no CDN).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import APIRouter, Request  # noqa: E402
from fastapi.openapi.docs import get_swagger_ui_html  # noqa: E402
from fastapi.responses import FileResponse, HTMLResponse, Response  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from walletfaq.service.errors import EntryNotFoundError, NotReadyError  # noqa: E402
from walletfaq.service.routes.common import StrictJSONRoute, error_responses  # noqa: E402
from walletfaq.service.state import ServiceState  # noqa: E402

logger = logging.getLogger(__name__)

SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The Swagger UI files the docs page loads, served from the swagger-ui-py package."""


class StatusOut(BaseModel):
    """A liveness answer."""

    status: str


class LagOut(BaseModel):
    """How far a replica is behind its store."""

    revisions: int = Field(description="store_head - revision")
    seconds: float = Field(
        description="for how long the replica has known of a revision it does not serve yet "
        "(0 when it serves the head it last read)"
    )


class StoreOut(BaseModel):
    """Where a replica stands against its store of record (``walletfaq serve --store``)."""

    url: str = Field(description="the store (password hidden)")
    revision: int = Field(description="the store revision served")
    store_head: int = Field(description="the latest revision the store reported")
    lag: LagOut
    contact_age_s: float = Field(
        description="seconds since the store last answered (how stale the content may be "
        "while it is unreachable)"
    )
    listening: bool = Field(description="PostgreSQL LISTEN connection up (else polling)")
    degraded_reason: str | None = Field(
        description="why the store cannot be followed now (the last revision is served); "
        "null when healthy"
    )


class LogOut(BaseModel):
    """Where the query log stands (:class:`walletfaq.service.traffic.LogStatus`)."""

    enabled: bool = Field(description="whether questions are logged")
    store: str | None = Field(description="the store logged to (password hidden); null when off")
    reason: str | None = Field(description="why logging is off; null when on")
    written: int = Field(description="records written to the store since start")
    dropped: int = Field(description="records dropped: the queue was full, or the app closing")
    failed: int = Field(description="records lost: the store kept failing to write them")
    rejected: int = Field(description="records the store refused")
    pending: int = Field(description="records queued or being written")
    retention_days: float | None = Field(
        description="logged questions older than this are deleted daily; null: kept"
    )
    purged: int = Field(description="logged questions deleted by retention since start")
    last_purge: str | None = Field(description="when the last purge ended (ISO 8601, UTC)")
    purge_error: str | None = Field(description="why the last purge failed; null if it did not")


class ReadyOut(BaseModel):
    """A readiness answer: what index is served."""

    status: str = Field(
        description="ready; or degraded: a replica whose store is unreachable (or whose "
        "latest change cannot be applied) answers from its last revision, still 200"
    )
    entries: int
    vectors: int
    model: str
    index_version: int = Field(
        description="the version saved in the index directory at start (1 for a new build), "
        "+1 per applied edit or reload; survives a restart"
    )
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
    store: StoreOut | None = Field(
        None, description="the store of record followed (serve --store); null without one"
    )
    log: LogOut = Field(description="the query log (questions and feedback; --no-log: off)")


def swagger_assets_dir() -> Path | None:
    """The folder of Swagger UI files shipped by the ``swagger-ui-py`` package, if installed."""
    try:
        import swagger_ui
    except ImportError:
        return None
    folder = Path(swagger_ui.__file__).parent / "static"
    return folder if all((folder / name).is_file() for name in SWAGGER_ASSETS) else None


def make_router(state: ServiceState) -> APIRouter:
    """The operations routes of the app whose parts are ``state``."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    served_index, metrics = state.index, state.metrics
    router = APIRouter(route_class=StrictJSONRoute)

    @router.get("/healthz", response_model=StatusOut, tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """The process is alive and its event loop answers."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        response_model=ReadyOut,
        responses=error_responses({503: "no usable index"}),
        tags=["operations"],
    )
    async def readyz() -> dict[str, Any]:
        """An index is loaded and can be searched (200, also while degraded: reads go on from
        the last revision; 503 only without a usable index)."""
        served = served_index.current
        retriever = served.retriever
        vectors = int(retriever.index.ntotal)
        if vectors == 0 or len(retriever.corpus) == 0:
            raise NotReadyError("the index is empty")
        store = None if retriever.follower is None else retriever.follower.status()
        return {
            "status": "ready" if store is None or store.healthy else "degraded",
            "entries": len(retriever.corpus),
            "vectors": vectors,
            "model": retriever.encoder.name,
            "index_version": served.version,
            "corpus_hash": retriever.corpus.content_hash()[:16],
            "index_checksum": served.checksum[:16] if served.checksum is not None else None,
            "reload_error": served_index.last_error if served_index.failing else None,
            "log": state.traffic.status().to_dict(),
            "store": None
            if store is None
            else {
                "url": store.store,
                "revision": store.revision,
                "store_head": store.store_head,
                "lag": {"revisions": store.lag_revisions, "seconds": store.lag_seconds},
                "contact_age_s": store.contact_age_s,
                "listening": store.listening,
                "degraded_reason": store.degraded_reason,
            },
        }

    @router.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics_endpoint() -> Response:
        """Prometheus text format: requests, latency, errors, cache hits, index, query log."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    playground = resources.files("walletfaq.service").joinpath("static/playground.html")
    playground_html = playground.read_text(encoding="utf-8")

    @router.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(playground_html)

    assets = swagger_assets_dir()
    if assets is None:
        logger.warning("swagger-ui-py is not installed: /docs is disabled (see /openapi.json)")
    else:

        @router.get("/docs", include_in_schema=False)
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

        @router.get("/docs/assets/{name}", include_in_schema=False)
        async def docs_asset(name: str) -> FileResponse:
            if name not in SWAGGER_ASSETS:
                raise EntryNotFoundError(f"no docs asset {name!r}")
            return FileResponse(
                assets / name,
                media_type=SWAGGER_ASSETS[name],
                headers={"Cache-Control": "public, max-age=86400"},
            )

    return router


__all__ = [
    "SWAGGER_ASSETS",
    "LagOut",
    "LogOut",
    "ReadyOut",
    "StatusOut",
    "StoreOut",
    "make_router",
    "swagger_assets_dir",
]
