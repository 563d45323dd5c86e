"""Bearer-token access to the ``/v1/`` endpoints: the read token (when the server has one)
and the admin tokens (without one, the admin endpoints answer ``403``). An admin token also
reads: whoever may edit the FAQ may read it. Each admin token has a name
(:attr:`ServerSettings.admins`: ``admin`` for ``$WALLETFAQ_ADMIN_TOKEN``, the given names for
``$WALLETFAQ_ADMIN_TOKENS``), which :func:`admin_access` returns: the author of the edit."""

from __future__ import annotations

import secrets
from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import Depends  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402

from walletfaq.service.errors import ForbiddenError, UnauthorizedError  # noqa: E402
from walletfaq.service.settings import (  # noqa: E402
    ADMIN_TOKEN_ENV,
    ADMIN_TOKENS_ENV,
    READ_TOKEN_ENV,
    ServerSettings,
)

BEARER = HTTPBearer(
    auto_error=False,
    description=f"Required on /v1/ endpoints when the server has a read token (${READ_TOKEN_ENV}).",
)
"""The ``Authorization: Bearer`` scheme both tokens use (no state: shared by every app)."""


def _check_bearer(
    credentials: HTTPAuthorizationCredentials | None,
    tokens: tuple[tuple[str, str], ...],
    placeholder: str,
) -> str:
    """The name of the one of ``tokens`` (``(name, token)`` pairs) that the request's bearer
    token equals; 401 when none does. Each is compared in constant time, all of them every
    time, whichever matches."""
    given = (credentials.credentials if credentials is not None else "").encode()
    matches = [name for name, token in tokens if secrets.compare_digest(given, token.encode())]
    if not matches:
        raise UnauthorizedError(
            f"a valid bearer token is required: send 'Authorization: Bearer {placeholder}'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return matches[0]


def read_access(settings: ServerSettings) -> Any:
    """The dependency of the ``/v1/`` read endpoints: ``401`` unless the request carries
    ``settings.read_token`` or ``settings.admin_token`` (anyone may read when the read token
    is ``None``)."""
    read = () if settings.read_token is None else (("reader", settings.read_token),)
    tokens = (*read, *settings.admins)

    async def require_read_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(BEARER),  # noqa: B008
    ) -> None:
        if settings.read_token is not None:
            _check_bearer(credentials, tokens, "<token>")

    return Depends(require_read_token)


def admin_access(settings: ServerSettings) -> Any:
    """The dependency of the admin endpoints: ``403`` when the server has no admin token,
    else ``401`` unless the request carries one; its value is the token's name (the author of
    the edit)."""

    async def require_admin_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(BEARER),  # noqa: B008
    ) -> str:
        if not settings.admins:
            raise ForbiddenError(
                f"the admin endpoints are disabled; start the server with {ADMIN_TOKEN_ENV} "
                f"or {ADMIN_TOKENS_ENV} set"
            )
        return _check_bearer(credentials, settings.admins, "<admin token>")

    return Depends(require_admin_token)


__all__ = ["BEARER", "admin_access", "read_access"]
