"""Checks a database before use and brings its schema up to date (Alembic, run in code).

On open, the store's schema revision is read from ``walletfaq_alembic_version``:

- none, and the database has no tables: a new store; the schema is created when asked to
  (``create=True``), otherwise the open is refused (nothing there yet);
- none, but other tables: not a walletfaq store, refused (walletfaq does not write into a
  database it does not own);
- a revision this walletfaq does not know: written by a newer walletfaq, refused;
- an older revision: upgraded, in one transaction, under the writer's lock (and a PostgreSQL
  advisory lock), so two processes opening at once do not both migrate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from walletfaq.errors import StoreError
from walletfaq.store.engine import is_sqlite, read_transaction, write_transaction

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "walletfaq_alembic_version"
_ADVISORY_LOCK_KEY = 0x57414C4C  # "WALL": serialises schema upgrades on PostgreSQL


@dataclass(frozen=True)
class SchemaState:
    """What a database holds before walletfaq touches it."""

    tables: frozenset[str]
    revision: str | None


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of the store's migrations (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def latest_schema_revision() -> str:
    """The newest schema revision this walletfaq knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the store's migrations folder has no revision"
    return head


def prepare(engine: Engine, *, create: bool, where: str) -> None:
    """Refuse a database that is not a usable walletfaq store; create or upgrade its schema.

    Args:
        engine: the database.
        create: create the schema in an empty database (``walletfaq store init``).
        where: the store's location, for messages (password hidden).

    Raises:
        StoreError: nothing there and ``create`` is false, the database has tables but no
            walletfaq schema, or its schema is newer than this walletfaq.
    """
    with read_transaction(engine) as connection:
        state = _state(connection)
    if not _needs_work(state, create=create, where=where):
        return
    with write_transaction(engine) as connection:
        if not is_sqlite(engine):
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        state = _state(connection)  # another process may have migrated meanwhile
        if _needs_work(state, create=create, where=where):
            command.upgrade(alembic_config(connection), "head")


def _state(connection: Connection) -> SchemaState:
    tables = frozenset(inspect(connection).get_table_names())
    revision = None
    if VERSION_TABLE in tables:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        revision = context.get_current_revision()
    return SchemaState(tables=tables, revision=revision)


def _needs_work(state: SchemaState, *, create: bool, where: str) -> bool:
    latest = latest_schema_revision()
    if state.revision is None:
        others = sorted(state.tables - {VERSION_TABLE})
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise StoreError(
                f"{where} is not a walletfaq store: it has other tables ({shown}) and no walletfaq "
                "schema; give the store a database (or file) of its own"
            )
        if not create:
            raise StoreError(
                f"no walletfaq store at {where} (the database is empty); create one with "
                "`walletfaq store init --store URL`"
            )
        return True
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    if state.revision not in known:
        raise StoreError(
            f"the store at {where} was written by a newer walletfaq (schema revision "
            f"{state.revision!r}; this walletfaq knows up to {latest!r}); upgrade walletfaq "
            "to use it"
        )
    return state.revision != latest
