"""FAQ files in and out of the store: JSONL, CSV and XLSX round-trips, spreadsheet import
errors that name the row and the column."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from tests.store_support import small_corpus
from walletfaq.data.corpus import Corpus, FAQEntry, load_bundled_corpus
from walletfaq.errors import CorpusError
from walletfaq.store import open_store
from walletfaq.store.imports import (
    join_alt_questions,
    read_entries,
    split_alt_questions,
    write_entries,
)

HEADER = ["question", "answer", "alt questions", "category"]


def _csv(tmp_path: Path, rows: list[list[str]], name: str = "faq.csv") -> Path:
    import csv

    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _xlsx(tmp_path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    path = tmp_path / "faq.xlsx"
    workbook.save(path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".xlsx"])
def test_export_then_import_gives_the_same_entries(tmp_path: Path, suffix: str) -> None:
    corpus = load_bundled_corpus()
    path = write_entries(corpus.entries, tmp_path / f"faq{suffix}")
    assert read_entries(path).entries == corpus.entries


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_awkward_texts_survive_a_spreadsheet_round_trip(tmp_path: Path, suffix: str) -> None:
    entries = [
        FAQEntry("a", "c", "=SUM(A1)", '+1 "quoted", comma', ("x|y",)),
        FAQEntry("b", "c", "问题", "多行\n答案", ("one", "two|three", "-minus")),
        FAQEntry("c", "c", "no alts", "answer", ()),
    ]
    path = write_entries(entries, tmp_path / f"awkward{suffix}")
    assert read_entries(path).entries == tuple(entries)


def test_alt_questions_are_one_per_line_or_bar_separated() -> None:
    assert split_alt_questions("a | b|c") == ["a", "b", "c"]
    assert split_alt_questions("a|b\nc\n\n") == ["a|b", "c"]
    assert split_alt_questions("") == []


def test_one_alt_question_with_a_bar_is_written_so_it_reads_back_whole() -> None:
    assert split_alt_questions(join_alt_questions(["x|y"])) == ["x|y"]


def test_a_spreadsheet_without_an_id_column_numbers_its_entries_by_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, ["怎么充值", "在首页点充值。", "如何充值|充值方法", "money"]])
    (entry,) = read_entries(path).entries
    assert (entry.id, entry.alt_questions) == ("faq-2", ("如何充值", "充值方法"))


def test_columns_may_come_in_any_order_and_case(tmp_path: Path) -> None:
    path = _csv(tmp_path, [["Category", "ID", "Answer", "Question"], ["money", "t", "答", "问"]])
    assert read_entries(path).entries == (FAQEntry("t", "money", "问", "答", ()),)


def test_csv_error_names_the_row_and_the_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, ["q1", "a1", "", "c"], ["q2", "  ", "", "c"]])
    with pytest.raises(CorpusError, match=r"faq\.csv: row 3, column B \(answer\): empty text"):
        read_entries(path)


def test_xlsx_error_names_the_row_and_the_column(tmp_path: Path) -> None:
    path = _xlsx(tmp_path, [HEADER, ["q1", "a1", None, "c"], ["q2", "a2", None, None]])
    with pytest.raises(CorpusError, match=r"row 3, column D \(category\): empty text"):
        read_entries(path)


def test_xlsx_cell_that_is_not_text_is_named(tmp_path: Path) -> None:
    from datetime import datetime

    path = _xlsx(tmp_path, [HEADER, [datetime(2026, 1, 1), "a", None, "c"]])
    with pytest.raises(CorpusError, match=r"row 2, column A \(question\): expected text"):
        read_entries(path)


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path, [["id", *HEADER], ["x", "q", "a", "", "c"], ["x", "q2", "a", "", "c"]])
    with pytest.raises(CorpusError, match=r"row 3, column A \(id\): duplicate id 'x' .*row 2"):
        read_entries(path)


def test_a_missing_required_column_is_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, [["question", "answer"], ["q", "a"]])
    with pytest.raises(CorpusError, match="row 1: missing column.*category"):
        read_entries(path)


def test_an_unknown_column_is_named_with_its_letter(tmp_path: Path) -> None:
    path = _csv(tmp_path, [[*HEADER, "notes"], ["q", "a", "", "c", "n"]])
    with pytest.raises(CorpusError, match="row 1, column E: unknown column 'notes'"):
        read_entries(path)


def test_an_unknown_file_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown file type '.txt'"):
        read_entries(tmp_path / "faq.txt")


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "faq.xlsx"
    path.write_bytes(b"not a zip file")
    with pytest.raises(CorpusError, match="not a readable .xlsx workbook"):
        read_entries(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".xlsx"])
def test_a_store_exported_and_imported_into_a_new_store_has_the_same_content(
    tmp_path: Path, suffix: str
) -> None:
    with open_store(str(tmp_path / "a.db"), create=True) as first:
        first.init(small_corpus(), author="alice")
        path = write_entries(first.entries().entries, tmp_path / f"faq{suffix}")
    with open_store(str(tmp_path / "b.db"), create=True) as second:
        second.init(read_entries(path), author="alice")
        assert second.entries().entries == small_corpus().entries


def test_corpus_read_from_a_spreadsheet_is_a_validated_corpus(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, ["q", "a", "x\ny", "c"]])
    assert isinstance(read_entries(path), Corpus)


_TEXT = st.text(min_size=1, max_size=12)
_RECORD = st.fixed_dictionaries(
    {
        "id": _TEXT,
        "category": _TEXT,
        "question": _TEXT,
        "answer": _TEXT,
        "alt_questions": st.lists(_TEXT, max_size=3),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(_RECORD, min_size=1, max_size=3, unique_by=lambda r: r["id"].strip()),
    st.sampled_from([".csv", ".xlsx"]),
)
def test_any_valid_corpus_reads_back_equal_or_is_refused_saying_why(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, object]], suffix: str
) -> None:
    try:
        corpus = Corpus.from_entries(records)
    except CorpusError:
        return  # not a valid corpus: nothing to export
    path = tmp_path_factory.mktemp("roundtrip") / f"faq{suffix}"
    try:
        write_entries(corpus.entries, path)
    except CorpusError as exc:
        breaks = any("\n" in a or "\r" in a for e in corpus for a in e.alt_questions)
        assert breaks or (suffix == ".xlsx" and "cannot be kept in an .xlsx cell" in str(exc))
        assert not path.exists()
        return
    assert read_entries(path).entries == corpus.entries


def test_an_alt_question_with_a_line_break_is_refused_for_spreadsheets(tmp_path: Path) -> None:
    entry = FAQEntry("a", "c", "q", "a", ("two\nlines",))
    with pytest.raises(CorpusError, match="entry 'a': an alt question contains a line break"):
        write_entries([entry], tmp_path / "faq.csv")


def test_a_control_character_is_refused_for_xlsx(tmp_path: Path) -> None:
    entry = FAQEntry("a", "c", "q", "bell\x07", ())
    with pytest.raises(CorpusError, match="field 'answer': character U\\+0007 cannot be kept"):
        write_entries([entry], tmp_path / "faq.xlsx")
