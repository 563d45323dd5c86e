"""Opening a store: what is created, upgraded or refused, and with what message."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import walletfaq
from tests.store_support import small_corpus
from walletfaq import StoreError
from walletfaq.store import open_store, schema
from walletfaq.store.engine import store_url
from walletfaq.store.migrate import VERSION_TABLE, latest_schema_revision

ROOT = Path(__file__).resolve().parents[1]


def test_the_migrated_database_matches_the_schema_module(store_location: str) -> None:
    with open_store(store_location, create=True) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, schema.metadata) == []
        assert context.get_current_revision() == latest_schema_revision()


def test_an_empty_database_is_not_opened_without_create(store_location: str) -> None:
    with pytest.raises(StoreError, match="no walletfaq store at .*walletfaq store init"):
        open_store(store_location)


def test_a_missing_sqlite_file_is_not_created_by_a_plain_open(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no walletfaq store"):
        open_store(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()


def test_an_sqlite_store_in_a_missing_folder_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder of the SQLite store .* does not exist"):
        open_store(str(tmp_path / "missing" / "faq.db"), create=True)


def test_a_store_written_by_a_newer_schema_is_refused(store_location: str) -> None:
    with open_store(store_location, create=True) as store, store.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(StoreError, match=r"newer walletfaq \(schema revision '9999'.*upgrade"):
        open_store(store_location)


def test_a_database_of_someone_elses_tables_is_refused(store_location: str) -> None:
    if store_location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store_location) as conn:
            conn.execute("CREATE TABLE customers (id integer)")
    else:
        with sqlite3.connect(store_location) as conn:
            conn.execute("CREATE TABLE customers (id integer)")
    with pytest.raises(StoreError, match=r"is not a walletfaq store: it has other tables \(cus"):
        open_store(store_location, create=True)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "faq.db"
    path.write_bytes(b"this is not an SQLite database, just bytes" * 100)
    with pytest.raises(StoreError, match="cannot use the store at .*not a database"):
        open_store(str(path))
    assert path.read_bytes().startswith(b"this is not")  # left untouched


def test_an_unreachable_postgresql_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot use the store at postgresql"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_a_path_is_an_sqlite_store_url(tmp_path: Path) -> None:
    assert store_url(tmp_path / "faq.db") == f"sqlite:///{tmp_path / 'faq.db'}"
    assert store_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"


def test_an_unsupported_url_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported store URL scheme 'mysql'"):
        open_store("mysql://u@h/db")


def test_the_store_url_hides_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://user:secret@127.0.0.1:1/db?connect_timeout=2")
    assert "secret" not in str(caught.value)


def test_open_store_is_public_and_opens_a_store(tmp_path: Path) -> None:
    with walletfaq.open_store(str(tmp_path / "faq.db"), create=True) as store:
        store.init(small_corpus(), author="alice")
        assert store.head() == 1


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )


def test_importing_walletfaq_does_not_import_sqlalchemy() -> None:
    done = _python("import sys, walletfaq; print('sqlalchemy' in sys.modules)")
    assert done.stdout.strip() == "False", done.stderr


def test_without_the_store_extra_the_error_names_it() -> None:
    done = _python(
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "import walletfaq\n"
        "try:\n    walletfaq.open_store('x.db')\n"
        "except walletfaq.StoreError as exc:\n    print(exc)\n"
    )
    assert "pip install 'walletfaq[store]'" in done.stdout, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1


def test_processes_opening_a_new_store_at_once_create_its_schema_once(
    store_location: str,
) -> None:
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def opener() -> None:
        barrier.wait()
        try:
            open_store(store_location, create=True).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with open_store(store_location) as store:
        assert store.head() == 0


NEXT_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "9000"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("walletfaq_revisions") as batch:
        batch.add_column(sa.Column("note", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("walletfaq_revisions") as batch:
        batch.drop_column("note")
"""


def test_an_older_store_is_upgraded_on_open_and_keeps_its_content(
    store_location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import walletfaq.store.migrate as migrate

    with open_store(store_location, create=True) as store:
        store.init(small_corpus(), author="alice")
    newer = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, newer)
    (newer / "versions" / "r9000_note.py").write_text(NEXT_REVISION, encoding="utf-8")
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", newer)  # "a newer walletfaq"
    with open_store(store_location) as upgraded, upgraded.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert context.get_current_revision() == "9000"
        assert upgraded.entries().entries == small_corpus().entries
    monkeypatch.undo()  # back to this walletfaq, which does not know 9000
    with pytest.raises(StoreError, match="newer walletfaq .*'9000'"):
        open_store(store_location)
