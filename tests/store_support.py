"""Fixtures of the store tests: a real throwaway PostgreSQL cluster, and a fresh empty store
location on each backend (``store_location`` is parametrised: SQLite, then PostgreSQL).

The cluster is Debian's PostgreSQL (``apt-get install postgresql``; ``.ci/run`` installs it):
``initdb`` and ``pg_ctl`` run as an unprivileged user (``walletfaq-pg``, created if needed, when
the tests run as root), it listens on 127.0.0.1 on a free port and on a unix socket in its own
temporary folder, with ``fsync`` off (a test cluster), and is stopped and removed at the end of
the session. Each test gets a database of its own. Without the binaries, the PostgreSQL tests
skip, saying so.

tests/conftest.py registers these fixtures.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from walletfaq.data.corpus import Corpus

if TYPE_CHECKING:
    from walletfaq.store import Store

PG_USER = "walletfaq-pg"

SMALL_ENTRIES = [
    {
        "id": f"q{number}",
        "category": "money" if number % 2 else "account",
        "question": f"问题{number}怎么办",
        "answer": f"答案{number}。",
        "alt_questions": [f"问题{number}的另一种问法", f"question {number}"],
    }
    for number in range(1, 6)
]


def small_corpus() -> Corpus:
    """Five entries: q1..q5."""
    return Corpus.from_entries(SMALL_ENTRIES, source="small")


def postgres_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL's binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parents[1].name)
    except ValueError:
        return 0.0


class PostgresCluster:
    """A throwaway PostgreSQL cluster: started on construction, :meth:`stop` removes it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="walletfaq-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_user = os.geteuid() == 0
        if self._as_user:
            _ensure_user(PG_USER)
            shutil.chown(self.root, PG_USER, PG_USER)
        self._names = itertools.count(1)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        """Start the server (again, after :meth:`stop_server`: same port, same data)."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop_server(self) -> None:
        """``pg_ctl stop -m fast``: sessions are ended, the data stays; :meth:`start` again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; its URL."""
        import psycopg

        name = f"store_test_{next(self._names)}"
        with psycopg.connect(self.url()) as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._as_user:
            command = ["runuser", "-u", PG_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.root)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ensure_user(name: str) -> None:
    if subprocess.run(["id", "-u", name], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A running throwaway PostgreSQL cluster, removed after the session (skips, saying why,
    when PostgreSQL is not installed)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on "
            "PATH): apt-get install postgresql to run the PostgreSQL store tests"
        )
    cluster = PostgresCluster(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where to create a new store: an SQLite file, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "faq.db")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()


@pytest.fixture(name="store")
def store_with_small_corpus(store_location: str) -> Iterator[Store]:
    """A new store on each backend holding :func:`small_corpus` as revision 1 (by alice).
    Test modules that want it import it (``store_with_small_corpus``); tests ask for ``store``."""
    from walletfaq.store import open_store  # the store extra is needed by store tests only

    created = open_store(store_location, create=True)
    created.init(small_corpus(), author="alice")
    yield created
    created.close()
