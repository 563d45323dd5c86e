"""Calibrating the clarify margin like the threshold: replaying answer()'s rule on labelled
queries for a grid of margins gives precision of answers, coverage, clarify rate and clarify
usefulness per margin (a DataFrame and a plot), and a stated rule chooses the margin."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from walletfaq import FAQRetriever, WalletFAQError, evaluate
from walletfaq.quality.calibration import CalibrationWarning
from walletfaq.quality.clarify import (
    MARGIN_GRID,
    MARGIN_RULE,
    MarginPoint,
    MarginRule,
    calibrate_margin,
    choose_margin,
    margin_curves,
    margin_point,
)
from walletfaq.quality.evaluation.results import QueryResult

from .test_clarify import CLOSE, TIE, WIDE, build

ROOT = Path(__file__).resolve().parents[1]


def result(gold: list[str], ranked: list[str], scores: list[float]) -> QueryResult:
    rank = next((i + 1 for i, e in enumerate(ranked) if e in gold), None)
    return QueryResult("q", tuple(gold), "s", "c", tuple(ranked), tuple(scores), rank)


RESULTS = [
    result(["a"], ["a", "b", "c"], [0.95, 0.80, 0.70]),  # wide margin: answered right
    result(["a"], ["b", "a", "c"], [0.90, 0.89, 0.70]),  # close: wrong answer, useful clarify
    result(["c"], ["a", "b", "c"], [0.90, 0.89, 0.70]),  # close: gold not among the options
    result(["a"], ["a", "b", "c"], [0.60, 0.59, 0.50]),  # below the threshold: handed off
    result([], ["a", "b", "c"], [0.91, 0.70, 0.60]),  # out of domain, answered: wrong
]


# ------------------------------------------------------------------ one margin
def test_margin_zero_answers_every_confident_query() -> None:
    point = margin_point(RESULTS, 0.75, 0.0)
    assert (point.answered_correct, point.answered_wrong, point.clarified) == (1, 3, 0)
    assert (point.handed_off, point.in_domain_answered) == (1, 3)
    assert math.isnan(point.clarify_useful)


def test_margin_zero_has_the_precision_of_the_threshold_alone() -> None:
    from walletfaq.quality.evaluation.abstention import operating_point

    assert margin_point(RESULTS, 0.75, 0.0).precision == operating_point(RESULTS, 0.75).precision


def test_a_margin_turns_close_pairs_into_clarifies() -> None:
    point = margin_point(RESULTS, 0.75, 0.02)
    assert (point.answered_correct, point.answered_wrong) == (1, 1)
    assert (point.clarified, point.clarified_useful) == (2, 1)
    assert (point.precision, point.clarify_rate, point.clarify_useful) == (0.5, 0.4, 0.5)
    assert point.coverage == 1 / 4 and point.resolved == 2 / 4


def test_only_the_top_three_are_replayed_as_answer_does() -> None:
    four = [result(["d"], ["a", "b", "c", "d"], [0.9, 0.9, 0.9, 0.9])]
    assert margin_point(four, 0.5, 0.1).clarified_useful == 0


# ------------------------------------------------------------------ the rule
def point(margin: float, precision_hits: int, clarified: int) -> MarginPoint:
    """A point over 100 in-domain queries: ``precision_hits`` of the answered right."""
    answered = 100 - clarified
    return MarginPoint(
        margin, 0.5, precision_hits, answered - precision_hits, clarified, 0, 0, 100, 0, answered
    )


def test_the_rule_takes_the_smallest_margin_reaching_the_precision_within_the_cap() -> None:
    points = [point(0.0, 90, 0), point(0.01, 88, 5), point(0.02, 87, 10), point(0.03, 89, 11)]
    chosen, reached = choose_margin(points, MarginRule(0.95, 0.10))
    assert (chosen.margin, reached) == (0.02, True)  # 88/95 = 0.926, 87/90 = 0.967


def test_a_margin_past_the_clarify_cap_is_never_chosen() -> None:
    points = [point(0.0, 90, 0), point(0.05, 80, 20)]  # 80/80 = 1.0 but 20 % asked back
    chosen, reached = choose_margin(points, MarginRule(0.95, 0.10))
    assert (chosen.margin, reached) == (0.0, False)


def test_without_a_margin_reaching_the_target_the_best_precision_within_the_cap_wins() -> None:
    points = [point(0.0, 80, 0), point(0.01, 84, 5), point(0.02, 84, 8), point(0.03, 99, 30)]
    chosen, reached = choose_margin(points, MarginRule(0.99, 0.10))
    assert (chosen.margin, reached) == (0.02, False)  # 84/92 beats 84/95 and 80/100


@pytest.mark.parametrize(
    ("target", "cap"), [(0, 0.1), (1.1, 0.1), (0.9, -0.1), (0.9, 1.5), (True, 0.1), ("x", 0.1)]
)
def test_a_rule_outside_its_ranges_is_refused(target, cap) -> None:
    with pytest.raises(WalletFAQError, match="must be a number in"):
        MarginRule(target, cap)


def test_the_presets_rule_is_stated() -> None:
    assert str(MARGIN_RULE) == (
        "the smallest margin with answered precision >= 0.97 and clarify rate <= 0.1"
    )


# ------------------------------------------------------------------ on a retriever
LABELLED = [
    {"query": CLOSE, "gold": ["pay-password"]},  # login-password ranks first: a wrong answer
    {"query": TIE, "gold": ["pay-password"]},
    {"query": WIDE, "gold": ["pay-password"]},
    {"query": "怎么退款", "gold": ["refund"]},
    {"query": "钱充了没到", "gold": ["topup"]},
    {"query": "今天天气", "gold": []},
]


@pytest.fixture(scope="module")
def retriever() -> FAQRetriever:
    return build(margin=0.0)


def quiet_calibration(*args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return calibrate_margin(*args, **kwargs)


def test_calibrating_chooses_a_margin_that_turns_the_close_pair_into_a_clarify(
    retriever,
) -> None:
    calibration = quiet_calibration(retriever, LABELLED, MarginRule(1.0, 0.5))
    assert calibration.reached and 0.0636 < calibration.margin <= 0.07  # the grid's next step
    assert calibration.before.precision < 1.0 == calibration.chosen.precision
    assert retriever.answer(CLOSE, clarify_margin=calibration.margin).decision == "clarify"


def test_the_curves_are_a_frame_with_one_row_per_margin(retriever) -> None:
    calibration = quiet_calibration(retriever, LABELLED, MarginRule(1.0, 0.5))
    frame = calibration.curves
    assert len(frame) == len(MARGIN_GRID) and list(frame["margin"]) == list(MARGIN_GRID)
    expected = {"precision", "coverage", "clarify_rate", "clarify_useful", "resolved", "chosen"}
    assert expected <= set(frame.columns)
    assert list(frame.loc[frame["chosen"], "margin"]) == [calibration.margin]


def test_margin_curves_gives_the_same_rows_without_choosing(retriever) -> None:
    report = evaluate(retriever, LABELLED, progress=False)
    frame = margin_curves(retriever, report, margins=[0.0, 0.1])
    calibration = quiet_calibration(retriever, report, margins=[0.0, 0.1])
    assert frame.equals(calibration.curves.drop(columns="chosen"))


def test_the_plot_is_a_figure_and_opens_no_window(retriever) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    figure = quiet_calibration(retriever, LABELLED).plot()
    (axes,) = figure.axes
    labels = {line.get_label() for line in axes.get_lines()}
    assert {"answered precision", "clarify rate", "clarify useful (gold among options)"} <= labels
    assert plt.get_fignums() == before


def test_a_rule_not_reached_warns(retriever) -> None:
    with pytest.warns(CalibrationWarning, match="no clarify margin reaches"):
        calibration = calibrate_margin(retriever, LABELLED, MarginRule(1.0, 0.0))
    assert not calibration.reached and calibration.margin == 0.0


@pytest.mark.parametrize("margins", [[], [-0.1], [3], "0.1", [math.nan]])
def test_margins_outside_zero_to_two_are_refused(retriever, margins) -> None:
    with pytest.raises(WalletFAQError, match="margins"):
        calibrate_margin(retriever, LABELLED, margins=margins)


def test_the_margins_are_replayed_at_the_threshold_given(retriever) -> None:
    strict = quiet_calibration(retriever, LABELLED, threshold=0.95, margins=[0.0, 0.1])
    assert strict.threshold == 0.95 and strict.chosen.clarified == 0


def test_a_report_of_another_corpus_is_refused(retriever, tiny_corpus) -> None:
    from .conftest import HashEncoder

    other = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    report = evaluate(retriever, LABELLED, progress=False)
    with pytest.raises(WalletFAQError, match="not in this retriever's corpus"):
        calibrate_margin(other, report)


# ------------------------------------------------------------------ the preset's default
def test_the_default_models_margin_is_the_one_the_benchmark_measured() -> None:
    from walletfaq.encoders.presets import default_clarify_margin

    measured = json.loads((ROOT / "benchmarks/results/clarify.json").read_text("utf-8"))
    for model, row in measured["models"].items():
        assert default_clarify_margin(model) == row["chosen"]["margin"], model


@pytest.mark.slow
def test_with_the_real_model_the_rule_chooses_the_presets_margin(default_retriever) -> None:
    from walletfaq.encoders.presets import default_clarify_margin

    calibration = calibrate_margin(default_retriever)
    assert calibration.reached
    assert calibration.margin == default_clarify_margin("e5-small")
    assert calibration.chosen.precision > calibration.before.precision


# ------------------------------------------------------------------ after tuning
def test_tune_chooses_the_margin_again_at_the_recalibrated_threshold(tiny_corpus, tmp_path) -> None:
    from walletfaq.quality.tuning import tune

    from .conftest import HashEncoder
    from .test_tune_recalibration import quietly, write_labelled

    base = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    base.clarify_margin = 0.5  # a stale margin the tuned model must not keep blindly
    queries = write_labelled(tmp_path / "logs.jsonl")
    result = quietly(tune, base, queries, holdout=0.5, seed=0, progress=False)
    recalibration = result.recalibration
    assert recalibration is not None and recalibration.margin is not None
    assert recalibration.margin_before == 0.5
    assert recalibration.margin.threshold == result.retriever.threshold
    assert result.retriever.clarify_margin == recalibration.margin.margin
    assert "clarify margin 0.5000 → " in recalibration.summary()
