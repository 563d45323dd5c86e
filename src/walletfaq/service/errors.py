"""The errors the service answers with: :class:`ServerError` and its subclasses, each with its
HTTP status, and :data:`SERVING_STATUS`, the statuses of the errors the served-index holder
raises (:mod:`walletfaq.service.holder` knows nothing of HTTP).

No web dependency: :mod:`walletfaq.service.app` turns them into JSON answers.
"""

from __future__ import annotations

from walletfaq.errors import WalletFAQError
from walletfaq.service.holder import (
    EditConflictError,
    NothingToReloadError,
    PersistError,
    ReloadError,
)


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
    """The request conflicts with what the service holds: an entry with this id already
    exists, a proposal was already decided (409)."""

    status = 409


class NotFoundError(ServerError):
    """Nothing has the requested id: an entry, a logged request, a proposal (404)."""

    status = 404


class EntryNotFoundError(NotFoundError):
    """No entry has the requested id (404)."""


class NotConfiguredError(ServerError):
    """The endpoint needs what this service was not started with: a query log (not
    ``--no-log``), a store of record (``serve --store``) (409)."""

    status = 409


class OverloadedError(ServerError):
    """Every worker is busy and the waiting queue is full (503, with ``Retry-After``)."""

    status = 503


class AskTimeoutError(ServerError):
    """An ask took longer than the per-request timeout (504)."""

    status = 504


class NotReadyError(ServerError):
    """The service has no usable index (503)."""

    status = 503


class PreconditionFailedError(ServerError):
    """A conditional edit (``If-Match: <revision>``) lost: the entry changed after that
    revision of the store (412); nothing was written."""

    status = 412


class StoreDownError(ServerError):
    """The store of record (or the log store) could not be reached for an edit, feedback or a
    proposal (503, with ``Retry-After``); nothing was written, reads go on from the last
    revision served."""

    status = 503

    @classmethod
    def retry_after(cls, message: str, seconds: int) -> StoreDownError:
        """A 503 saying ``message``, asking the client to retry after ``seconds``."""
        return cls(message, headers={"Retry-After": str(seconds)})


SERVING_STATUS: dict[type[WalletFAQError], int] = {
    NothingToReloadError: 409,
    EditConflictError: 409,
    ReloadError: 500,
    PersistError: 500,
}
"""The statuses of the errors :class:`ServedIndex` raises (:mod:`walletfaq.service.holder`, no HTTP
there): 409 nothing on disk to reload, or the directory replaced during an edit; 500 a directory
that cannot be loaded or an edit that cannot be persisted."""


__all__ = [
    "SERVING_STATUS",
    "AskTimeoutError",
    "ConflictError",
    "EntryNotFoundError",
    "ForbiddenError",
    "NotConfiguredError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PreconditionFailedError",
    "ServerError",
    "StoreDownError",
    "UnauthorizedError",
]
