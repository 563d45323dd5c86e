"""Bearer-token access to the ``/v1/`` endpoints: the read token (when the server has one)
and the admin token (without one, the admin endpoints answer ``403``). The admin token also
reads: whoever may edit the FAQ may read it."""

from __future__ import annotations

import secrets
from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import Depends  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402

from walletfaq.service.errors import ForbiddenError, UnauthorizedError  # noqa: E402
from walletfaq.service.settings import ADMIN_TOKEN_ENV, READ_TOKEN_ENV, ServerSettings  # noqa: E402

BEARER = HTTPBearer(
    auto_error=False,
    description=f"Required on /v1/ endpoints when the server has a read token (${READ_TOKEN_ENV}).",
)
"""The ``Authorization: Bearer`` scheme both tokens use (no state: shared by every app)."""


def _check_bearer(
    credentials: HTTPAuthorizationCredentials | None, tokens: tuple[str, ...], placeholder: str
) -> None:
    """Raise 401 unless the request's bearer token equals one of ``tokens`` (each compared in
    constant time, all of them every time)."""
    given = (credentials.credentials if credentials is not None else "").encode()
    matches = [secrets.compare_digest(given, token.encode()) for token in tokens]
    if not any(matches):
        raise UnauthorizedError(
            f"a valid bearer token is required: send 'Authorization: Bearer {placeholder}'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def read_access(settings: ServerSettings) -> Any:
    """The dependency of the ``/v1/`` read endpoints: ``401`` unless the request carries
    ``settings.read_token`` or ``settings.admin_token`` (anyone may read when the read token
    is ``None``)."""
    tokens = tuple(t for t in (settings.read_token, settings.admin_token) if t is not None)

    async def require_read_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(BEARER),  # noqa: B008
    ) -> None:
        if settings.read_token is not None:
            _check_bearer(credentials, tokens, "<token>")

    return Depends(require_read_token)


def admin_access(settings: ServerSettings) -> Any:
    """The dependency of the admin endpoints: ``403`` when ``settings.admin_token`` is
    ``None``, else ``401`` unless the request carries it."""

    async def require_admin_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(BEARER),  # noqa: B008
    ) -> None:
        if settings.admin_token is None:
            raise ForbiddenError(
                f"the admin endpoints are disabled; start the server with {ADMIN_TOKEN_ENV} set"
            )
        _check_bearer(credentials, (settings.admin_token,), "<admin token>")

    return Depends(require_admin_token)


__all__ = ["BEARER", "admin_access", "read_access"]
