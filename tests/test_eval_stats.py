"""Statistics on reports: seeded bootstrap intervals, paired randomisation test, per-query diff,
compare() with intervals and p-values, checked against exact or reference computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from walletfaq import FAQRetriever, WalletFAQError, compare, diff_reports, evaluate, paired_test
from walletfaq.quality.evaluation import EvalReport, QueryResult

from .conftest import HashEncoder
from .test_evaluate import QUERIES


def synthetic(values: list[float], metric: str = "recall@1") -> EvalReport:
    """A report whose per-query ``metric`` values are ``values`` (one in-domain query each)."""
    results = tuple(
        QueryResult(
            f"q{i}",
            ("x",),
            "s",
            "c",
            ("x",) if v else ("y",),
            (1.0,),
            1 if v else None,
            {metric: v},
        )  # fmt: skip
        for i, v in enumerate(values)
    )
    mean = float(np.mean(values))
    return EvalReport({metric: mean}, {}, {}, results, metric_names=(metric,))


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


@pytest.fixture
def other(tiny_corpus) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder(dim=8, salt="other"))


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate() -> None:
    report = synthetic([1.0] * 70 + [0.0] * 30)
    first = report.confidence_intervals(seed=7)["recall@1"]
    assert first == report.confidence_intervals(seed=7)["recall@1"]
    assert first != report.confidence_intervals(seed=8)["recall@1"]
    assert first.low < first.estimate == 0.7 < first.high
    assert first.n == 100 and first.confidence == 0.95


def test_bootstrap_interval_matches_scipy_percentile_bootstrap() -> None:
    values = [1.0] * 70 + [0.0] * 30
    ours = synthetic(values).confidence_intervals(n_resamples=20000, seed=0)["recall@1"]
    reference = stats.bootstrap(
        (np.array(values),), np.mean, n_resamples=20000, method="percentile", random_state=0
    ).confidence_interval
    assert ours.low == pytest.approx(reference.low, abs=0.015)
    assert ours.high == pytest.approx(reference.high, abs=0.015)


def test_a_higher_confidence_level_gives_a_wider_interval() -> None:
    report = synthetic([1.0] * 60 + [0.0] * 40)
    narrow = report.confidence_intervals(confidence=0.8)["recall@1"]
    wide = report.confidence_intervals(confidence=0.99)["recall@1"]
    assert wide.low < narrow.low and narrow.high < wide.high


def test_paired_test_p_value_matches_the_exact_sign_flip_distribution() -> None:
    a = synthetic([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    b = synthetic([1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.5])
    differences = np.array([1, 1, 0, 0, 1, 0, 0, 0.5])
    flips = np.array(list(itertools.product([-1, 1], repeat=len(differences))))
    exact = np.mean(np.abs((flips * differences).mean(axis=1)) >= differences.mean() - 1e-12)
    result = paired_test(a, b, n_resamples=50000, seed=3)
    assert result.p_value == pytest.approx(exact, abs=0.01)
    assert result.difference == pytest.approx(differences.mean())
    assert (result.n_better, result.n_worse, result.n) == (4, 0, 8)


def test_paired_test_is_seeded() -> None:
    a, b = synthetic([0.0, 1.0] * 20), synthetic([1.0, 1.0, 0.0, 1.0] * 10)
    assert paired_test(a, b, seed=1) == paired_test(a, b, seed=1)


def test_a_large_consistent_improvement_is_significant_and_no_change_is_not() -> None:
    a = synthetic([0.0] * 50 + [1.0] * 50)
    b = synthetic([1.0] * 40 + [0.0] * 10 + [1.0] * 50)
    better = paired_test(a, b)
    assert better.significant() and better.p_value < 0.001
    assert better.difference_low > 0
    same = paired_test(a, a)
    assert same.p_value == 1.0 and not same.significant() and same.difference == 0


def test_paired_test_refuses_reports_on_different_queries() -> None:
    with pytest.raises(WalletFAQError, match="different queries"):
        paired_test(synthetic([1.0, 0.0]), synthetic([1.0, 0.0, 1.0]))


def test_diff_lists_queries_that_got_better_or_worse_with_both_ranks(retriever, other) -> None:
    a, b = evaluate(retriever, QUERIES), evaluate(other, QUERIES)
    diff = diff_reports(a, b, names=("hash64", "hash8"))
    assert len(diff.items) == a.n_in_domain
    ranks = {r.query: (r.rank, s.rank) for r, s in zip(a.results, b.results, strict=True)}
    for item in diff.items:
        assert (item.rank_a, item.rank_b) == ranks[item.query]
    inf = float("inf")
    for item in diff.better:
        assert (item.rank_b or inf) < (item.rank_a or inf)
    for item in diff.worse:
        assert (item.rank_b or inf) > (item.rank_a or inf)
    frame = diff.to_frame()
    assert list(frame.columns[4:6]) == ["rank hash64", "rank hash8"]
    assert len(frame) == len(diff.better) + len(diff.worse)
    assert diff.summary().startswith(f"hash8 vs hash64 on {a.n_in_domain} in-domain queries")


def test_compare_adds_intervals_and_p_values_against_the_baseline(retriever, other) -> None:
    frame = compare({"flat": retriever, "other": other}, QUERIES, metrics=("recall@1", "map@3"))
    assert list(frame.columns) == [
        "recall@1", "recall@1 low", "recall@1 high", "recall@1 p",
        "map@3", "map@3 low", "map@3 high", "map@3 p", "n",
    ]  # fmt: skip
    assert np.isnan(frame.loc["flat", "recall@1 p"])
    assert 0 < frame.loc["other", "recall@1 p"] <= 1
    assert frame.loc["flat", "n"] == 5
    report = evaluate(other, QUERIES, metrics=("recall@1", "map@3"))
    expected = paired_test(
        evaluate(retriever, QUERIES, metrics=("recall@1",)), report, n_resamples=2000
    )
    assert frame.loc["other", "recall@1 p"] == expected.p_value


def test_compare_accepts_reports_already_computed(retriever, encoder) -> None:
    report = evaluate(retriever, QUERIES)
    before = encoder.texts_encoded
    frame = compare({"flat": report, "again": report})
    assert encoder.texts_encoded == before
    assert frame.loc["again", "recall@1 p"] == 1.0
    assert frame.loc["flat", "recall@1"] == report.metrics["recall@1"]


def test_compare_is_deterministic_for_a_seed(retriever, other) -> None:
    systems = {"flat": retriever, "other": other}
    assert compare(systems, QUERIES, seed=5).equals(compare(systems, QUERIES, seed=5))
