"""One clear error for every bad input; cleaned text is the same on every path."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from walletfaq import FAQRetriever, QueryError, WalletFAQError
from walletfaq.cli import main

from .conftest import HashEncoder


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


@pytest.mark.parametrize("question", ["\ud800", "充值\udcff没到账", "\udfff"])
def test_lone_surrogates_are_a_query_error(retriever, question: str) -> None:
    with pytest.raises(QueryError, match="not valid Unicode text"):
        retriever.ask(question)
    with pytest.raises(QueryError, match="question 1 is not valid Unicode"):
        retriever.ask_batch(["退款", question])


@pytest.mark.parametrize("question", ["\x01\x02", "\x00", "\u200b\u200b", "\ufeff \u200d\t"])
def test_control_or_invisible_characters_only_is_an_empty_question(retriever, question) -> None:
    with pytest.raises(QueryError, match="empty"):
        retriever.ask(question)


def test_control_characters_are_removed_before_encoding_on_every_path(tiny_corpus) -> None:
    seen: list[str] = []

    class Recording(HashEncoder):
        def encode_queries(self, texts):  # type: ignore[no-untyped-def]
            seen.extend(texts)
            return super().encode_queries(texts)

    retriever = FAQRetriever.build(tiny_corpus, model=Recording())
    seen.clear()
    dirty = "充值\x00不到账\u200b怎么\x07办"
    alone = retriever.ask(dirty, k=3)
    batch = retriever.ask_batch(["退款", dirty, "收费吗"], k=3)[1]
    assert seen == ["充值不到账怎么办", "退款", "收费吗"]  # the cache served the batch's copy
    assert alone == batch == retriever.ask("充值不到账怎么办", k=3)


@pytest.mark.parametrize("questions", [None, 42, {"退款"}, b"bytes", iter(["退款"])])
def test_ask_batch_needs_a_list_of_strings(retriever, questions) -> None:
    with pytest.raises(QueryError, match="ask_batch expects a list"):
        retriever.ask_batch(questions)


def test_ask_batch_of_nothing_is_nothing(retriever) -> None:
    assert retriever.ask_batch([]) == []


@pytest.mark.parametrize("category", [["money"], {"money": 1}, 3])
def test_a_category_that_is_not_a_string_is_a_query_error(retriever, category) -> None:
    with pytest.raises(QueryError, match="category must be a string or None"):
        retriever.ask("退款", category=category)


@pytest.mark.parametrize("threshold", ["x", math.nan, math.inf, True, [0.5]])
def test_a_threshold_that_is_not_a_finite_number_is_a_query_error(retriever, threshold) -> None:
    with pytest.raises(QueryError, match="threshold must be a finite number"):
        retriever.answer("退款", threshold=threshold)
    with pytest.raises(QueryError, match="threshold must be a finite number"):
        retriever.threshold = threshold


def test_numpy_thresholds_are_numbers(retriever) -> None:
    assert retriever.answer("怎么退款", threshold=np.float32(0.1)).confident


@pytest.mark.parametrize(
    "vectors", [np.zeros((2, 3)), np.full((1, 64), np.nan), "text", np.zeros((2, 2, 64))]
)
def test_search_vectors_checks_shape_and_values(retriever, vectors) -> None:
    with pytest.raises(QueryError, match="vectors must be"):
        retriever.search_vectors(vectors)


def test_search_vectors_normalises_what_it_is_given(retriever, encoder) -> None:
    vector = encoder.encode_queries(["怎么退款"]) * 7.5
    hits = retriever.search_vectors(vector, k=5)[0]
    assert hits[0].id == "refund" and all(hit.score <= 1.0 for hit in hits)


class Unnormalised(HashEncoder):
    """A custom encoder that forgets to normalise: scores must still be cosines."""

    def encode_queries(self, texts):  # type: ignore[no-untyped-def]
        return super().encode_queries(texts) * 3.0

    def encode_documents(self, texts):  # type: ignore[no-untyped-def]
        return super().encode_documents(texts) * 0.25


def test_scores_are_cosines_even_with_an_encoder_that_does_not_normalise(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=Unnormalised())
    for question in ["无法登录怎么办", "怎么退款", "xyz"]:
        for hit in retriever.ask(question, k=5):
            assert -1.0 <= hit.score <= 1.0
    assert retriever.ask("无法登录怎么办", k=1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_a_question_gets_one_ranking_alone_in_a_batch_and_in_any_order(tiny_corpus) -> None:
    questions = ["登不上去", "钱充了没到", "退款", "怎样保证账户安全", "收费吗", "refund"] * 3
    alone = [FAQRetriever.build(tiny_corpus, model=HashEncoder()).ask(q, k=5) for q in questions]
    for size in (1, 2, 7, len(questions)):
        fresh = FAQRetriever.build(tiny_corpus, model=HashEncoder())
        batched = []
        for start in range(0, len(questions), size):
            batched += fresh.ask_batch(questions[start : start + size], k=5)
        assert batched == alone, size


# ---------------------------------------------------------------- command line
@pytest.mark.parametrize("question", ["\x01\x02", "\udcff\udcfe", "\u200b"])
def test_cli_bad_questions_are_one_line_and_exit_2(index_dir: Path, capsys, question) -> None:
    assert main(["ask", question, "--index", str(index_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("walletfaq: error: ") and err.count("\n") == 1


def test_cli_undecodable_argv_bytes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    index = tmp_path / "missing-index"
    done = subprocess.run(
        [sys.executable, "-m", "walletfaq", "ask", b"\xff\xfe".decode("utf-8", "surrogateescape")]
        + ["--index", str(index)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(b"walletfaq: error: ") and done.stderr.count(b"\n") == 1
    assert b"not valid Unicode" in done.stderr  # checked before any index or model is loaded


def test_cli_unexpected_errors_are_one_line_exit_1_and_debug_shows_the_traceback(
    index_dir: Path, capsys, monkeypatch
) -> None:
    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(FAQRetriever, "ask", broken)
    assert main(["ask", "退款", "--index", str(index_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: something broke" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="something"):
        main(["--debug", "ask", "退款", "--index", str(index_dir)])


def test_every_walletfaq_error_is_a_value_error() -> None:
    assert issubclass(WalletFAQError, ValueError)


def test_eight_threads_asking_at_once_get_the_sequential_answers(tiny_corpus) -> None:
    from concurrent.futures import ThreadPoolExecutor

    questions = ["登不上去", "钱充了没到", "退款", "怎样保证账户安全", "收费吗", "refund"] * 20
    sequential = [
        FAQRetriever.build(tiny_corpus, model=HashEncoder()).ask(q, k=3) for q in questions
    ]
    shared = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda q: shared.ask(q, k=3), questions))
    assert concurrent == sequential
