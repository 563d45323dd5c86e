"""Reports say how many queries each figure covers: ranking metrics over in-domain queries,
abstention at the retriever's threshold over all of them."""

from __future__ import annotations

import math

import pytest

from walletfaq import FAQRetriever, evaluate
from walletfaq.index.search import SCORE_ROUNDING
from walletfaq.quality.evaluation import wilson_interval

from .test_evaluate import QUERIES


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    built = FAQRetriever.build(tiny_corpus, model=encoder)
    built.threshold = 0.6
    return built


def test_abstention_is_measured_at_the_retrievers_threshold(retriever) -> None:
    report = evaluate(retriever, QUERIES)
    point = report.abstention
    assert point is not None and point.threshold == 0.6
    answered = [r for r in report.results if r.top_score >= 0.6]
    assert point.answered == len(answered)
    assert point.answered_correct == sum(r.in_domain and r.rank == 1 for r in answered)
    assert (point.n_in_domain, point.n_out_of_domain) == (5, 1)
    ood_refused = sum(not r.in_domain and r.top_score < 0.6 for r in report.results)
    assert point.ood_abstained == ood_refused and point.ood_abstain == ood_refused / 1
    assert point.coverage == point.in_domain_answered / 5


def test_a_threshold_of_one_answers_only_verbatim_faq_texts(retriever) -> None:
    retriever.threshold = 1.0  # the highest a threshold may be: scores are cosines
    strict = evaluate(retriever, QUERIES).abstention
    assert strict is not None
    verbatim = [q for q in QUERIES if q["query"] in retriever.corpus["topup"].questions()]
    assert strict.answered == len(verbatim) == 1 and strict.answered_correct == 1
    assert strict.abstained == len(QUERIES) - 1 and strict.ood_abstain == 1.0


def test_changing_the_threshold_changes_the_abstention_figures(retriever) -> None:
    retriever.threshold = 1.0 + SCORE_ROUNDING  # above every cosine: refuses everything
    refuse_all = evaluate(retriever, QUERIES).abstention
    assert refuse_all is not None
    assert refuse_all.abstained == len(QUERIES) and refuse_all.coverage == 0
    assert refuse_all.ood_abstain == 1.0
    assert math.isnan(refuse_all.in_domain_precision)


def test_out_of_domain_share_is_nan_not_a_perfect_score_without_such_queries(retriever) -> None:
    report = evaluate(retriever, QUERIES[:5])
    assert report.abstention is not None and math.isnan(report.abstention.ood_abstain)
    assert "no out-of-domain query" in report.summary()


def test_precision_comes_with_its_wilson_interval(retriever) -> None:
    point = evaluate(retriever, QUERIES).at_threshold(-1.0)
    assert point.precision_interval == wilson_interval(point.answered_correct, point.answered)


def test_wilson_interval_matches_published_values() -> None:
    # 8 of 10 at 95%: 0.4902-0.9433 (Newcombe 1998, method 3)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)


def test_summary_states_how_many_queries_each_figure_covers(retriever) -> None:
    text = evaluate(retriever, QUERIES).summary()
    assert "6 queries: 5 in-domain, 1 out-of-domain" in text
    assert "ranking metrics over the 5 in-domain queries" in text
    assert "abstention at threshold 0.6000 (6 queries)" in text
    assert "out-of-domain refused" in text and "/1 = " in text


def test_metrics_frame_overall_row_counts_the_in_domain_queries(retriever) -> None:
    table = evaluate(retriever, QUERIES).metrics_frame()
    overall = table[table.group == "overall"].iloc[0]
    assert overall["n"] == 5
    assert not table["n"].isna().any()
    assert table[table.group == "style"]["n"].sum() == 5


def test_to_frame_marks_answered_queries_and_per_query_metrics(retriever) -> None:
    frame = evaluate(retriever, QUERIES, metrics=("recall@1", "ndcg@3")).to_frame()
    assert list(frame["answered"]) == list(frame["top_score"] >= 0.6)
    assert frame.loc[~frame.in_domain, "ndcg@3"].isna().all()
    assert (
        frame.loc[frame.in_domain, "recall@1"].mean() == frame.loc[frame.in_domain, "hit@1"].mean()
    )
