"""Helpers of the replica tests: bounded waits, entries, a PostgreSQL cluster of its own (the
outage tests stop and restart it, which must not disturb the session's shared cluster), and
``walletfaq serve --store`` in a subprocess with the tiny test encoder.

A replica subprocess runs the real command line (:func:`walletfaq.cli.main`) in a fresh Python
whose model resolution routes ``--model hash-test`` to :class:`tests.conftest.HashEncoder`
(the ``routed_encoder`` fixture does the same in process), so that three replicas start in
seconds instead of loading a real model each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store_support import PostgresCluster, postgres_bin, small_corpus
from walletfaq.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], object], what: str, limit_s: float = 20.0) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``limit_s`` seconds."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {limit_s} s: {what}"
        time.sleep(0.02)


def faq(entry_id: str, question: str, answer: str = "答。") -> dict[str, object]:
    """An entry to add."""
    return {"id": entry_id, "category": "c", "question": question, "answer": answer}


def new_store(location: str) -> Store:
    """A store at ``location`` holding the five small entries q1..q5 (revision 1)."""
    store = open_store(location, create=True)
    store.init(small_corpus(), author="alice")
    return store


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for the tests that stop and restart it (module scope)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql")
    cluster = PostgresCluster(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()


def terminate_listeners(url: str) -> int:
    """End the followers' LISTEN connections to ``url``'s database (as a lost connection
    would); how many were ended."""
    import psycopg

    from walletfaq.retrieval.replica import LISTENER_NAME

    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (LISTENER_NAME,),
        ).fetchall()
    return len(rows)


REPLICA_SCRIPT = """
import sys
import walletfaq.retrieval.retriever as retriever_module
from tests.conftest import HashEncoder
from walletfaq.cli import main

encoder = HashEncoder()
original = retriever_module.resolve_encoder
retriever_module.resolve_encoder = (
    lambda model=None: encoder if model == "hash-test" else original(model)
)
sys.exit(main(sys.argv[1:]))
"""


def start_replica(
    store_url: str, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``walletfaq serve --store URL --model hash-test`` on 127.0.0.1:``port``."""
    environment = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "HF_HUB_OFFLINE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        **(env or {}),
    }
    command = [sys.executable, "-c", REPLICA_SCRIPT, "serve", "--store", store_url]
    command += ["--model", "hash-test", "--host", "127.0.0.1", "--port", str(port), *extra]
    return subprocess.Popen(
        command,
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_replica(process: subprocess.Popen[str]) -> str:
    """Stop a replica (SIGINT, then SIGKILL after 20 s); its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=20)[0] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate(timeout=10)[0] or ""
