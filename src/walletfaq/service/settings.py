"""How the service bounds its work: :class:`ServerSettings`, its limits and the environment
variables it reads (the bearer tokens).

No web dependency: the command line builds and checks settings before anything is served.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walletfaq.errors import WalletFAQError
from walletfaq.retrieval.questions import (
    MAX_QUESTION_CHARS,
    check_clarify_margin,
    check_threshold,
)

READ_TOKEN_ENV = "WALLETFAQ_READ_TOKEN"
ADMIN_TOKEN_ENV = "WALLETFAQ_ADMIN_TOKEN"
"""Environment variables read by :meth:`ServerSettings.from_env` for the bearer tokens."""

MAX_K = 100
"""Largest ``k`` a request may ask for."""


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_process(processes: int = 1) -> int:
    """The CPU cores this process may use, shared among ``processes`` (at least 1): the
    default encoding threads of each of that many worker processes."""
    return max(1, _default_workers() // max(1, processes))


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
            would cut them to, :data:`walletfaq.retrieval.questions.MAX_QUESTION_CHARS`).
        max_batch: larger ``/v1/ask_batch`` requests get ``413``.
        retry_after_s: the ``Retry-After`` seconds sent with ``503``.
        read_token: when set, ``/v1/`` read endpoints require ``Authorization: Bearer
            <token>`` (the admin token is accepted too).
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
        threshold: the no-answer threshold of ``POST /v1/answer`` (in [-1, 1]), for every
            index this service serves, reloads included; ``None`` = the served index's own
            (saved with it). The index is not changed.
        fallback: the message ``POST /v1/answer`` gives when not confident; ``None`` = the
            served index's own.
        clarify_margin: the clarify margin of ``POST /v1/answer`` (in [0, 2]; 0 = never ask
            the user to choose); ``None`` = the served index's own. A request may give its own.
        clarify_message: what ``POST /v1/answer`` says before the options of a clarify;
            ``None`` = the served index's own.
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
    threshold: float | None = None
    fallback: str | None = None
    clarify_margin: float | None = None
    clarify_message: str | None = None

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
        if self.threshold is not None:
            check_threshold(self.threshold)
        if self.clarify_margin is not None:
            check_clarify_margin(self.clarify_margin)
        for name in ("fallback", "clarify_message"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise WalletFAQError(f"{name} must be a non-empty string or None, got {value!r}")
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


__all__ = [
    "ADMIN_TOKEN_ENV",
    "MAX_K",
    "READ_TOKEN_ENV",
    "ServerSettings",
    "threads_per_process",
]
