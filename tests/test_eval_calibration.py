"""calibrate(): warns when the sample is too small to trust, reports a precision interval,
can also demand that out-of-domain questions be refused, and reuses an EvalReport."""

from __future__ import annotations

import warnings

import pytest

from walletfaq import Corpus, FAQRetriever, WalletFAQError, calibrate, evaluate
from walletfaq.quality.calibration import (
    MIN_CALIBRATION_QUERIES,
    MIN_OUT_OF_DOMAIN_QUERIES,
    CalibrationWarning,
)
from walletfaq.quality.evaluation import wilson_interval

from .conftest import TINY_ENTRIES
from .test_evaluate import QUERIES

OUT_OF_DOMAIN = ["今天天气怎么样", "推荐一部电影", "明天会下雨吗", "附近有什么好吃的", "怎么学游泳",
                 "股票会涨吗", "足球比赛比分", "火车票几点", "猫咪吃什么", "周末去哪玩",
                 "怎么做红烧肉", "感冒了吃什么药", "手机怎么截图", "英语怎么学", "血压正常值",
                 "地铁几点停运", "如何种花", "狗狗掉毛", "房价会跌吗", "咖啡因的作用",
                 "世界最高的山", "电脑开不了机"]  # fmt: skip


def many_queries() -> list[dict]:
    """110 in-domain variants of the tiny corpus' questions plus 22 out-of-domain ones."""
    in_domain = []
    for entry in TINY_ENTRIES:
        texts = [entry["question"], *entry["alt_questions"]]
        for i in range(22):
            text = texts[i % len(texts)]
            in_domain.append({"query": text + "?" * (i // len(texts)), "gold": [entry["id"]]})
    return in_domain + [{"query": q, "gold": []} for q in OUT_OF_DOMAIN]


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


def test_ten_queries_give_a_warning_with_the_precision_interval(retriever) -> None:
    ten = [*QUERIES, *QUERIES[:4]]
    with pytest.warns(CalibrationWarning) as caught:
        calibration = calibrate(retriever, ten, target_precision=0.9)
    messages = [str(w.message) for w in caught]
    low, high = calibration.precision_interval
    small = next(m for m in messages if "only 10 labelled queries" in m)
    assert f"{low:.3f}-{high:.3f}" in small
    assert any("out-of-domain queries" in m for m in messages)


def test_enough_queries_calibrate_without_a_warning(retriever) -> None:
    queries = many_queries()
    assert len(queries) >= MIN_CALIBRATION_QUERIES
    assert len(OUT_OF_DOMAIN) >= MIN_OUT_OF_DOMAIN_QUERIES
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        calibration = calibrate(retriever, queries, target_precision=0.9)
    assert calibration.reached and calibration.n_queries == len(queries)


def test_the_chosen_precision_has_a_wilson_interval(retriever) -> None:
    calibration = calibrate(retriever, many_queries(), target_precision=0.9, confidence=0.9)
    chosen = calibration.chosen
    assert calibration.precision_interval == wilson_interval(
        chosen.answered_correct, chosen.answered, 0.9
    )
    assert chosen.precision_low <= chosen.precision <= chosen.precision_high


def test_an_unreachable_target_warns_and_says_so(retriever) -> None:
    impossible = [*many_queries(), {"query": "无法登录怎么办", "gold": ["fees"]}]
    with pytest.warns(CalibrationWarning, match="no threshold reaches precision 1"):
        calibration = calibrate(retriever, impossible, target_precision=1.0)
    assert not calibration.reached
    assert calibration.chosen.precision == max(p.precision for p in calibration.curve)


def test_min_ood_abstain_also_refuses_out_of_domain_questions(retriever) -> None:
    report = evaluate(retriever, many_queries())
    plain = calibrate(retriever, report, target_precision=0.5)
    strict = calibrate(retriever, report, target_precision=0.5, min_ood_abstain=0.95)
    assert strict.chosen.ood_abstain >= 0.95 and strict.chosen.precision >= 0.5
    assert strict.threshold >= plain.threshold
    lower = [p for p in strict.curve if p.threshold < strict.threshold]
    assert all(p.ood_abstain < 0.95 or p.precision < 0.5 for p in lower)


def test_min_ood_abstain_needs_out_of_domain_queries(retriever) -> None:
    in_domain_only = [q for q in many_queries() if q["gold"]]
    with pytest.raises(WalletFAQError, match="needs out-of-domain queries"):
        calibrate(retriever, in_domain_only, min_ood_abstain=0.9)


def test_an_eval_report_is_reused_without_encoding_again(retriever, encoder) -> None:
    report = evaluate(retriever, many_queries())
    before = encoder.texts_encoded
    from_report = calibrate(retriever, report, target_precision=0.9)
    assert encoder.texts_encoded == before
    assert from_report == calibrate(retriever, many_queries(), target_precision=0.9)


def test_a_report_from_another_corpus_is_refused(retriever, encoder) -> None:
    entry = {"id": "other", "category": "x", "question": "别的问题", "answer": "别的答案"}
    other = FAQRetriever.build(Corpus.from_entries([entry], source="other"), model=encoder)
    report = evaluate(other, [{"query": "别的", "gold": ["other"]}])
    with pytest.raises(WalletFAQError, match=r"entry id\(s\) \['other'\]"):
        calibrate(retriever, report)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("target_precision", 0.0), ("min_ood_abstain", 1.5), ("confidence", 1.0)],
)
def test_out_of_range_arguments_are_named(retriever, argument: str, value: float) -> None:
    with pytest.raises(WalletFAQError, match=argument):
        calibrate(retriever, QUERIES, **{argument: value})
