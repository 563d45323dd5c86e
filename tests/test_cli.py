"""The command line: readable output, --json for programs, one-line errors with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from walletfaq.cli import main


def test_ask_json_prints_an_array_best_first(index_dir: Path, capsys) -> None:
    assert main(["ask", "怎么退款", "--index", str(index_dir), "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and hits[0]["id"] == "refund"
    assert {"id", "category", "question", "answer", "score"} <= set(hits[0])
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_ask_prints_a_readable_ranked_list(index_dir: Path, capsys) -> None:
    assert main(["ask", "登不上去", "--index", str(index_dir), "-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1. [") and "(login, account)" in out[0]
    assert out[2].startswith("2. [")


def test_ask_with_category_filter(index_dir: Path, capsys) -> None:
    main(["ask", "充值", "--index", str(index_dir), "--category", "account", "--json"])
    assert {h["category"] for h in json.loads(capsys.readouterr().out)} == {"account"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "  ", "--index", "{idx}"], "empty or whitespace only"),
        (["ask", "退款", "--index", "{idx}", "-k", "0"], "k must be a positive int"),
        (["ask", "退款", "--index", "{missing}"], "no such index directory"),
        (["ask", "退款", "--index", "{idx}", "--category", "nope"], "unknown category"),
        (["build", "--corpus", "{missing}", "--out", "{out}"], "file not found"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(index_dir, tmp_path, capsys, argv, message):
    paths = {
        "idx": str(index_dir),
        "missing": str(tmp_path / "missing"),
        "out": str(tmp_path / "out"),
    }
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("walletfaq: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_corpus_line_is_reported_by_build(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"id": "a", "category": "c", "question": "q"}\n', encoding="utf-8")
    assert main(["build", "--corpus", str(corpus), "--out", str(tmp_path / "o")]) == 2
    assert f"{corpus}:1 field 'answer'" in capsys.readouterr().err


def test_console_script_runs_as_a_module(tmp_path: Path) -> None:
    env = {**os.environ, "WALLETFAQ_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "walletfaq", "ask", " ", "--index", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("walletfaq: error:")


def test_eval_prints_the_metrics_table(index_dir: Path, tmp_path: Path, capsys) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"query": "怎么退款", "gold": ["refund"], "style": "keyword"}\n'
        '{"query": "天气", "gold": []}\n',
        encoding="utf-8",
    )
    assert main(["eval", "--index", str(index_dir), "--queries", str(queries)]) == 0
    out = capsys.readouterr().out
    assert "2 queries (1 in domain)" in out and "recall@1" in out
    assert "overall" in out and "style keyword" in out


def test_eval_json_reports_the_metrics(index_dir: Path, tmp_path: Path, capsys) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "怎么退款", "gold": ["refund"]}\n', encoding="utf-8")
    assert main(["eval", "--index", str(index_dir), "--queries", str(queries), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["recall@1"] == 1.0 and report["n_in_domain"] == 1


def test_answer_prints_the_entry_when_confident(index_dir: Path, capsys) -> None:
    assert main(["answer", "怎么退款", "--index", str(index_dir), "--threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "(refund, money)" in out and "先联系商户申请退款。" in out


def test_answer_prints_the_fallback_when_not_confident(index_dir: Path, capsys) -> None:
    argv = ["answer", "今天天气怎么样", "--index", str(index_dir), "--threshold", "0.99"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "no confident answer" in out and "人工客服" in out


def test_answer_json_has_confident_message_hit_and_candidates(index_dir: Path, capsys) -> None:
    argv = ["answer", "今天天气怎么样", "--index", str(index_dir), "--threshold", "0.99", "--json"]
    assert main(argv) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["confident"] is False and outcome["hit"] is None
    assert "人工客服" in outcome["message"] and len(outcome["candidates"]) == 3


def test_answer_rejects_a_threshold_that_is_not_a_number(index_dir: Path, capsys) -> None:
    assert main(["answer", "退款", "--index", str(index_dir), "--threshold", "nan"]) == 2
    assert "threshold must be a finite number" in capsys.readouterr().err


def test_ask_json_lists_the_matched_text(index_dir: Path, capsys) -> None:
    assert main(["ask", "refund steps", "--index", str(index_dir), "--json", "-k", "1"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert set(hit) == {"id", "category", "question", "answer", "score", "matched"}
    assert hit["matched"] == "refund steps"


def test_build_reuses_the_cached_index(index_dir, tiny_corpus_file, encoder, tmp_path, capsys):
    first = ["build", "--corpus", str(tiny_corpus_file), "--model", "hash-test"]
    assert main([*first, "--out", str(tmp_path / "a")]) == 0
    embedded = encoder.texts_encoded
    assert main([*first, "--out", str(tmp_path / "b")]) == 0
    assert encoder.texts_encoded == embedded  # the second build embedded nothing
    assert (tmp_path / "a" / "index.faiss").read_bytes() == (
        tmp_path / "b" / "index.faiss"
    ).read_bytes()


def test_export_writes_the_saved_corpus_as_jsonl(index_dir: Path, tmp_path: Path) -> None:
    from walletfaq import load_corpus

    assert main(["export", "--index", str(index_dir), "--out", str(tmp_path / "faq.jsonl")]) == 0
    assert load_corpus(tmp_path / "faq.jsonl").ids == ("login", "topup", "refund", "fees", "safety")
