"""Saves are crash-safe at every instant and leave no debris.

Fault injection, not luck: a child process saves an index and dies (``os._exit``, like
``kill -9``: no cleanup runs) right before its N-th filesystem step, for every N. After each
death the target must load as the complete old or the complete new index, and the next save
must remove what the dead one left behind.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import walletfaq.data.atomic as atomic
from walletfaq import Corpus, FAQRetriever, IndexFormatError

from .conftest import TINY_ENTRIES, HashEncoder

ROOT = Path(__file__).resolve().parents[1]
CRASH_EXIT = 77

CHILD = textwrap.dedent(
    """
    import os, shutil, sys
    sys.path.insert(0, sys.argv[1])
    import faiss
    import walletfaq.data.atomic as atomic
    import walletfaq.index.directory as index_directory
    from tests.conftest import TINY_ENTRIES, HashEncoder
    from walletfaq import Corpus, FAQRetriever

    target, crash_at = sys.argv[2], int(sys.argv[3])
    steps = 0

    def counted(owner, name):
        real = getattr(owner, name)

        def step(*args, **kwargs):
            global steps
            steps += 1
            if steps == crash_at:
                os._exit(77)
            return real(*args, **kwargs)

        setattr(owner, name, step)

    for owner, name in [
        (os, "mkdir"), (os, "chmod"), (os, "fsync"), (os, "rename"), (os, "rmdir"),
        (atomic, "_exchange"), (shutil, "rmtree"), (faiss, "write_index"),
        (index_directory, "write_json"),
    ]:
        counted(owner, name)
    new = Corpus.from_entries(TINY_ENTRIES[:3])
    FAQRetriever.build(new, model=HashEncoder()).save(target)
    print(steps)
    """
)

OLD = Corpus.from_entries(TINY_ENTRIES)
NEW = Corpus.from_entries(TINY_ENTRIES[:3])


def _save_in_child(target: Path, crash_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(target), str(crash_at)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _debris(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith("."))


def test_a_crash_before_any_step_of_a_save_leaves_the_old_or_the_new_index(
    tmp_path: Path,
) -> None:
    target = tmp_path / "idx"
    encoder = HashEncoder()
    old_hits = FAQRetriever.build(OLD, model=encoder).ask("怎么退款", k=5)
    new_hits = FAQRetriever.build(NEW, model=encoder).ask("怎么退款", k=5)
    clean = _save_in_child(target, crash_at=0)
    assert clean.returncode == 0, clean.stderr
    total_steps = int(clean.stdout.split()[-1])
    assert total_steps >= 8  # mkdir, write x3, chmod, fsync x4, exchange, fsync, rmtree

    outcomes = set()
    for crash_at in range(1, total_steps + 1):
        FAQRetriever.build(OLD, model=encoder).save(target)
        assert _debris(target) == []
        died = _save_in_child(target, crash_at)
        assert died.returncode == CRASH_EXIT, (crash_at, died.stderr)
        loaded = FAQRetriever.load(target, model=encoder)
        assert loaded.corpus.ids in (OLD.ids, NEW.ids), crash_at
        expected = old_hits if loaded.corpus.ids == OLD.ids else new_hits
        assert loaded.ask("怎么退款", k=5) == expected, crash_at
        outcomes.add(len(loaded.corpus))
        FAQRetriever.build(OLD, model=encoder).save(target)  # the next save cleans up
        assert _debris(target) == [], crash_at
    assert outcomes == {len(OLD), len(NEW)}  # crashes before and after the switch were hit


@pytest.mark.parametrize("failing", ["write_index", "fsync", "exchange"])
def test_a_failed_save_leaves_the_old_index_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    import faiss

    encoder = HashEncoder()
    target = FAQRetriever.build(OLD, model=encoder).save(tmp_path / "idx")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "injected I/O error")

    owner, name = {
        "write_index": (faiss, "write_index"),
        "fsync": (os, "fsync"),
        "exchange": (atomic, "_exchange"),
    }[failing]
    monkeypatch.setattr(owner, name, refuse)
    with pytest.raises(IndexFormatError, match="injected I/O error|cannot write"):
        FAQRetriever.build(NEW, model=encoder).save(target)
    monkeypatch.undo()
    assert FAQRetriever.load(target, model=encoder).corpus.ids == OLD.ids
    assert _debris(target) == []


def test_leftovers_of_dead_saves_are_removed_and_nothing_else(tmp_path: Path) -> None:
    encoder = HashEncoder()
    target = FAQRetriever.build(OLD, model=encoder).save(tmp_path / "idx")
    for name in (".idx.walletfaq-stage-k2j4h", ".idx.walletfaq-old-9x8y7z"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.faiss").write_bytes(b"\0" * 1024)
    (tmp_path / ".idx.backup").mkdir()  # the user's, not ours
    (tmp_path / ".other.walletfaq-stage-abc").mkdir()  # another target's: its save cleans it
    FAQRetriever.build(NEW, model=encoder).save(target)
    assert _debris(target) == [".idx.backup", ".other.walletfaq-stage-abc"]


def test_without_atomic_exchange_the_save_falls_back_to_two_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = HashEncoder()
    target = FAQRetriever.build(OLD, model=encoder).save(tmp_path / "idx")

    def unsupported(first: Path, second: Path) -> None:
        raise OSError(errno.EINVAL, "RENAME_EXCHANGE not supported")

    monkeypatch.setattr(atomic, "_exchange", unsupported)
    FAQRetriever.build(NEW, model=encoder).save(target)
    assert FAQRetriever.load(target, model=encoder).corpus.ids == NEW.ids
    assert _debris(target) == []


def test_the_exchange_swaps_two_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("b")
    atomic._exchange(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "x").read_text() == "b"
    assert (tmp_path / "b" / "x").read_text() == "a"
