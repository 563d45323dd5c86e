"""Store URLs and database engines: SQLite (one file) and PostgreSQL (psycopg 3).

A plain path is an SQLite store (``faq.db`` → ``sqlite:///faq.db``). ``postgresql://`` URLs use
psycopg 3. On SQLite every connection runs in WAL mode with full sync, and a *write*
transaction starts with ``BEGIN IMMEDIATE`` (it takes the database's write lock first, so two
writers queue instead of both reading the same head revision); read transactions start with a
plain ``BEGIN`` and never block writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from walletfaq.errors import StoreError

WRITE_OPTION = "walletfaq_write"
"""Execution option marking a connection whose next transaction writes."""

SQLITE_BUSY_TIMEOUT_S = 60.0
"""How long an SQLite writer waits for another writer's lock before failing."""


def store_url(location: str | Path) -> str:
    """The SQLAlchemy URL of a store given as a URL or as the path of an SQLite file.

    ``postgresql://`` and ``postgres://`` URLs are given the psycopg 3 driver.

    Raises:
        StoreError: the location is empty or names a database walletfaq does not support.
    """
    text = str(location).strip()
    if not text:
        raise StoreError("the store location is empty; pass a file path or a postgresql:// URL")
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "postgresql+psycopg"):
        return text
    raise StoreError(
        f"unsupported store URL scheme {scheme!r} in {redact(text)!r}; use a file path, "
        "sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url`` (from :func:`store_url`), set up for the store.

    Raises:
        StoreError: the driver for the URL is not installed, or the URL is malformed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"malformed store URL {url!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError(
                "an in-memory SQLite store would vanish with its connection; pass a file path"
            )
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _set_up_sqlite(engine)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the database driver {exc.name!r} is not installed; "
            "install the store extra: pip install 'walletfaq[store]'"
        ) from None


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that takes the writer's lock first (SQLite)."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that sees one consistent state of the store."""
    with engine.connect() as connection, connection.begin():
        if not is_sqlite(engine):
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield connection


def _set_up_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions begin where we say (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
