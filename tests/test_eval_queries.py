"""load_queries: every malformed queries file is a CorpusError naming file:line and field."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from walletfaq import CorpusError, bundled_queries_path, load_bundled_queries, load_queries
from walletfaq.data.corpus import bundled_data_dir


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


GOOD = '{"query": "退款", "gold": ["refund"], "style": "keyword"}'


def test_a_valid_file_gives_one_labelled_query_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "", '{"query": "天气", "gold": []}')
    queries = load_queries(path)
    assert [(q.query, q.gold, q.style) for q in queries] == [
        ("退款", ("refund",), "keyword"),
        ("天气", (), "unspecified"),
    ]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\n")
    assert load_queries(path)[0].query == "退款"


def test_deeply_nested_json_is_a_corpus_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, '{"query": "x", "gold": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CorpusError, match=r"q\.jsonl:2: nested too deeply"):
        load_queries(path)


def test_a_duplicate_key_names_the_line_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, '{"query": "退款", "gold": ["refund"], "query": "充值"}')
    with pytest.raises(CorpusError, match=r"q\.jsonl:2 field 'query': duplicate key"):
        load_queries(path)


def test_a_duplicate_key_in_a_nested_object_is_also_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '{"query": "退款", "gold": [{"a": 1, "a": 2}]}')
    with pytest.raises(CorpusError, match=r"q\.jsonl:1 field 'a': duplicate key"):
        load_queries(path)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"query": 3, "gold": []}', "query"),
        ('{"query": "   ", "gold": []}', "query"),
        ('{"gold": ["refund"]}', "query"),
        ('{"query": "退款", "gold": "refund"}', "gold"),
        ('{"query": "退款", "gold": null}', "gold"),
        ('{"query": "退款"}', "gold"),
        ('{"query": "退款", "gold": ["refund", 7]}', "gold"),
        ('{"query": "退款", "gold": [""]}', "gold"),
        ('{"query": "退款", "gold": ["refund", "refund"]}', "gold"),
        ('{"query": "退款", "gold": [], "style": 5}', "style"),
        ('{"query": "退款", "gold": [], "style": ""}', "style"),
        ('{"query": "退款", "gold": [], "stlye": "keyword"}', "stlye"),
        ('{"query": "\\ud800", "gold": []}', "query"),
    ],
)
def test_a_wrong_type_or_value_names_line_and_field(tmp_path: Path, line: str, field: str) -> None:
    path = write(tmp_path, GOOD, line)
    with pytest.raises(CorpusError, match=rf"q\.jsonl:2 field '{field}'") as caught:
        load_queries(path)
    assert (caught.value.line, caught.value.field) == (2, field)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('["退款", ["refund"]]', "expected an object"),
        ("42", "expected an object"),
        ('{"query": "退款", "gold": [', "malformed JSON"),
        (
            '{"query": "退款", "gold": [], "n": ' + "9" * 5000 + "}",
            r"the integer \d+\.\.\.\d+ has 5000 digits, too many to read",
        ),
    ],
)
def test_a_line_that_is_not_a_query_object_names_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path, GOOD, line)
    with pytest.raises(CorpusError, match=rf"q\.jsonl:2: {message}"):
        load_queries(path)


def test_unreadable_files_are_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_queries(tmp_path / "missing.jsonl")
    with pytest.raises(CorpusError, match="cannot read"):
        load_queries(tmp_path)
    (tmp_path / "latin1.jsonl").write_bytes('{"query": "caf\xe9", "gold": []}'.encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        load_queries(tmp_path / "latin1.jsonl")
    with pytest.raises(CorpusError, match="no queries"):
        load_queries(write(tmp_path, "", "  "))


def test_in_memory_records_are_checked_like_file_lines() -> None:
    with pytest.raises(CorpusError, match=r":2 field 'gold'"):
        load_queries([{"query": "退款", "gold": []}, {"query": "退款", "gold": [1]}])
    with pytest.raises(CorpusError, match="single mapping"):
        load_queries({"query": "退款", "gold": []})  # type: ignore[arg-type]
    with pytest.raises(CorpusError, match="got int"):
        load_queries(5)  # type: ignore[arg-type]


def test_random_corruptions_raise_only_corpus_errors(tmp_path: Path) -> None:
    """Seeded fuzz: cut, splice and retype valid lines; nothing but CorpusError escapes."""
    rng = random.Random(1234)
    pieces = ['"query"', '"gold"', '"style"', "[", "]", "{", "}", ",", ":", "null", "1e400",
              '"退款"', '["refund"]', "true", '"\\ud800"', "-0", '"x"']  # fmt: skip
    base = [json.dumps(q, ensure_ascii=False) for q in [
        {"query": "退款", "gold": ["refund"], "style": "keyword"},
        {"query": "天气", "gold": []},
    ]]  # fmt: skip
    outcomes = {"ok": 0, "error": 0}
    for trial in range(400):
        line = rng.choice(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(line) + 1)
            cut = rng.randrange(at, len(line) + 1)
            line = line[:at] + rng.choice(pieces) * rng.randint(0, 2) + line[cut:]
        path = tmp_path / f"fuzz{trial}.jsonl"
        path.write_text(line + "\n", "utf-8", errors="surrogatepass")
        try:
            load_queries(path)
            outcomes["ok"] += 1
        except CorpusError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and sum(outcomes.values()) == 400


def test_the_bundled_queries_ship_with_the_package_data() -> None:
    assert bundled_queries_path() == bundled_data_dir() / "eval" / "queries.jsonl"
    queries = load_bundled_queries()
    assert len(queries) >= 400
    assert sum(not q.gold for q in queries) >= 40
    assert load_queries(None) == queries
