"""Layer 6, service: walletfaq over HTTP (FastAPI).

The app factory, its routers per area, settings, schemas, middleware, metrics, the encoding
pool and the served-index holder (hot reload, edits across worker processes). Imports the
layers below it; inside the package only the command line imports it.

>>> from walletfaq.service import ServerSettings, create_app
>>> app = create_app(retriever, ServerSettings(workers=2))  # doctest: +SKIP

The public names below are imported lazily: ``import walletfaq.service.holder`` (no web
dependency) works without the ``serve`` extra; the app and the runners need it, and without
it their import raises a one-line :class:`~walletfaq.errors.WalletFAQError`.

Modules: :mod:`.app` (:func:`create_app`: routers, handlers, middleware, lifespan),
:mod:`.run` (:func:`serve`, :func:`serve_index`, :func:`serve_store`,
:func:`app_from_environment`), :mod:`.store_edits` (admin edits written to the store),
:mod:`.settings`, :mod:`.errors`, :mod:`.state`, :mod:`.pool`, :mod:`.metrics`,
:mod:`.middleware`, :mod:`.auth`, :mod:`.routes`, :mod:`.holder`, :mod:`.extra`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "create_app": "walletfaq.service.app",
    "serve": "walletfaq.service.run",
    "serve_index": "walletfaq.service.run",
    "serve_store": "walletfaq.service.run",
    "app_from_environment": "walletfaq.service.run",
    "ServerSettings": "walletfaq.service.settings",
    "threads_per_process": "walletfaq.service.settings",
    "check_server_dependencies": "walletfaq.service.extra",
}

__all__ = [
    "ServerSettings",
    "app_from_environment",
    "check_server_dependencies",
    "create_app",
    "serve",
    "serve_index",
    "serve_store",
    "threads_per_process",
]

if TYPE_CHECKING:
    from walletfaq.service.app import create_app
    from walletfaq.service.extra import check_server_dependencies
    from walletfaq.service.run import app_from_environment, serve, serve_index, serve_store
    from walletfaq.service.settings import ServerSettings, threads_per_process


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # found once, then a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
