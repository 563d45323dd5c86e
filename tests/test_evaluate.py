"""evaluate() figures equal what ask() returns, computed by hand; calibration and answer()."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from walletfaq import CorpusError, FAQRetriever, WalletFAQError, calibrate, compare, evaluate
from walletfaq.data.contacts import load_bundled_contacts
from walletfaq.quality.calibration import CalibrationWarning, operating_point
from walletfaq.quality.evaluation import METRIC_KEYS

QUERIES = [
    {"query": "钱充了没到", "gold": ["topup"], "style": "colloquial"},
    {"query": "退款", "gold": ["refund"], "style": "keyword"},
    {"query": "登不上", "gold": ["login"], "style": "keyword"},
    {"query": "手续费多少", "gold": ["fees", "refund"], "style": "colloquial"},
    {"query": "安全", "gold": ["safety"], "style": "keyword"},
    {"query": "今天天气怎么样", "gold": [], "style": "out-of-domain"},
]


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


def by_hand(retriever: FAQRetriever) -> dict[str, float]:
    """Every metric recomputed from ask() with the textbook definitions, no library."""
    rows: list[dict[str, float]] = []
    for q in QUERIES:
        gold = set(q["gold"])
        if not gold:
            continue
        ids = [h.id for h in retriever.ask(q["query"], k=10)]
        rank = next((i for i, x in enumerate(ids, 1) if x in gold), None)
        row = {f"recall@{k}": float(rank is not None and rank <= k) for k in (1, 2, 3, 5, 10)}
        for k in (3, 10):
            row[f"mrr@{k}"] = 1 / rank if rank is not None and rank <= k else 0.0
        for k in (1, 3, 5):
            row[f"precision@{k}"] = sum(x in gold for x in ids[:k]) / k
        for k in (1, 5, 10):
            row[f"gold_recall@{k}"] = sum(x in gold for x in ids[:k]) / len(gold)
        for k in (3, 5, 10):
            dcg = sum(1 / math.log2(i + 1) for i, x in enumerate(ids[:k], 1) if x in gold)
            ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
            row[f"ndcg@{k}"] = dcg / ideal
            precisions = [
                sum(y in gold for y in ids[:i]) / i for i, x in enumerate(ids[:k], 1) if x in gold
            ]
            row[f"map@{k}"] = sum(precisions) / len(gold)
        rows.append(row)
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


def test_metrics_equal_a_hand_computation_from_ask(retriever) -> None:
    report = evaluate(retriever, QUERIES)
    expected = by_hand(retriever)
    assert report.metrics.keys() == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert report.metrics[key] == pytest.approx(expected[key]), key


def test_any_metric_at_any_cutoff_equals_the_hand_computation(retriever) -> None:
    expected = by_hand(retriever)
    report = evaluate(retriever, QUERIES, metrics=tuple(expected))
    assert report.metric_names == tuple(expected)
    for key, value in expected.items():
        assert report.metrics[key] == pytest.approx(value), key


def test_jsonl_file_and_dicts_give_the_same_report(retriever, tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUERIES), "utf-8")
    assert evaluate(retriever, path).metrics == evaluate(retriever, QUERIES).metrics


def test_breakdowns_by_category_and_style_and_failures(retriever) -> None:
    report = evaluate(retriever, QUERIES)
    assert set(report.per_category) == {"money", "account"}
    assert report.per_style["keyword"]["n"] == 3
    assert report.n_in_domain == 5
    for failure in report.failures:
        assert failure.top_id not in failure.gold


def test_unknown_gold_id_is_an_error_not_a_silent_miss(retriever) -> None:
    with pytest.raises(WalletFAQError, match=r"gold id\(s\) \['nope'\]"):
        evaluate(retriever, [{"query": "退款", "gold": ["nope"]}])


def test_malformed_queries_file_names_the_line(retriever, tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "退款", "gold": ["refund"]}\n{"query": "", "gold": []}\n', "utf-8")
    with pytest.raises(CorpusError, match=r"q.jsonl:2 field 'query'"):
        evaluate(retriever, path)


def test_to_frame_has_one_row_per_query(retriever) -> None:
    frame = evaluate(retriever, QUERIES).to_frame()
    assert len(frame) == len(QUERIES)
    assert {"query", "gold", "style", "top_id", "rank", "hit@1"} <= set(frame.columns)


def test_plot_draws_the_recall_curve_and_category_bars(retriever, tmp_path: Path) -> None:
    figure = evaluate(retriever, QUERIES).plot()
    assert len(figure.axes) == 2
    figure.savefig(tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_compare_puts_retrievers_side_by_side(retriever, tiny_corpus, encoder) -> None:
    hnsw = FAQRetriever.build(tiny_corpus, model=encoder, index="hnsw")
    frame = compare({"flat": retriever, "hnsw": hnsw}, QUERIES)
    assert list(frame.index) == ["flat", "hnsw"]
    assert frame.loc["flat", "recall@1"] == evaluate(retriever, QUERIES).metrics["recall@1"]


def test_operating_point_counts_answers_and_abstentions(retriever) -> None:
    report = evaluate(retriever, QUERIES)
    everything = operating_point(report.results, -1.0)
    assert everything.abstained == 0 and everything.coverage == 1.0
    assert everything.answered_correct == sum(r.rank == 1 for r in report.results)
    nothing = operating_point(report.results, 2.0)
    assert nothing.abstained == len(QUERIES) and nothing.ood_abstain == 1.0


def test_calibrate_picks_the_lowest_threshold_reaching_the_target(retriever) -> None:
    with pytest.warns(CalibrationWarning) as caught:
        calibration = calibrate(retriever, QUERIES, target_precision=0.99)
    assert any("only 6 labelled queries" in str(w.message) for w in caught)
    reaching = [p for p in calibration.curve if p.precision >= 0.99]
    assert calibration.threshold == min(p.threshold for p in reaching)
    assert calibration.chosen.precision >= 0.99


def test_answer_falls_back_to_human_support_below_the_threshold(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder, contacts=load_bundled_contacts())
    confident = retriever.answer("钱充了没到", threshold=0.5)
    assert confident.confident and confident.hit.id == "topup"
    assert confident.message == confident.hit.answer
    unsure = retriever.answer("今天天气怎么样", threshold=0.99)
    assert not unsure.confident and unsure.hit is None
    assert "人工客服" in unsure.message and "95188" in unsure.message
    named = retriever.answer("支付宝天气", threshold=0.99)
    assert "支付宝官方客服热线：95188" in named.message
