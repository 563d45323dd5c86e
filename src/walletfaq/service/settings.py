"""How the service bounds its work: :class:`ServerSettings`, its limits and the environment
variables it reads (the bearer tokens).

No web dependency: the command line builds and checks settings before anything is served.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
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
ADMIN_TOKENS_ENV = "WALLETFAQ_ADMIN_TOKENS"
"""Environment variables read by :meth:`ServerSettings.from_env` for the bearer tokens."""

SINGLE_ADMIN_NAME = "admin"
"""The name (store revision author) of the single ``WALLETFAQ_ADMIN_TOKEN``."""

ADMIN_NAME_RULE = (
    "a name is 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or a digit"
)
ADMIN_TOKEN_RULE = (
    "a token is 1 to 512 characters among ASCII letters, digits and - . _ ~ + / "
    "(trailing '=' allowed: the bearer token syntax of RFC 6750)"
)
_ADMIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ADMIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_MAX_TOKEN_CHARS = 512


def parse_admin_tokens(value: str, variable: str = ADMIN_TOKENS_ENV) -> tuple[tuple[str, str], ...]:
    """The ``(name, token)`` pairs of ``$WALLETFAQ_ADMIN_TOKENS``.

    Syntax: ``NAME:TOKEN`` items separated by commas (spaces around an item are ignored),
    e.g. ``alice:3kd8...,bob:9sj2...``; names follow :data:`ADMIN_NAME_RULE`, tokens
    :data:`ADMIN_TOKEN_RULE`; names and tokens are unique. An empty value is no token.

    Raises:
        WalletFAQError: one line naming ``variable``, the item (1-based) and its first
            character's position; a token is never quoted back.
    """
    if not value.strip():
        return ()
    pairs: list[tuple[str, str]] = []
    start = 0
    for number, raw in enumerate(value.split(","), 1):
        where = f"{variable}: item {number} (at character {start + 1})"
        start += len(raw) + 1
        item = raw.strip()
        if not item:
            raise WalletFAQError(f"{where} is empty; remove the extra ','")
        name, colon, token = item.partition(":")
        if not colon:
            raise WalletFAQError(
                f"{where} is not NAME:TOKEN (no ':'); write items as name:token separated by "
                "commas, e.g. alice:TOKEN1,bob:TOKEN2"
            )
        pairs.append((_checked_name(name, where), _checked_token(token, f"{where}, {name!r}")))
    return _unique(pairs, variable)


def _checked_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not _ADMIN_NAME.fullmatch(name):
        shown = repr(name[:70]) if isinstance(name, str) else type(name).__name__
        raise WalletFAQError(f"{where}: the name {shown} is not allowed: {ADMIN_NAME_RULE}")
    return name


def _checked_token(token: str, where: str) -> str:
    if (
        not isinstance(token, str)
        or len(token) > _MAX_TOKEN_CHARS
        or not _ADMIN_TOKEN.fullmatch(token)
    ):
        size = f"{len(token)} characters" if isinstance(token, str) else type(token).__name__
        raise WalletFAQError(f"{where}: the token ({size}) is not allowed: {ADMIN_TOKEN_RULE}")
    return token


def _unique(pairs: Iterable[tuple[str, str]], variable: str) -> tuple[tuple[str, str], ...]:
    names: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for number, (name, token) in enumerate(pairs, 1):
        if name in names:
            raise WalletFAQError(
                f"{variable}: item {number}: the name {name!r} is also item {names[name]}; "
                "give each admin one name"
            )
        if token in tokens:
            raise WalletFAQError(
                f"{variable}: item {number} ({name!r}) has the token of item {tokens[token]}; "
                "give each admin a token of their own (the token names the author)"
            )
        names[name], tokens[token] = number, number
    return tuple((name, token) for name, token in pairs)


MAX_K = 100
"""Largest ``k`` a request may ask for."""

DEFAULT_LOG_RETENTION_DAYS = 90.0
"""How long logged questions are kept by default (``--log-retention-days``)."""


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
            its holder is named ``admin`` (the author of the store revisions it makes).
        admin_tokens: named admin tokens, ``(name, token)`` pairs (:func:`parse_admin_tokens`
            gives the rules; from ``$WALLETFAQ_ADMIN_TOKENS``), besides or instead of
            ``admin_token``; the name is the author of the store revisions the token makes.
            Without any admin token the admin endpoints answer 403.
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
        query_log: log every question (``/v1/ask``, ``/v1/ask_batch``, ``/v1/answer``) to a
            store (:mod:`walletfaq.service.traffic`); ``False`` = ``--no-log``: nothing is
            logged, ``POST /v1/feedback`` answers 409.
        log_store: the store (SQLite path or ``postgresql://`` URL) the questions are logged
            to, created if empty; ``None`` = the served store of record when there is one
            (``serve --store``), else no log.
        log_retention_days: logged questions (and their feedback) older than this many days
            are deleted, at start and then daily; ``0`` = kept.
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
    admin_tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    persist_dir: Path | None = None
    reload_interval_s: float = 2.0
    threshold: float | None = None
    fallback: str | None = None
    clarify_margin: float | None = None
    clarify_message: str | None = None
    query_log: bool = True
    log_store: str | None = field(default=None, repr=False)  # a URL may hold a password
    log_retention_days: float = DEFAULT_LOG_RETENTION_DAYS

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

        self._check_admin_tokens()
        self._check_log()

    def _check_log(self) -> None:
        if not isinstance(self.query_log, bool):
            raise WalletFAQError(f"query_log must be True or False, got {self.query_log!r}")
        store = self.log_store
        if store is not None and (not isinstance(store, str) or not store.strip()):
            raise WalletFAQError("log_store must be a store location (a path or a URL) or None")
        if store is not None and not self.query_log:
            raise WalletFAQError(
                "log_store is set while query_log is off (--no-log): choose one of them"
            )
        days = self.log_retention_days
        if (
            isinstance(days, bool)
            or not isinstance(days, (int, float))
            or not 0 <= days < float("inf")
        ):
            raise WalletFAQError(
                f"log_retention_days must be a number of days >= 0 (0 = keep the log), got {days!r}"
            )

    def _check_admin_tokens(self) -> None:
        pairs = self.admin_tokens
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
            raise WalletFAQError(
                f"admin_tokens must be (name, token) pairs, got {type(pairs).__name__}; "
                f"set {ADMIN_TOKENS_ENV}=name:token,... instead"
            )
        checked = []
        for number, pair in enumerate(pairs, 1):
            where = f"admin_tokens: item {number}"
            if isinstance(pair, (str, bytes)) or len(tuple(pair)) != 2:
                raise WalletFAQError(f"{where} is not a (name, token) pair")
            name, token = tuple(pair)
            checked.append((_checked_name(name, where), _checked_token(token, where)))
        if self.admin_token is not None:
            checked.insert(0, (SINGLE_ADMIN_NAME, self.admin_token))
        _unique(checked, f"admin_tokens (with {ADMIN_TOKEN_ENV} named {SINGLE_ADMIN_NAME!r})")
        object.__setattr__(self, "admin_tokens", tuple(checked[self.admin_token is not None :]))

    @property
    def admins(self) -> tuple[tuple[str, str], ...]:
        """Every admin token with its holder's name: ``admin_token`` (named ``admin``), then
        ``admin_tokens``; empty when the admin endpoints are disabled."""
        single = () if self.admin_token is None else ((SINGLE_ADMIN_NAME, self.admin_token),)
        return (*single, *self.admin_tokens)

    @property
    def queue_limit(self) -> int:
        """How many requests may wait for a worker (``queue_size`` resolved)."""
        return 4 * self.workers if self.queue_size is None else self.queue_size

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings with ``read_token`` from ``$WALLETFAQ_READ_TOKEN``, ``admin_token`` from
        ``$WALLETFAQ_ADMIN_TOKEN`` and ``admin_tokens`` from ``$WALLETFAQ_ADMIN_TOKENS``
        (:func:`parse_admin_tokens`; unset or empty: no token); ``overrides`` whose value is
        not ``None`` replace the defaults.

        Raises:
            WalletFAQError: a malformed ``$WALLETFAQ_ADMIN_TOKENS`` (one line naming the
                variable and the item), or a setting out of range.
        """
        values = {name: value for name, value in overrides.items() if value is not None}
        if "read_token" not in values:
            values["read_token"] = os.environ.get(READ_TOKEN_ENV) or None
        if "admin_token" not in values:
            values["admin_token"] = os.environ.get(ADMIN_TOKEN_ENV) or None
        if "admin_tokens" not in values:
            values["admin_tokens"] = parse_admin_tokens(os.environ.get(ADMIN_TOKENS_ENV, ""))
        return cls(**values)


__all__ = [
    "ADMIN_NAME_RULE",
    "ADMIN_TOKENS_ENV",
    "ADMIN_TOKEN_ENV",
    "ADMIN_TOKEN_RULE",
    "DEFAULT_LOG_RETENTION_DAYS",
    "SINGLE_ADMIN_NAME",
    "MAX_K",
    "READ_TOKEN_ENV",
    "ServerSettings",
    "parse_admin_tokens",
    "threads_per_process",
]
