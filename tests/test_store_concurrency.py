"""Writers at once, writers killed, and the commit-time notification: revisions are never
lost or duplicated, two conditional editors never both win, a killed write leaves all or
nothing, and PostgreSQL listeners hear of every commit (and only of commits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.store_support import (  # noqa: F401 (fixture)
    PostgresCluster,
    small_corpus,
    store_with_small_corpus,
)
from walletfaq import StoreConflictError
from walletfaq.store import NOTIFY_CHANNEL, Change, Store, open_store

ROOT = Path(__file__).resolve().parents[1]
THREADS = 4
EDITS_PER_WRITER = 8


def _entry(entry_id: str) -> dict[str, object]:
    return {"id": entry_id, "category": "c", "question": f"问{entry_id}", "answer": "答。"}


def _assert_gapless(store: Store, expected_head: int) -> None:
    assert store.head() == expected_head
    assert [r.number for r in store.log()] == list(range(1, expected_head + 1))


def test_threads_writing_at_once_get_distinct_consecutive_revisions(store: Store) -> None:
    numbers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(tag: int) -> None:
        try:
            for i in range(EDITS_PER_WRITER):
                revision = store.apply([Change.add(_entry(f"t{tag}-{i}"))], author=f"w{tag}")
                with lock:
                    numbers.append(revision.number)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    total = THREADS * EDITS_PER_WRITER
    assert sorted(numbers) == list(range(2, 2 + total))
    _assert_gapless(store, 1 + total)
    assert len(store.entries()) == 5 + total


def _race(store: Store, entry_id: str, based_on: int) -> list[str]:
    """Two threads update ``entry_id`` at the same instant, both based on ``based_on``."""
    entry = store.entry(entry_id).to_dict()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def editor(name: str) -> None:
        barrier.wait()
        try:
            store.apply(
                [Change.update({**entry, "answer": f"{name}的答案。"})],
                author=name,
                if_match=based_on,
            )
            outcomes.append("won")
        except StoreConflictError:
            outcomes.append("conflict")

    editors = [threading.Thread(target=editor, args=(name,)) for name in ("甲", "乙")]
    for thread in editors:
        thread.start()
    for thread in editors:
        thread.join(timeout=60)
    return sorted(outcomes)


def test_two_conditional_editors_of_one_entry_never_both_win(store: Store) -> None:
    for round_number in range(1, 4):
        assert _race(store, f"q{round_number}", store.head()) == ["conflict", "won"]
    _assert_gapless(store, 4)


WRITER_SCRIPT = """
import sys
from walletfaq.store import Change, open_store
store = open_store(sys.argv[1])
for i in range(int(sys.argv[3])):
    entry = {"id": f"{sys.argv[2]}-{i}", "category": "c", "question": f"问{i}", "answer": "答。"}
    print(store.apply([Change.add(entry)], author=sys.argv[2]).number, flush=True)
"""


def _child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_processes_writing_at_once_lose_and_duplicate_nothing(
    store: Store, store_location: str
) -> None:
    children = [_child(WRITER_SCRIPT, store_location, tag, "10") for tag in ("pa", "pb")]
    numbers: list[int] = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        numbers += [int(line) for line in out.split()]
    assert sorted(numbers) == list(range(2, 22))
    _assert_gapless(store, 21)
    assert len(store.entries()) == 25


KILLED_SCRIPT = """
import sys, time
from sqlalchemy import event
from walletfaq.store import Change, open_store
store = open_store(sys.argv[1])
pause_before_commit = sys.argv[2] == "before-commit"

@event.listens_for(store.engine, "before_cursor_execute")
def pause(conn, cursor, statement, parameters, context, executemany):
    if pause_before_commit and statement.lstrip().upper().startswith("UPDATE WALLETFAQ_HEAD"):
        print("writing", flush=True)  # the revision and its entries are written, not committed
        time.sleep(600)

changes = [Change.add({"id": f"big-{i}", "category": "c", "question": f"问题{i}", "answer": "答。"})
           for i in range(2000)]
store.apply(changes, author="doomed")
print("committed", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("moment", ["before-commit", "after-commit"])
def test_a_writer_killed_mid_apply_leaves_all_of_its_change_or_none(
    store: Store, store_location: str, moment: str
) -> None:
    child = _child(KILLED_SCRIPT, store_location, moment)
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == ("writing" if moment == "before-commit" else "committed"), child.stderr.read()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    with open_store(store_location) as after:
        ids = after.entries().ids
        big = [i for i in ids if i.startswith("big-")]
        if moment == "before-commit":
            assert (after.head(), big) == (1, [])
        else:
            assert (after.head(), len(big)) == (2, 2000)
        # the killed writer's lock is gone: the next write goes through at once
        revision = after.apply([Change.remove("q1")], author="next")
        assert revision.number == after.head() == (2 if moment == "before-commit" else 3)


def test_postgresql_listeners_are_notified_of_each_committed_revision(
    postgres_cluster: PostgresCluster,
) -> None:
    import psycopg

    url = postgres_cluster.new_database()
    with open_store(url, create=True) as store, psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        store.init(small_corpus(), author="alice")
        revision = store.apply([Change.remove("q1")], author="bob")
        heard = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
        assert heard == ["1", str(revision.number)]
        store.apply([Change.update({**store.entry("q3").to_dict(), "answer": "x"})], author="c")
        with pytest.raises(StoreConflictError):  # q3 changed in revision 3, after revision 2
            store.apply(
                [Change.update({**store.entry("q3").to_dict(), "answer": "y"})],
                author="d",
                if_match=2,
            )
        heard = [n.payload for n in listener.notifies(timeout=1, stop_after=5)]
        assert heard == ["3"]  # the committed edit only; the conflicting one sent nothing
