"""Results are aggregated per FAQ entry: each entry once, at its best row's score."""

from __future__ import annotations

import numpy as np
import pytest

from walletfaq import FAQRetriever, QueryError
from walletfaq.index.search import best_per_entry


def test_each_entry_appears_once_at_its_best_score() -> None:
    row_entry = np.array([0, 0, 1, 1, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    rows = np.array([1, 0, 3, 2, 4])
    picked = best_per_entry(scores, rows, row_entry, k=3)
    assert picked == [
        (0, 1, pytest.approx(0.9)),
        (1, 3, pytest.approx(0.7)),
        (2, 4, pytest.approx(0.5)),
    ]


def test_missing_rows_and_filtered_entries_are_skipped() -> None:
    row_entry = np.array([0, 1, 2])
    picked = best_per_entry(
        np.array([0.9, 0.8, 0.7]),
        np.array([-1, 1, 2]),
        row_entry,
        k=5,
        allowed=np.array([True, False, True]),
    )
    assert [entry for entry, _, _ in picked] == [2]


def test_ask_never_returns_an_entry_twice(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    hits = retriever.ask("充值不到账", k=5)
    assert len(hits) == 5 and len({h.id for h in hits}) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_ask_ranks_the_entry_whose_text_matches_best_first(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    top = retriever.ask("钱充了没到", k=1)[0]
    assert (top.id, top.category, top.matched) == ("topup", "money", "钱充了没到")
    assert top.question == "充值不到账怎么办" and top.answer.startswith("查看交易记录")
    assert top.score == pytest.approx(1.0, abs=1e-5)


def test_hit_score_equals_the_best_cosine_over_the_entry_texts(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    question = "退款怎么操作"
    q = encoder.encode_queries([question])[0]
    for hit in retriever.ask(question, k=5):
        texts = tiny_corpus[hit.id].questions()
        best = max(float(encoder.encode_documents([t])[0] @ q) for t in texts)
        assert hit.score == pytest.approx(best, abs=1e-5)


def test_category_filter_returns_only_that_category(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    hits = retriever.ask("充值不到账", k=5, category="account")
    assert [h.category for h in hits] == ["account", "account"]


def test_unknown_category_is_an_error_listing_the_known_ones(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    with pytest.raises(QueryError, match=r"unknown category 'refund'.*'account', 'money'"):
        retriever.ask("退款", category="refund")


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_or_whitespace_questions_raise(tiny_corpus, encoder, question) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    with pytest.raises(QueryError, match="empty or whitespace only"):
        retriever.ask(question)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k_raises(tiny_corpus, encoder, k) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    with pytest.raises(QueryError, match="k must be a positive int"):
        retriever.ask("退款", k=k)


def test_non_string_question_raises(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    with pytest.raises(QueryError, match="must be a string, got int"):
        retriever.ask(42)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="single string"):
        retriever.ask_batch("退款")  # type: ignore[arg-type]


def test_very_long_question_is_answered_not_crashed_on(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    assert len(retriever.ask("我的钱充值不到账" * 5000, k=2)) == 2


def test_ask_batch_equals_ask_one_by_one(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    questions = ["登不上去", "怎么退款", "收费吗"]
    batch = retriever.ask_batch(questions, k=3)
    fresh = FAQRetriever.build(tiny_corpus, model=encoder)
    assert batch == [fresh.ask(q, k=3) for q in questions]


def test_repeated_question_is_served_from_the_cache(tiny_corpus, encoder, monkeypatch) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    first = retriever.ask("怎么退款", k=2)
    monkeypatch.setattr(encoder, "encode_queries", lambda texts: pytest.fail("re-encoded"))
    assert retriever.ask("  怎么退款 ", k=2) == first


def test_k_larger_than_the_corpus_returns_every_entry(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    assert len(retriever.ask("退款", k=50)) == len(tiny_corpus)


def test_hits_are_frozen(tiny_corpus, encoder) -> None:
    hit = FAQRetriever.build(tiny_corpus, model=encoder).ask("退款", k=1)[0]
    with pytest.raises(AttributeError):
        hit.score = 0.0  # type: ignore[misc]


def test_traditional_chinese_questions_are_converted_before_encoding(tiny_corpus) -> None:
    from .conftest import HashEncoder

    seen: list[str] = []

    class Recording(HashEncoder):
        def encode_queries(self, texts):
            seen.extend(texts)
            return super().encode_queries(texts)

    retriever = FAQRetriever.build(tiny_corpus, model=Recording())
    seen.clear()
    retriever.ask("  儲值  沒到帳 ", k=1)
    assert seen == ["储值 没到帐"]


@pytest.mark.parametrize("mode", ["both", "query", "document"])
def test_question_rows_are_embedded_per_question_encoding(tiny_corpus, mode) -> None:
    from walletfaq.retrieval.embedding import embed_corpus_texts

    from .conftest import HashEncoder

    class Prompted(HashEncoder):
        def encode_queries(self, texts):
            return super().encode_queries(["q:" + t for t in texts])

        def encode_documents(self, texts):
            return super().encode_documents(["d:" + t for t in texts])

    enc = Prompted()
    texts = ["退款", "登录"]
    got = embed_corpus_texts(enc, texts, mode)
    q, d = enc.encode_queries(texts), enc.encode_documents(texts)
    expected = {
        "query": q,
        "document": d,
        "both": (q + d) / np.linalg.norm(q + d, axis=1, keepdims=True),
    }
    np.testing.assert_allclose(got, expected[mode], atol=1e-6)


def test_unknown_question_encoding_is_rejected(tiny_corpus, encoder) -> None:
    from walletfaq import WalletFAQError

    with pytest.raises(WalletFAQError, match="question_encoding must be"):
        FAQRetriever.build(tiny_corpus, model=encoder, question_encoding="sideways")


def test_is_cached_tells_whether_ask_would_encode(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    assert not retriever.is_cached("怎么退款", k=3)
    retriever.ask("  怎么退款 ", k=3)
    assert retriever.is_cached("怎么退款", k=3) and not retriever.is_cached("怎么退款", k=4)
    assert not retriever.is_cached("\x00")
    retriever.clear_cache()
    assert not retriever.is_cached("怎么退款", k=3)
