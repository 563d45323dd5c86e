"""FAQ files in and out of the store: JSONL (the corpus format), CSV and XLSX spreadsheets.

A spreadsheet has a header row naming its columns, in any order (case and spaces or
underscores do not matter): ``question``, ``answer`` and ``category`` (required), ``alt
questions`` and ``id`` (optional). Alt questions are one per line in their cell; a cell
without a line break may separate them with ``|``. Without an ``id`` column, an entry's id is
``faq-<row>``. Each row is validated with the corpus loader's rules; an error names the file,
the row (the header is row 1, as a spreadsheet numbers it) and the column.

The format follows the file's extension: ``.jsonl``, ``.csv``, ``.xlsx``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from walletfaq.data.atomic import write_text_atomic
from walletfaq.data.corpus import Corpus, FAQEntry, load_corpus, write_corpus
from walletfaq.errors import CorpusError

FORMATS = (".jsonl", ".csv", ".xlsx")
COLUMNS = ("id", "category", "question", "answer", "alt_questions")
"""Columns written on export, in this order."""

_HEADERS = {
    "id": "id",
    "category": "category",
    "question": "question",
    "answer": "answer",
    "alt_questions": "alt_questions",
    "alt_question": "alt_questions",
    "alternative_questions": "alt_questions",
}
_REQUIRED_COLUMNS = ("question", "answer", "category")


def read_entries(path: str | Path) -> Corpus:
    """Read a JSONL, CSV or XLSX FAQ file into a validated corpus (format from the extension).

    Raises:
        CorpusError: unknown extension, unreadable file, a missing column, or a row that is
            not a valid entry (the message names the row and the column).
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".jsonl":
        return load_corpus(path)
    rows = _csv_rows(path) if suffix == ".csv" else _xlsx_rows(path)
    return _corpus_from_rows(rows, path)


def write_entries(entries: Iterable[FAQEntry], path: str | Path) -> Path:
    """Write entries as JSONL, CSV or XLSX (from the extension); :func:`read_entries` reads
    the file back equal. Written beside the target and renamed into place."""
    path = Path(path)
    suffix = _suffix(path)
    items = list(entries)
    if suffix == ".jsonl":
        return write_corpus(items, path)
    if not items:
        raise CorpusError("nothing to write: a corpus needs at least one entry", path=path)
    for entry in items:
        _check_representable(entry, suffix, path)
    table = [list(COLUMNS)] + [_cells(entry) for entry in items]
    try:
        if suffix == ".csv":
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\r\n").writerows(table)
            write_text_atomic(path, "\ufeff" + buffer.getvalue())  # BOM: Excel reads UTF-8
        else:
            _write_xlsx(table, path)
    except OSError as exc:
        raise CorpusError(f"cannot write the file ({exc.strerror})", path=path) from None
    return path


def split_alt_questions(cell: str) -> list[str]:
    """Alt questions from one cell: one per line, or ``|``-separated on a single line."""
    lines = cell.replace("\r\n", "\n").replace("\r", "\n")
    pieces = lines.split("\n") if "\n" in lines else cell.split("|")
    return [piece.strip() for piece in pieces if piece.strip()]


def join_alt_questions(alts: Sequence[str]) -> str:
    """One cell holding ``alts`` that :func:`split_alt_questions` splits back equal."""
    cell = "\n".join(alts)
    if len(alts) == 1 and "|" in cell:
        cell += "\n"  # a line break says "one per line", so the "|" stays inside the question
    return cell


def _check_representable(entry: FAQEntry, suffix: str, path: Path) -> None:
    """Refuse what a spreadsheet cell would change: a line break inside an alt question (the
    cell holds one per line) and, in .xlsx, characters a worksheet cannot hold."""
    for alt in entry.alt_questions:
        if "\n" in alt or "\r" in alt:
            raise CorpusError(
                f"entry {entry.id!r}: an alt question contains a line break, which a spreadsheet "
                "cell of one alt question per line cannot hold; export to .jsonl instead",
                path=path,
            )
    if suffix != ".xlsx":
        return
    for name, value in zip(COLUMNS, _cells(entry), strict=True):
        bad = _XLSX_UNSAFE.search(value)
        if bad is not None:
            raise CorpusError(
                f"entry {entry.id!r} field {name!r}: character U+{ord(bad.group()):04X} cannot "
                "be kept in an .xlsx cell; export to .jsonl or .csv instead",
                path=path,
            )


_XLSX_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\r]")
"""Control characters a worksheet refuses, and CR (XML turns it into LF)."""


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise CorpusError(
            f"unknown file type {path.suffix or '(no extension)'!r}; use one of "
            f"{', '.join(FORMATS)}",
            path=path,
        )
    return suffix


