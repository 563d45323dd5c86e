"""After tuning, the threshold is chosen again by the presets' rule on queries tuning did not
train on (and says which); a held-out split too small to mean anything is said to be so;
what tuning drops or cuts short is said too."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest

from walletfaq import Corpus, FAQRetriever, load_bundled_queries, load_queries
from walletfaq.data.contacts import load_bundled_contacts
from walletfaq.data.corpus import load_bundled_corpus
from walletfaq.quality.calibration import PRESET_RULE, CalibrationWarning
from walletfaq.quality.evaluation.runner import evaluate
from walletfaq.quality.tuning import (
    MIN_HOLDOUT_QUERIES,
    TuningWarning,
    load_tuning_data,
    tune,
)
from walletfaq.quality.tuning.recalibration import calibration_queries, recalibrate

from .conftest import HashEncoder
from .test_tune import planted_pairs

IN_DOMAIN = {
    "login": ["登不上去了", "登录失败", "无法登陆", "login fail", "登不进去", "登录不了怎么办"],
    "topup": ["充值没到", "钱没充进去", "充值不到账", "top up failed", "充了钱没有", "到账慢"],
    "refund": ["退款怎么办", "怎样退钱", "退款流程", "refund how", "申请退款", "退钱步骤"],
    "fees": ["手续费", "收费标准", "要收钱吗", "fee", "提现收费吗", "费用多少"],
    "safety": ["账户安全", "防止诈骗", "钱包安全", "safe wallet", "被骗了怎么办", "安全设置"],
}
OUT_OF_DOMAIN = ["今天天气", "推荐电影", "股票行情", "晚饭吃什么", "附近的医院", "火车票"]


@pytest.fixture
def retriever(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


def write_labelled(path: Path) -> Path:
    """``path`` as a JSONL of the labelled queries above (in- and out-of-domain)."""
    records = [{"query": q, "gold": [g]} for g, qs in IN_DOMAIN.items() for q in qs]
    records += [{"query": q, "gold": []} for q in OUT_OF_DOMAIN]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


@pytest.fixture
def queries_file(tmp_path: Path) -> Path:
    return write_labelled(tmp_path / "logs.jsonl")


def quietly(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Call ``function`` with the small-data warnings of these tiny sets silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        warnings.simplefilter("ignore", TuningWarning)
        return function(*args, **kwargs)


def test_tune_recalibrates_on_the_held_out_and_out_of_domain_queries_of_the_data(
    retriever: FAQRetriever, queries_file: Path
) -> None:
    result = quietly(tune, retriever, queries_file, holdout=0.5, seed=0, progress=False)
    recalibration = result.recalibration
    assert recalibration is not None
    assert str(queries_file) in recalibration.source and "held-out" in recalibration.source
    assert result.retriever.threshold == recalibration.threshold_after
    assert recalibration.threshold_before == retriever.threshold  # the base is left as it was
    held = set(result.holdout_queries)
    used = [q for q in load_queries(queries_file) if q.gold and q.query in held]
    assert recalibration.after.n_in_domain == len(used)
    assert recalibration.after.n_out_of_domain == len(OUT_OF_DOMAIN)


@pytest.fixture
def tuned_on_logs(retriever: FAQRetriever, queries_file: Path):  # type: ignore[no-untyped-def]
    """Tuned on half of the logs; the data, and the queries its threshold was chosen on."""
    result = quietly(tune, retriever, queries_file, holdout=0.5, seed=0, progress=False)
    data = load_tuning_data(queries_file, retriever.corpus.ids)
    found = calibration_queries(retriever, data, result.holdout_queries)
    assert found is not None
    return result, data, found[0]


def test_the_new_threshold_is_the_one_the_presets_rule_chooses(tuned_on_logs) -> None:
    result, _, queries = tuned_on_logs
    expected = quietly(PRESET_RULE.calibrate, result.retriever, evaluate(result.retriever, queries))
    assert result.retriever.threshold == expected.threshold


def test_the_calibration_queries_never_include_a_training_query(tuned_on_logs) -> None:
    result, data, queries = tuned_on_logs
    trained = set(data.texts) - set(result.holdout_queries)
    assert queries and not [q.query for q in queries if q.gold and q.query in trained]


def test_on_the_bundled_corpus_the_bundled_set_without_the_training_queries_is_used(
    encoder: HashEncoder,
) -> None:
    corpus = load_bundled_corpus()
    bundled = FAQRetriever.from_corpus(corpus, model=encoder, contacts=load_bundled_contacts())
    labelled = [q for q in load_bundled_queries() if q.gold]
    pairs = [(q.query, bundled.entry(q.gold[0]).question) for q in labelled[::2]]
    found = calibration_queries(bundled, load_tuning_data(pairs), ())
    assert found is not None
    queries, source = found
    trained = {text for pair in pairs for text in pair}
    assert not [q for q in queries if q.query in trained]
    assert sum(not q.gold for q in queries) == sum(not q.gold for q in load_bundled_queries())
    assert "bundled evaluation set" in source and "not in the training data" in source


def test_pairs_on_a_corpus_without_labelled_queries_keep_the_threshold_and_warn(
    retriever: FAQRetriever,
) -> None:
    with pytest.warns(TuningWarning, match="was not recalibrated"):
        result = tune(retriever, planted_pairs(), seed=0, progress=False)
    assert result.recalibration is None
    assert result.retriever.threshold == retriever.threshold
    assert "kept (not recalibrated)" in result.summary()


def test_recalibrate_false_keeps_the_base_threshold(
    retriever: FAQRetriever, queries_file: Path
) -> None:
    result = quietly(tune, retriever, queries_file, progress=False, recalibrate=False)
    assert result.recalibration is None and result.retriever.threshold == retriever.threshold


def test_recalibrate_reports_coverage_and_out_of_domain_before_and_after(
    retriever: FAQRetriever, queries_file: Path
) -> None:
    result = quietly(tune, retriever, queries_file, holdout=0.5, seed=0, progress=False)
    summary = result.summary()
    assert "recalibrated by the presets' rule" in summary
    for line in ("before (base at", "after (tuned at", "tuned at the old"):
        assert line in summary
    assert "coverage" in summary and "out-of-domain accepted" in summary


def test_recalibrate_sets_the_threshold_of_the_retriever_it_is_given(
    retriever: FAQRetriever, queries_file: Path, encoder: HashEncoder
) -> None:
    other = FAQRetriever.build(retriever.corpus, model=encoder)
    data = load_tuning_data(queries_file, retriever.corpus.ids)
    held = tuple(q for q in data.texts[::2])
    recalibration = quietly(recalibrate, retriever, other, data, held)
    assert recalibration is not None and other.threshold == recalibration.threshold_after
    assert recalibration.before.threshold == retriever.threshold


def test_a_held_out_split_too_small_to_mean_anything_is_said(retriever: FAQRetriever) -> None:
    with pytest.warns(TuningWarning, match=f"fewer than {MIN_HOLDOUT_QUERIES}"):
        result = quietly_except_small(tune, retriever, planted_pairs(20), progress=False)
    assert result.holdout_too_small and 0 < result.holdout_size < MIN_HOLDOUT_QUERIES
    assert "too few to tell a gain from luck" in result.summary()


def quietly_except_small(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not recalibrated.*", category=TuningWarning)
        return function(*args, **kwargs)


def test_a_large_enough_held_out_split_is_not_flagged(retriever: FAQRetriever) -> None:
    result = quietly(tune, retriever, planted_pairs(400), progress=False, epochs=2)
    assert result.holdout_size >= MIN_HOLDOUT_QUERIES and not result.holdout_too_small


def test_label_0_pairs_left_unused_are_said_so(
    retriever: FAQRetriever, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pairs.tsv"
    rows = ["sentence1\tsentence2\tlabel", *(f"{a}\t{b}\t1" for a, b in planted_pairs(40))]
    path.write_text("\n".join([*rows, "怎么退款\t怎么充值\t0"]) + "\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="walletfaq"):
        quietly(tune, retriever, path, progress=False, epochs=1)
    assert "1 label-0 pair(s)" in caplog.text and "hard_negatives=False" in caplog.text


def test_a_pair_of_a_sentence_with_itself_is_said_to_be_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="walletfaq"):
        data = load_tuning_data([("怎么退款", "怎么退款"), ("怎么退款", "如何退钱")])
    assert data.self_pairs == 1 and "same text left out" in caplog.text


def test_early_stopping_says_it_stopped_and_which_epoch_it_kept(
    retriever: FAQRetriever, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="walletfaq"):
        result = quietly(tune, retriever, planted_pairs(), progress=False, patience=1)
    run = result.settings["epochs_run"]
    assert run < 40  # on this data the validation metric stops improving at once
    assert f"stopped early at epoch {run} of 40" in caplog.text
    assert f"kept epoch {result.settings['best_epoch']}" in caplog.text


def test_a_tuned_retrievers_repr_says_it_is_tuned_and_on_what(
    retriever: FAQRetriever, queries_file: Path
) -> None:
    tuned = quietly(tune, retriever, queries_file, progress=False).retriever
    assert "tuned='adapter on logs.jsonl" in repr(tuned)
    assert "tuned=" not in repr(retriever)
