"""Hybrid and ensemble retrieval: BM25 and a second encoder fused with the primary encoder,
ranked by per-question z-scores, with the primary's cosine as every hit's score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from walletfaq import Corpus, FAQRetriever, HybridRetriever, evaluate, tune
from walletfaq.encoders.restore import is_tuned
from walletfaq.errors import CorpusError, IndexFormatError, QueryError, WalletFAQError
from walletfaq.retrieval.hybrid import fuse
from walletfaq.retrieval.lexical import LexicalIndex, Tokenizer, bundled_lexicon_path, read_lexicon

from .conftest import TINY_ENTRIES, HashEncoder

QUESTIONS = ["登不上去了", "钱充了没到怎么办", "怎么退款", "提现手续费多少", "防诈骗"]


@pytest.fixture
def primary(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


@pytest.fixture
def second(tiny_corpus: Corpus) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder(dim=48, name="hash-b", salt="b"))


def ranking(hits) -> list[tuple[float, str]]:
    """Hits as (score, id), equal scores (ties, in any order) sorted by id."""
    return sorted((-round(h.score, 5), h.id) for h in hits)


def test_with_only_the_primary_weighted_the_ranking_is_the_primary_ranking(primary) -> None:
    hybrid = HybridRetriever([primary], lexical="bm25", weights={"bm25": 0.0})
    for question in QUESTIONS:
        assert ranking(hybrid.ask(question, k=5)) == ranking(primary.ask(question, k=5))
        assert ranking(hybrid.ask(question, k=3, category="money")) == ranking(
            primary.ask(question, k=3, category="money")
        )


def test_every_hit_keeps_the_primary_cosine_and_matched_text(primary) -> None:
    hybrid = HybridRetriever([primary], lexical="bm25", weights={"bm25": 1.0})
    for question in QUESTIONS:
        dense = {hit.id: hit for hit in primary.ask(question, k=len(primary.corpus))}
        (query,) = primary.encoder.encode_queries([question])
        for hit in hybrid.ask(question, k=5):
            assert hit.score == pytest.approx(dense[hit.id].score, abs=1e-6)
            (row,) = primary.encoder.encode_queries([hit.matched])
            assert hit.matched in primary.entry(hit.id).questions()
            assert float(query @ row) == pytest.approx(hit.score, abs=1e-6)


def test_bm25_ranks_the_entry_sharing_the_exact_term_first(primary) -> None:
    lexical_only = HybridRetriever(
        [primary], lexical="bm25", weights={"hash-test": 0.0, "bm25": 1.0}
    )
    assert lexical_only.ask("提现手续费", k=1)[0].id == "fees"
    scores = lexical_only.channel_scores(["提现手续费", "今天天气"])["bm25"]
    assert scores.shape == (2, len(primary.corpus))
    assert scores[0, primary.corpus.ids.index("fees")] > 0
    assert not scores[1].any()  # no shared word: every entry scores 0


def test_traditional_chinese_questions_match_simplified_terms_lexically(primary) -> None:
    lexical_only = HybridRetriever(
        [primary], lexical="bm25", weights={"hash-test": 0.0, "bm25": 1.0}
    )
    assert lexical_only.ask("提現手續費", k=1)[0].id == "fees"


def test_fusion_standardises_each_channel_per_question() -> None:
    scores = {
        "a": np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]),
        "b": np.array([[30.0, 20.0, 10.0], [0.0, 0.0, 9.0]]),
    }
    fused = fuse(scores, {"a": 1.0, "b": 0.5})
    z = np.array([-1.0, 0.0, 1.0]) * np.sqrt(3 / 2)
    assert fused[0] == pytest.approx(z - 0.5 * z)
    # a constant row contributes nothing; only channel b orders the second question
    assert fused[1] == pytest.approx(0.5 * np.array([-1, -1, 2]) / np.sqrt(2))
    assert fuse(scores, {"a": 2.0, "b": 0.0})[0] == pytest.approx(2 * z)


def test_an_ensemble_of_two_encoders_uses_both(primary, second) -> None:
    ensemble = HybridRetriever([primary, second], lexical=None, weights={"hash-b": 1.0})
    assert ensemble.channels == ("hash-test", "hash-b")
    both = ensemble.channel_scores(QUESTIONS)
    expected = fuse(both, {"hash-test": 1.0, "hash-b": 1.0})
    for i, question in enumerate(QUESTIONS):
        ranked = [hit.id for hit in ensemble.ask(question, k=5)]
        order = np.argsort(-expected[i], kind="stable")
        assert ranked == [primary.corpus.ids[j] for j in order]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"nope": 1.0}, "unknown channels"),
        ({"bm25": -0.1}, "finite number"),
        ({"bm25": float("nan")}, "finite number"),
        ({"bm25": True}, "finite number"),
        ({"hash-test": 0.0, "bm25": 0.0}, "at least one"),
    ],
)
def test_bad_weights_are_refused_with_the_channel_named(primary, weights, message) -> None:
    with pytest.raises(WalletFAQError, match=message):
        HybridRetriever([primary], lexical="bm25", weights=weights)


def test_members_must_share_one_corpus_and_differ_in_model(primary, encoder) -> None:
    other = FAQRetriever.build(
        Corpus.from_entries(TINY_ENTRIES[:3], source="x"), model=HashEncoder(name="hash-b")
    )
    with pytest.raises(WalletFAQError, match="another corpus"):
        HybridRetriever([primary, other])
    with pytest.raises(WalletFAQError, match="given twice"):
        HybridRetriever([primary, primary])
    with pytest.raises(WalletFAQError, match="lexical"):
        HybridRetriever([primary], lexical="tfidf")  # type: ignore[arg-type]


def test_bad_questions_raise_query_errors_like_the_retriever(primary) -> None:
    hybrid = HybridRetriever([primary])
    with pytest.raises(QueryError):
        hybrid.ask("   ")
    with pytest.raises(QueryError):
        hybrid.ask("退款", k=0)
    with pytest.raises(QueryError, match="unknown category"):
        hybrid.ask("退款", category="nope")
    with pytest.raises(QueryError):
        hybrid.ask_batch("退款")
    with pytest.raises(QueryError):
        hybrid.answer("退款", threshold=float("inf"))


def test_answer_uses_the_primary_threshold_and_fallback(primary) -> None:
    hybrid = HybridRetriever([primary])
    assert hybrid.answer("怎么退款", threshold=-1.0).confident
    refused = hybrid.answer("退款要怎么弄", threshold=1.0)  # not an FAQ text verbatim
    assert not refused.confident and refused.hit is None and refused.candidates


def test_fit_weights_never_does_worse_than_the_weights_it_started_from(primary, second) -> None:
    hybrid = HybridRetriever([primary, second], lexical="bm25")
    queries = [
        {"query": q, "gold": [g]}
        for q, g in [
            ("登不上去了", "login"),
            ("钱充了没到", "topup"),
            ("退款怎么弄", "refund"),
            ("提现收费吗", "fees"),
            ("账户安全", "safety"),
            ("top up not arrived", "topup"),
        ]
    ]
    before = evaluate(hybrid, queries).metrics["mrr@10"]
    fitted = hybrid.fit_weights(queries)
    assert set(fitted) == {"hash-test", "hash-b", "bm25"} and fitted["hash-test"] == 1.0
    assert hybrid.weights == fitted
    assert evaluate(hybrid, queries).metrics["mrr@10"] >= before - 1e-9
    with pytest.raises(WalletFAQError, match="not in the corpus"):
        hybrid.fit_weights([{"query": "退款", "gold": ["missing"]}])


def test_saved_hybrid_loads_to_the_same_answers(primary, second, tmp_path: Path) -> None:
    hybrid = HybridRetriever([primary, second], lexical="bm25", weights={"bm25": 0.3})
    target = hybrid.save(tmp_path / "hybrid")
    loaded = HybridRetriever.load(target, models=[primary.encoder, second.encoder])
    assert loaded.weights == hybrid.weights and loaded.terms == hybrid.terms
    for question in QUESTIONS:
        assert loaded.ask(question) == hybrid.ask(question)


def test_a_hybrid_save_replaces_only_its_own_kind(primary, tmp_path: Path) -> None:
    hybrid = HybridRetriever([primary])
    foreign = tmp_path / "app"
    foreign.mkdir()
    (foreign / "index.html").write_text("<html/>", "utf-8")
    with pytest.raises(IndexFormatError, match="not a walletfaq hybrid"):
        hybrid.save(foreign)
    assert (foreign / "index.html").read_text("utf-8") == "<html/>"
    target = hybrid.save(tmp_path / "h")
    hybrid.save(target)  # replacing a hybrid index is fine


def test_an_edited_or_foreign_hybrid_manifest_is_refused(primary, tmp_path: Path) -> None:
    target = HybridRetriever([primary]).save(tmp_path / "h")
    manifest = target / "hybrid.json"
    raw = json.loads(manifest.read_text("utf-8"))
    raw["weights"]["bm25"] = 5.0
    manifest.write_text(json.dumps(raw), "utf-8")
    with pytest.raises(IndexFormatError, match="checksum"):
        HybridRetriever.load(target, models=[primary.encoder])
    plain = primary.save(tmp_path / "plain")
    with pytest.raises(IndexFormatError, match="FAQRetriever.load"):
        HybridRetriever.load(plain)


def test_live_edits_reach_every_channel_and_persist(primary, second, tmp_path: Path) -> None:
    hybrid = HybridRetriever([primary, second], lexical="bm25", weights={"bm25": 1.0})
    new = {
        "id": "nfc",
        "category": "money",
        "question": "碰一碰支付失败怎么办",
        "answer": "打开手机的NFC开关后重试。",
        "alt_questions": ["NFC付款不了"],
    }
    hybrid.add([new], persist_to=tmp_path / "h")
    assert hybrid.version == 2
    assert hybrid.ask("NFC付款不了", k=1)[0].id == "nfc"
    assert hybrid.channel_scores(["NFC"])["bm25"][0, hybrid.corpus.ids.index("nfc")] > 0
    loaded = HybridRetriever.load(tmp_path / "h", models=[primary.encoder, second.encoder])
    assert loaded.ask("NFC付款不了") == hybrid.ask("NFC付款不了")
    hybrid.remove("nfc")
    assert "nfc" not in hybrid.corpus.ids
    assert all(hit.id != "nfc" for hit in hybrid.ask("NFC付款不了"))


def test_a_failed_persist_applies_nothing(primary, tmp_path: Path) -> None:
    hybrid = HybridRetriever([primary])
    blocker = tmp_path / "file"
    blocker.write_text("x", "utf-8")
    with pytest.raises(IndexFormatError):
        hybrid.remove("fees", persist_to=blocker)
    assert "fees" in hybrid.corpus.ids and "fees" in primary.corpus.ids


def test_evaluate_accepts_a_hybrid_retriever(primary) -> None:
    report = evaluate(HybridRetriever([primary]), [{"query": "怎么退款", "gold": ["refund"]}])
    assert report.metrics["recall@1"] == 1.0


def test_the_tokenizer_keeps_lexicon_words_whole() -> None:
    plain, domain = Tokenizer(), Tokenizer(["零钱通", "花呗"])
    assert "零钱通" not in plain("零钱通转出到账")
    assert {"零钱通", "转出"} <= set(domain("零钱通转出到账"))
    assert "花呗" in domain("花呗怎么还")
    assert domain("ＮＦＣ 支付！") == ["nfc", "支付"]  # full width folded, punctuation dropped


def test_the_bundled_lexicon_has_the_domain_words() -> None:
    terms = read_lexicon(bundled_lexicon_path())
    assert {"充值", "提现", "实名认证", "花呗", "零钱通"} <= set(terms)


def test_a_bad_lexicon_line_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text("# words\n花呗 100 n\n零钱通 many\n", "utf-8")
    with pytest.raises(CorpusError, match=r"lexicon.txt:3.*positive integer") as info:
        read_lexicon(path)
    assert info.value.line == 3


def test_lexical_index_scores_every_row() -> None:
    index = LexicalIndex(["充值 到账", "提现 手续费", ""], Tokenizer())
    scores = index.scores("手续费")
    assert scores.shape == (3,) and scores.argmax() == 1 and scores[0] == scores[2] == 0


def test_numpy_weights_are_accepted_and_a_negative_zero_reads_as_zero(primary) -> None:
    hybrid = HybridRetriever([primary], weights={"bm25": np.float32(0.5)})
    assert hybrid.weights["bm25"] == pytest.approx(0.5)
    hybrid.set_weights({"bm25": -0.0})
    assert str(hybrid.weights["bm25"]) == "0.0"


def test_set_weights_refuses_something_that_is_not_a_dict(primary) -> None:
    with pytest.raises(WalletFAQError, match="dict of channel"):
        HybridRetriever([primary]).set_weights(None)  # type: ignore[arg-type]


def test_an_empty_batch_gives_no_hits_like_the_retriever(primary) -> None:
    hybrid = HybridRetriever([primary])
    assert hybrid.ask_batch([]) == primary.ask_batch([]) == []
    assert hybrid.channel_scores([])["bm25"].shape == (0, len(primary.corpus))


def test_a_lexicon_that_is_not_a_path_or_a_word_list_is_refused(primary) -> None:
    with pytest.raises(WalletFAQError, match="got int"):
        HybridRetriever([primary], lexicon=5)  # type: ignore[arg-type]


def test_a_lexicon_frequency_of_non_ascii_digits_is_reported_with_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text("花呗 100\n零钱通 ²\n", "utf-8")
    with pytest.raises(CorpusError, match="positive integer") as info:
        read_lexicon(path)
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grid": []}, "grid must be"),
        ({"grid": "abc"}, "grid must be"),
        ({"grid": [0.5, float("nan")]}, "grid must be"),
        ({"depth": 0}, "depth must be"),
        ({"depth": -1}, "depth must be"),
        ({"depth": 1.5}, "depth must be"),
    ],
)
def test_fit_weights_refuses_a_bad_grid_or_depth(primary, options, message) -> None:
    hybrid = HybridRetriever([primary])
    with pytest.raises(WalletFAQError, match=message):
        hybrid.fit_weights([{"query": "怎么退款", "gold": ["refund"]}], **options)


def test_fit_weights_refuses_none_instead_of_reading_the_bundled_queries(primary) -> None:
    with pytest.raises(WalletFAQError, match="got NoneType"):
        HybridRetriever([primary]).fit_weights(None)  # type: ignore[arg-type]


def test_fit_weights_reads_every_query_of_a_generator(primary) -> None:
    queries = ({"query": q, "gold": [g]} for q, g in [("退款", "missing"), ("充值", "topup")])
    with pytest.raises(CorpusError, match="missing"):
        HybridRetriever([primary]).fit_weights(queries)


def test_an_unknown_gold_id_in_fit_weights_names_the_file_line(primary, tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"query": "充值", "gold": ["topup"]}\n\n{"query": "退款", "gold": ["nope"]}\n', "utf-8"
    )
    with pytest.raises(CorpusError, match="not in the corpus") as info:
        HybridRetriever([primary]).fit_weights(path)
    assert (info.value.line, info.value.field) == (3, "gold")


# --------------------------------------------------------------------------- tune


def labelled_queries(tiny_corpus: Corpus) -> list[dict[str, object]]:
    """Every text of every entry, and the same with a filler word: 40 labelled questions."""
    return [
        {"query": text + suffix, "gold": [entry.id]}
        for entry in tiny_corpus
        for text in entry.questions()
        for suffix in ("", "呀")
    ]


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def test_with_members_keeps_the_lexicon_and_carries_each_weight_over(primary, second) -> None:
    hybrid = HybridRetriever([primary, second], lexical="bm25", weights={"hash-b": 0.3})
    other = FAQRetriever.build(primary.corpus, model=HashEncoder(dim=48, name="hash-c", salt="c"))
    replaced = hybrid.with_members([primary, other])
    assert replaced.members == (primary, other)
    assert replaced.terms == hybrid.terms
    assert replaced.weights == {"hash-test": 1.0, "hash-c": 0.3, "bm25": hybrid.weights["bm25"]}
    with pytest.raises(WalletFAQError, match="2 FAQRetriever objects, one per current member"):
        hybrid.with_members([primary])
    with pytest.raises(WalletFAQError, match="one per current member"):
        hybrid.with_members([primary, "e5-small"])  # type: ignore[list-item]


def test_tune_on_a_hybrid_tunes_each_encoder_and_fits_the_weights_on_training_queries_only(
    primary, second, tiny_corpus: Corpus, tmp_path: Path
) -> None:
    hybrid = HybridRetriever([primary, second], lexical="bm25")
    weights_before = dict(hybrid.weights)
    records = labelled_queries(tiny_corpus)
    data = write_jsonl(tmp_path / "logs.jsonl", records)

    result = tune(hybrid, data, holdout=0.3, epochs=3, seed=1, progress=False)

    tuned = result.retriever
    assert isinstance(tuned, HybridRetriever)
    assert all(is_tuned(member.encoder) for member in tuned.members)  # one adapter each
    assert result.settings["members_tuned"] == ["hash-test", "hash-b"]
    assert hybrid.members == (primary, second) and hybrid.weights == weights_before  # unchanged
    held = set(result.holdout_queries)
    train = [r for r in records if primary.normalizer(str(r["query"])) not in held]
    test = [r for r in records if primary.normalizer(str(r["query"])) in held]
    assert 0 < len(test) < len(records) and len(test) == result.holdout_size
    refit = hybrid.with_members(tuned.members)
    assert result.settings["weights_fitted"] is True
    assert tuned.weights == refit.fit_weights(train) == result.settings["weights"]
    after = evaluate(tuned, test)
    assert result.after == {
        "mrr@10": pytest.approx(after.metrics["mrr@10"]),
        "recall@1": pytest.approx(after.metrics["recall@1"]),
        "queries": len(test),
    }
    assert result.before["mrr@10"] == pytest.approx(evaluate(hybrid, test).metrics["mrr@10"])


def test_tune_on_a_hybrid_with_pairs_keeps_the_weights_and_reports_the_primary(
    primary, second
) -> None:
    pairs = [("登不上去了", "无法登录"), ("钱没到", "充值不到账"), ("退钱", "退款流程")] * 4
    hybrid = HybridRetriever([primary, second], lexical="bm25", weights={"bm25": 0.4})
    result = tune(hybrid, pairs, holdout=0.0, epochs=2, progress=False)
    alone = tune(primary, pairs, holdout=0.0, epochs=2, progress=False)
    assert result.retriever.weights == hybrid.weights  # type: ignore[union-attr]
    assert result.settings["weights_fitted"] is False
    assert (result.before, result.after) == (alone.before, alone.after)
    question = "登不上去了"
    assert [h.id for h in result.retriever.primary.ask(question)] == [  # type: ignore[union-attr]
        h.id for h in alone.retriever.ask(question)
    ]
    second_alone = tune(second, pairs, holdout=0.0, epochs=2, progress=False).retriever
    assert [h.id for h in result.retriever.members[1].ask(question)] == [  # type: ignore[union-attr]
        h.id for h in second_alone.ask(question)
    ]