def _csv_rows(path: Path) -> list[list[object]]:
    try:
        raw = path.read_bytes()  # not read_text: a CR inside a quoted cell must stay a CR
    except FileNotFoundError:
        raise CorpusError("CSV file not found; check the path", path=path) from None
    except OSError as exc:
        raise CorpusError(f"cannot read the CSV file ({exc.strerror})", path=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"not valid UTF-8 (byte {exc.start}); save the CSV file as UTF-8", path=path
        ) from None
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise CorpusError(f"not a readable CSV file ({exc})", path=path) from None


def _xlsx_rows(path: Path) -> list[list[object]]:
    try:
        from openpyxl import load_workbook
    except ImportError:
        raise CorpusError(
            "reading .xlsx needs openpyxl; install the store extra: pip install 'walletfaq[store]'",
            path=path,
        ) from None
    if not path.is_file():
        raise CorpusError("file not found; check the path", path=path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, ValueError... on bad files
        raise CorpusError(
            f"not a readable .xlsx workbook ({type(exc).__name__}: {exc}); save it as .xlsx",
            path=path,
        ) from None
    try:
        sheet = workbook.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _corpus_from_rows(rows: list[list[object]], path: Path) -> Corpus:
    while rows and all(_blank(cell) for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise CorpusError("the file is empty; the first row must name the columns", path=path)
    columns = _columns(rows[0], path)
    entries: list[FAQEntry] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if all(_blank(cell) for cell in row):
            continue
        record = _record(row, number, columns, path)
        try:
            entry = Corpus.from_entries([record], source="").entries[0]
        except CorpusError as exc:
            field = exc.field or "id"
            raise _row_error(path, number, columns, field, _message(exc)) from None
        if entry.id in seen:
            raise _row_error(
                path,
                number,
                columns,
                "id",
                f"duplicate id {entry.id!r} (first used on row {seen[entry.id]}); "
                "ids must be unique",
            )
        seen[entry.id] = number
        entries.append(entry)
    if not entries:
        raise CorpusError("the file has a header row but no entries", path=path)
    return Corpus(entries=tuple(entries), source=str(path))


def _columns(header: list[object], path: Path) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        if _blank(cell):
            continue
        key = "_".join(str(cell).strip().lower().replace("_", " ").split())
        name = _HEADERS.get(key)
        if name is None:
            raise CorpusError(
                f"row 1, column {_letter(index)}: unknown column {str(cell)!r}; the columns are "
                "question, answer, category, alt questions and (optionally) id",
                path=path,
            )
        if name in columns:
            raise CorpusError(
                f"row 1, column {_letter(index)}: column {str(cell)!r} appears twice", path=path
            )
        columns[name] = index
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise CorpusError(
            f"row 1: missing column(s) {', '.join(missing)}; the header row must name "
            "question, answer and category",
            path=path,
        )
    return columns


def _record(
    row: list[object], number: int, columns: dict[str, int], path: Path
) -> dict[str, object]:
    record: dict[str, object] = {}
    for name, index in columns.items():
        cell = row[index] if index < len(row) else None
        if cell is None:
            cell = ""
        if isinstance(cell, bool) or not isinstance(cell, (str, int, float)):
            raise _row_error(
                path,
                number,
                columns,
                name,
                f"expected text, got {type(cell).__name__} ({cell!r}); format the cell as text",
            )
        text = cell if isinstance(cell, str) else _number_text(cell)
        record[name] = split_alt_questions(text) if name == "alt_questions" else text
    if "id" not in columns:
        record["id"] = f"faq-{number}"
    return record


def _number_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _row_error(
    path: Path, number: int, columns: dict[str, int], field: str, message: str
) -> CorpusError:
    where = f"row {number}"
    if field in columns:
        where += f", column {_letter(columns[field])} ({field.replace('_', ' ')})"
    return CorpusError(f"{where}: {message}", path=path)


def _message(exc: CorpusError) -> str:
    """The reason in a corpus-loader error, without its location prefix."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _cells(entry: FAQEntry) -> list[str]:
    return [
        entry.id,
        entry.category,
        entry.question,
        entry.answer,
        join_alt_questions(entry.alt_questions),
    ]


def _write_xlsx(table: list[list[str]], path: Path) -> None:
    try:
        from openpyxl import Workbook
    except ImportError:
        raise CorpusError(
            "writing .xlsx needs openpyxl; install the store extra: pip install 'walletfaq[store]'",
            path=path,
        ) from None
    import os
    import tempfile

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "FAQ"
    for row in table:
        sheet.append(row)
    for row_cells in sheet.iter_rows():
        for cell in row_cells:
            cell.data_type = "s"  # text, never a formula, even when it starts with "="
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        workbook.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
