"""``walletfaq store``: init, log, rollback, export; one-line errors with status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.store_support import small_corpus
from walletfaq.cli import main
from walletfaq.data.corpus import load_bundled_corpus, write_corpus
from walletfaq.store import Change, open_store
from walletfaq.store.imports import read_entries, write_entries


def test_init_imports_the_bundled_corpus_by_default(store_location: str, capsys) -> None:
    assert main(["store", "init", "--store", store_location, "--author", "alice"]) == 0
    assert "revision 1, 170 entries imported" in capsys.readouterr().out
    with open_store(store_location) as store:
        assert store.entries().entries == load_bundled_corpus().entries
        assert store.log()[0].author == "alice"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".xlsx"])
def test_init_imports_a_jsonl_csv_or_xlsx_file(tmp_path: Path, suffix: str) -> None:
    source = write_entries(small_corpus().entries, tmp_path / f"faq{suffix}")
    db = str(tmp_path / "faq.db")
    assert main(["store", "init", "--store", db, "--corpus", str(source)]) == 0
    with open_store(db) as store:
        assert store.entries().entries == small_corpus().entries


def test_log_lists_revisions_as_text_or_json(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "faq.db")
    main(["store", "init", "--store", db, "--author", "alice", "--reason", "first"])
    with open_store(db) as store:
        store.apply([Change.remove("login-failed")], author="bob", reason="merged")
    capsys.readouterr()
    assert main(["store", "log", "--store", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "alice" in lines[0] and "import, 170 entries  first" in lines[0]
    assert "bob" in lines[1] and "edit, 1 entries  merged" in lines[1]
    assert main(["store", "log", "--store", db, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["revision"], r["author"], r["changes"]) for r in records] == [
        (1, "alice", 170),
        (2, "bob", 1),
    ]
    assert records[0]["time"].endswith("+00:00")


def test_rollback_restores_a_revisions_content(store_location: str, capsys) -> None:
    main(["store", "init", "--store", store_location])
    with open_store(store_location) as store:
        store.apply([Change.remove("login-failed")], author="bob")
    argv = ["store", "rollback", "--store", store_location, "--to", "1", "--author", "carol"]
    assert main([*argv, "--reason", "undo"]) == 0
    assert "revision 3 restores revision 1" in capsys.readouterr().out
    with open_store(store_location) as store:
        assert store.entries().entries == load_bundled_corpus().entries
        assert (store.log()[-1].author, store.log()[-1].reason) == ("carol", "undo")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".xlsx"])
def test_export_writes_the_latest_entries(tmp_path: Path, suffix: str) -> None:
    db = str(tmp_path / "faq.db")
    main(["store", "init", "--store", db])
    out = tmp_path / f"out{suffix}"
    assert main(["store", "export", "--store", db, "--out", str(out)]) == 0
    assert read_entries(out).entries == load_bundled_corpus().entries


def test_a_bad_spreadsheet_row_is_one_line_naming_row_and_column(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "faq.csv"
    bad.write_text("question,answer,category\n问,答,c\n问2,答2,\n", encoding="utf-8")
    db = tmp_path / "faq.db"
    assert main(["store", "init", "--store", str(db), "--corpus", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("walletfaq: error: ") and "\n" not in err
    assert "row 3, column C (category)" in err
    assert not db.exists()  # nothing created for a file that does not import


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["store", "log", "--store", "{dir}/missing.db"], "no walletfaq store at"),
        (["store", "rollback", "--store", "{db}", "--to", "7"], "no revision 7"),
        (["store", "rollback", "--store", "{db}", "--to", "1"], "nothing to roll back"),
        (["store", "init", "--store", "{db}"], "already holds 1 revision"),
        (["store", "export", "--store", "{db}", "--out", "{dir}/x.txt"], "unknown file type"),
        (["store", "log", "--store", "mysql://x/y"], "unsupported store URL scheme"),
    ],
)
def test_store_user_errors_print_one_line_and_exit_2(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    db = tmp_path / "faq.db"
    write_corpus(small_corpus().entries, tmp_path / "small.jsonl")
    main(["store", "init", "--store", str(db), "--corpus", str(tmp_path / "small.jsonl")])
    capsys.readouterr()
    filled = [a.format(dir=tmp_path, db=db) for a in argv]
    assert main(filled) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("walletfaq: error: ") and "\n" not in err
    assert message in err
