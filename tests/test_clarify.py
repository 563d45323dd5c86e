"""answer() decides between answering, asking the user to choose and handing off: two or more
different entries above the threshold, less than the clarify margin apart, are offered as
options (``decision="clarify"``). The margin is a checked setting saved with the index,
overridable per call, and the rule is a pure function of (threshold, margin, scores).

The tiny corpus gets two password entries that the HashEncoder scores close: "密码怎么改" ties
them (0.8321 each), "支付登录密码怎么改" puts them 0.0636 apart (0.8908, 0.8272), and
"支付密码怎么改" answers one of them with a wide margin (1.0 against 0.7692)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import walletfaq.index.directory as index_directory
from walletfaq import Corpus, FAQRetriever, HybridRetriever, QueryError, WalletFAQError
from walletfaq.index.search import (
    DEFAULT_CLARIFY_MESSAGE,
    MAX_OPTIONS,
    Answer,
    Hit,
    close_positions,
    decide,
)

from .conftest import TINY_ENTRIES, HashEncoder

TIE = "密码怎么改"
CLOSE = "支付登录密码怎么改"  # login-password 0.8908, pay-password 0.8272: 0.0636 apart
WIDE = "支付密码怎么改"  # pay-password 1.0, login-password 0.7692


def password(entry_id: str, question: str) -> dict[str, object]:
    return {
        "id": entry_id,
        "category": "account",
        "question": question,
        "answer": f"{question}：在“设置—安全”里修改。",
        "alt_questions": [],
    }


PASSWORDS = [
    password("pay-password", "支付密码怎么改"),
    password("login-password", "登录密码怎么改"),
]
MORE_PASSWORDS = [
    password("gesture-password", "手势密码怎么改"),
    password("trade-password", "交易密码怎么改"),
]


def build(*extra: dict[str, object], margin: float = 0.1) -> FAQRetriever:
    retriever = FAQRetriever.build(
        Corpus.from_entries([*TINY_ENTRIES, *PASSWORDS, *extra]), model=HashEncoder()
    )
    retriever.threshold = 0.5
    retriever.clarify_margin = margin
    return retriever


@pytest.fixture(scope="module")
def retriever() -> FAQRetriever:
    return build()


def score_gap(retriever: FAQRetriever, question: str) -> float:
    first, second = retriever.ask(question, k=2)
    return first.score - second.score


# ------------------------------------------------------------------ the three outcomes
def test_two_close_entries_above_the_threshold_ask_the_user_to_choose(retriever) -> None:
    outcome = retriever.answer(CLOSE)
    assert (outcome.decision, outcome.confident, outcome.hit) == ("clarify", False, None)
    assert [o.id for o in outcome.options] == ["login-password", "pay-password"]


def test_a_clarify_message_asks_to_choose_and_numbers_the_options(retriever) -> None:
    outcome = retriever.answer(CLOSE)
    assert outcome.message.splitlines() == [
        DEFAULT_CLARIFY_MESSAGE,
        "1. 登录密码怎么改",
        "2. 支付密码怎么改",
    ]


def test_a_clarify_reason_gives_the_scores_and_the_margin(retriever) -> None:
    outcome = retriever.answer(CLOSE)
    first, second = outcome.options
    assert f"scores {first.score:.4f}, {second.score:.4f}" in outcome.reason
    assert f"top1 - top2 = {first.score - second.score:.4f}" in outcome.reason
    assert "clarify margin 0.1000" in outcome.reason


def test_a_second_entry_further_than_the_margin_lets_the_top_one_answer(retriever) -> None:
    outcome = retriever.answer(CLOSE, clarify_margin=0.05)  # the gap is 0.0636
    assert (outcome.decision, outcome.hit.id, outcome.options) == ("answer", "login-password", ())
    assert "margin 0.0636 over the next entry" in outcome.reason


def test_a_wide_margin_answers_with_the_top_entry(retriever) -> None:
    outcome = retriever.answer(WIDE)
    assert (outcome.decision, outcome.confident, outcome.hit.id) == ("answer", True, "pay-password")
    assert outcome.message == outcome.hit.answer


def test_a_top_score_below_the_threshold_hands_off(retriever) -> None:
    outcome = retriever.answer(TIE, threshold=0.9)
    assert (outcome.decision, outcome.hit, outcome.options) == ("handoff", None, ())
    assert "< threshold 0.900" in outcome.reason


def test_a_close_second_entry_below_the_threshold_does_not_clarify(retriever) -> None:
    outcome = retriever.answer(CLOSE, threshold=0.85, clarify_margin=0.5)  # 0.8272 < 0.85
    assert (outcome.decision, outcome.hit.id) == ("answer", "login-password")


def test_a_tie_clarifies_between_the_tied_entries(retriever) -> None:
    assert score_gap(retriever, TIE) == 0.0
    outcome = retriever.answer(TIE)
    assert {o.id for o in outcome.options} == {"pay-password", "login-password"}


def test_margin_zero_never_clarifies_not_even_a_tie(retriever) -> None:
    assert retriever.answer(TIE, clarify_margin=0).decision == "answer"


def test_options_are_at_most_three_distinct_entries_best_first() -> None:
    four = build(*MORE_PASSWORDS)
    outcome = four.answer(TIE, k=5)  # four password entries within 0.03 of each other
    scores = [o.score for o in outcome.options]
    assert outcome.decision == "clarify" and len(outcome.options) == MAX_OPTIONS == 3
    assert len({o.id for o in outcome.options}) == 3 and scores == sorted(scores, reverse=True)
    assert len(outcome.candidates) == 5


def test_a_clarify_needs_a_second_hit_so_k_one_answers(retriever) -> None:
    assert retriever.answer(TIE, k=1).decision == "answer"


def test_the_answer_dict_carries_the_options(retriever) -> None:
    body = retriever.answer(CLOSE).to_dict()
    assert body["decision"] == "clarify" and body["hit"] is None
    assert [o["id"] for o in body["options"]] == ["login-password", "pay-password"]
    assert retriever.answer(WIDE).to_dict()["options"] == []


# ------------------------------------------------------------------ the setting
def test_the_per_call_margin_overrides_the_retrievers_and_leaves_it_as_it_was() -> None:
    never = build(margin=0.0)
    assert never.answer(CLOSE).decision == "answer"
    assert never.answer(CLOSE, clarify_margin=0.1).decision == "clarify"
    assert never.clarify_margin == 0.0


def test_a_model_without_a_preset_never_clarifies_by_default(tiny_corpus) -> None:
    assert FAQRetriever.build(tiny_corpus, model=HashEncoder()).clarify_margin == 0.0


def test_the_default_model_has_its_calibrated_margin() -> None:
    from walletfaq.encoders.presets import PRESETS, default_clarify_margin

    assert default_clarify_margin("e5-small") == PRESETS["e5-small"].clarify_margin > 0


BAD_MARGINS = [-0.001, 2.001, 5, -math.inf, math.nan, math.inf, "0.1", True]


@pytest.mark.parametrize("value", BAD_MARGINS)
def test_a_margin_outside_zero_to_two_is_refused_per_call(retriever, value) -> None:
    with pytest.raises(QueryError, match="clarify_margin must be"):
        retriever.answer(TIE, clarify_margin=value)


@pytest.mark.parametrize("value", [*BAD_MARGINS, None])
def test_a_margin_outside_zero_to_two_is_refused_by_the_setter(retriever, value) -> None:
    with pytest.raises(QueryError, match="clarify_margin must be"):
        retriever.clarify_margin = value
    assert retriever.clarify_margin == 0.1


@pytest.mark.parametrize("value", [-1, 2.5, "x"])
def test_a_margin_outside_zero_to_two_is_refused_by_the_constructor(retriever, value) -> None:
    with pytest.raises(QueryError, match="clarify_margin must be"):
        FAQRetriever(retriever.corpus, retriever.encoder, retriever.index, clarify_margin=value)


def test_the_margin_and_message_are_saved_and_loaded_with_the_index(retriever, tmp_path) -> None:
    retriever.clarify_message = "您想问哪一个？"
    try:
        loaded = FAQRetriever.load(retriever.save(tmp_path / "idx"), model=HashEncoder())
    finally:
        retriever.clarify_message = None
    assert (loaded.clarify_margin, loaded.clarify_message) == (0.1, "您想问哪一个？")
    assert loaded.answer(CLOSE).message.startswith("您想问哪一个？\n1. ")


def test_an_empty_clarify_message_is_refused(retriever) -> None:
    with pytest.raises(WalletFAQError, match="clarify_message must be a non-empty string"):
        retriever.clarify_message = " "


def forged(directory: Path, change) -> Path:  # type: ignore[no-untyped-def]
    manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
    change(manifest["settings"])
    manifest["checksum"] = index_directory._checksum(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    return directory


def test_an_index_saved_before_clarify_loads_with_the_models_default_margin(
    retriever, tmp_path, monkeypatch
) -> None:
    import walletfaq.retrieval.answer_settings as answer_settings

    saved = forged(retriever.save(tmp_path / "old"), lambda s: s.pop("clarify_margin"))
    assert FAQRetriever.load(saved, model=HashEncoder()).clarify_margin == 0.0  # no preset
    monkeypatch.setattr(answer_settings, "default_clarify_margin", lambda name: 0.02)
    assert FAQRetriever.load(saved, model=HashEncoder()).clarify_margin == 0.02


@pytest.mark.parametrize("value", [-1, "x", 5, True, None, 2.0001])
def test_a_forged_clarify_margin_is_refused_on_load(retriever, tmp_path, value) -> None:
    saved = forged(retriever.save(tmp_path / "f"), lambda s: s.__setitem__("clarify_margin", value))
    with pytest.raises(WalletFAQError, match="settings.clarify_margin must be"):
        FAQRetriever.load(saved, model=HashEncoder())


def test_a_forged_clarify_message_is_refused_on_load(retriever, tmp_path) -> None:
    saved = forged(retriever.save(tmp_path / "f"), lambda s: s.__setitem__("clarify_message", 3))
    with pytest.raises(WalletFAQError, match="settings.clarify_message must be"):
        FAQRetriever.load(saved, model=HashEncoder())


@settings(max_examples=40, deadline=None)
@given(value=st.floats(min_value=-1, max_value=3) | st.sampled_from([0.0, 2.0, 2 + 1e-9, -0.0]))
def test_a_margin_loads_exactly_when_the_setter_accepts_it(retriever, tmp_path_factory, value):
    try:
        retriever.clarify_margin = value
        accepted = True
    except QueryError:
        accepted = False
    finally:
        retriever.clarify_margin = 0.1
    assert accepted == (0 <= value <= 2)
    directory = retriever.save(tmp_path_factory.mktemp("m") / "i")
    saved = forged(directory, lambda s: s.__setitem__("clarify_margin", value))
    try:
        loaded = FAQRetriever.load(saved, model=HashEncoder())
    except WalletFAQError:
        assert not accepted
    else:
        assert accepted and loaded.clarify_margin == value


# ------------------------------------------------------------------ the hybrid retriever
def test_the_hybrid_retriever_clarifies_the_same_way(retriever) -> None:
    hybrid = HybridRetriever([retriever], lexical=None)
    assert hybrid.clarify_margin == 0.1
    outcome = hybrid.answer(CLOSE)
    assert outcome.decision == "clarify"
    assert [o.id for o in outcome.options] == ["login-password", "pay-password"]
    assert hybrid.answer(CLOSE, clarify_margin=0.05).decision == "answer"
    with pytest.raises(QueryError, match="clarify_margin must be"):
        hybrid.answer(CLOSE, clarify_margin=3)


def test_setting_the_hybrid_margin_sets_the_primarys() -> None:
    primary = build()
    hybrid = HybridRetriever([primary], lexical=None)
    hybrid.clarify_margin = 0.0
    assert primary.clarify_margin == 0.0 and hybrid.answer(CLOSE).decision == "answer"


# ------------------------------------------------------------------ safety is untouched
def test_a_harmful_request_is_refused_whatever_the_margin() -> None:
    from .test_safety import EXEMPLARS, HARMFUL

    built = build()
    guarded = FAQRetriever(
        built.corpus,
        built.encoder,
        built.index,
        threshold=-1.0,  # every question would answer or clarify
        clarify_margin=2.0,
        safety_examples=EXEMPLARS,
    )
    outcome = guarded.answer(HARMFUL)
    assert (outcome.decision, outcome.options, outcome.candidates) == ("refuse", (), ())
    assert guarded.answer(CLOSE).decision == "clarify"


# ------------------------------------------------------------------ the rule, generated
def hits_of(scores: list[float], prefix: str = "e") -> list[Hit]:
    return [Hit(f"{prefix}{i}", f"q{i}", f"a{i}", s, "c") for i, s in enumerate(scores)]


SCORES = st.lists(st.floats(min_value=-1, max_value=1, allow_nan=False), max_size=6).map(
    lambda scores: sorted(scores, reverse=True)  # ranked, as ask() returns them
)
THRESHOLDS = st.floats(min_value=-1, max_value=1, allow_nan=False)
MARGINS = st.floats(min_value=0, max_value=2, allow_nan=False) | st.just(0.0)


@settings(max_examples=300, deadline=None)
@given(scores=SCORES, threshold=THRESHOLDS, margin=MARGINS)
def test_the_decision_obeys_the_rule_on_ranked_scores(scores, threshold, margin) -> None:
    outcome = decide("q", hits_of(scores), threshold, "转人工", None, margin)
    if not scores or scores[0] < threshold:
        expected = "handoff"
    elif len(scores) > 1 and scores[1] >= threshold and scores[0] - scores[1] < margin:
        expected = "clarify"
    else:
        expected = "answer"
    assert outcome.decision == expected
    assert outcome.confident == (expected == "answer")


@settings(max_examples=300, deadline=None)
@given(scores=SCORES, threshold=THRESHOLDS, margin=MARGINS)
def test_options_are_distinct_entries_above_the_threshold_within_the_margin_best_first(
    scores, threshold, margin
) -> None:
    outcome = decide("q", hits_of(scores), threshold, None, None, margin)
    options = [o.score for o in outcome.options]
    assert options == sorted(options, reverse=True)
    assert len({o.id for o in outcome.options}) == len(options) <= MAX_OPTIONS
    assert all(s >= threshold and scores[0] - s < margin for s in options)
    close = [s for s in scores if s >= threshold and scores[0] - s < margin]
    if outcome.decision == "clarify":
        assert options == close[:MAX_OPTIONS]  # none left out before the cap
    else:
        assert options == [] and len(close) < 2


@settings(max_examples=200, deadline=None)
@given(scores=SCORES, threshold=THRESHOLDS, margin=MARGINS)
def test_the_decision_depends_only_on_threshold_margin_and_scores(
    scores, threshold, margin
) -> None:
    one = decide("q", hits_of(scores, "a"), threshold, None, None, margin)
    other = decide(
        "另一个问题", hits_of(scores, "b"), threshold, "转人工", None, margin, "选哪个？"
    )
    assert one.decision == other.decision
    assert [o.score for o in one.options] == [o.score for o in other.options]
    positions = close_positions(scores, threshold, margin)
    expected = {"handoff": [], "answer": [0]}.get(one.decision, list(range(len(one.options))))
    assert positions == expected  # ranked scores: the options are the first positions


def test_a_repeated_entry_among_the_hits_is_offered_once() -> None:
    hits = [*hits_of([0.9]), *hits_of([0.9]), *hits_of([0.89], "x")]
    outcome = decide("q", hits, 0.5, None, None, 0.05)
    assert [o.id for o in outcome.options] == ["e0", "x0"]


@pytest.mark.parametrize(
    ("decision", "options"),
    [
        ("clarify", hits_of([0.9])),
        ("clarify", hits_of([0.9, 0.9, 0.9, 0.9])),
        ("handoff", hits_of([0.9, 0.8])),
    ],
)
def test_an_answer_with_options_that_break_the_rule_cannot_be_made(decision, options) -> None:
    with pytest.raises(WalletFAQError):
        Answer("q", None, False, "m", tuple(options), decision, "", tuple(options))
