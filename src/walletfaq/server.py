"""Compatibility alias: the HTTP service moved to :mod:`walletfaq.service` (the app factory in
:mod:`walletfaq.service.app`, the runners in :mod:`walletfaq.service.run`, the settings in
:mod:`walletfaq.service.settings`, ...).

This module re-exports what ``walletfaq.server`` used to define, so existing imports such as
``from walletfaq.server import create_app, ServerSettings`` keep working; new code imports
from :mod:`walletfaq.service`. Nothing inside walletfaq imports this module. Like the old
module, importing it without the ``serve`` extra raises a one-line
:class:`~walletfaq.errors.WalletFAQError`.
"""

from __future__ import annotations

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from walletfaq.service.app import create_app  # noqa: E402
from walletfaq.service.errors import (  # noqa: E402
    AskTimeoutError,
    ConflictError,
    EntryNotFoundError,
    ForbiddenError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    ServerError,
    UnauthorizedError,
)
from walletfaq.service.holder import (  # noqa: E402
    LOCK_SUFFIX,
    NothingToReloadError,
    PersistError,
    ReloadError,
    ReloadResult,
    Served,
    ServedIndex,
    manifest_checksum,
)
from walletfaq.service.metrics import ServiceMetrics  # noqa: E402
from walletfaq.service.middleware import (  # noqa: E402
    BodyLimitMiddleware,
    MetricsMiddleware,
    Receive,
    SafeJSONResponse,
    Scope,
    Send,
)
from walletfaq.service.pool import AskPool  # noqa: E402
from walletfaq.service.routes.ask import (  # noqa: E402
    AnswerIn,
    AnswerOut,
    AskBatchIn,
    AskBatchOut,
    AskIn,
    AskOut,
    HitOut,
)
from walletfaq.service.routes.common import ErrorOut  # noqa: E402
from walletfaq.service.routes.entries import (  # noqa: E402
    CategoriesOut,
    EditOut,
    EntryIn,
    EntryOut,
    ReloadOut,
)
from walletfaq.service.routes.operations import ReadyOut, StatusOut, swagger_assets_dir  # noqa: E402
from walletfaq.service.run import (  # noqa: E402
    WORKER_CONFIG_ENV,
    app_from_environment,
    serve,
    serve_index,
)
from walletfaq.service.settings import (  # noqa: E402
    ADMIN_TOKEN_ENV,
    MAX_K,
    READ_TOKEN_ENV,
    ServerSettings,
    threads_per_process,
)

__all__ = [
    # the old module's __all__
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
    # its other public names
    "MAX_K",
    "AnswerIn",
    "AnswerOut",
    "AskBatchIn",
    "AskBatchOut",
    "AskIn",
    "AskOut",
    "BodyLimitMiddleware",
    "CategoriesOut",
    "ConflictError",
    "EditOut",
    "EntryIn",
    "EntryOut",
    "ErrorOut",
    "ForbiddenError",
    "HitOut",
    "MetricsMiddleware",
    "PersistError",
    "ReadyOut",
    "Receive",
    "ReloadOut",
    "SafeJSONResponse",
    "Scope",
    "Send",
    "StatusOut",
    "check_server_dependencies",
    "swagger_assets_dir",
]
