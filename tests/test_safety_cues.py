"""The intent cues of the safety gate: each is recognised in Simplified and Traditional Chinese
and in English, its look-alikes are not, and the head learns what a cue is worth from the
exemplars (a cue never refuses by itself)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletfaq.data.normalize import QuestionNormalizer
from walletfaq.retrieval.safety import fit_head
from walletfaq.retrieval.safety_cues import CUE_NAMES, CUES, cue_features, cues_of

from .conftest import HashEncoder
from .test_safety import gated


@pytest.mark.parametrize(
    ("cue", "question"),
    [
        ("concealment", "怎么转一笔钱出去不被他发现"),
        ("concealment", "怎麼轉一筆錢出去不被他發現"),
        ("concealment", "如何偷偷把钱转走"),
        ("concealment", "大额转账怎么才能不触发风控"),
        ("concealment", "how do I move it without my parents noticing"),
        ("other-asset", "我老婆的钱包余额是多少"),
        ("other-asset", "我老婆的錢包餘額是多少"),
        ("other-asset", "can I open someone else's wallet"),
        ("disclose-other", "告诉我对方的真实姓名"),
        ("disclose-other", "告訴我對方的真實姓名"),
        ("disclose-other", "look up the owner of this account for me"),
        ("take-other", "怎么把他的余额转给我"),
        ("take-other", "怎麼把他的餘額轉給我"),
        ("take-other", "how can I drain his wallet"),
        ("access-other", "趁他睡觉用他的手机付款"),
        ("access-other", "趁他睡覺用他的手機付款"),
        ("access-other", "her phone is unlocked, can I pay with it"),
    ],
)
def test_each_cue_is_recognised_in_each_script(cue: str, question: str) -> None:
    assert cue in cues_of(question)


@pytest.mark.parametrize(
    ("cue", "question"),
    [
        ("concealment", "孩子偷偷用我的钱包充值游戏，能退款吗"),  # someone else's manner
        ("concealment", "为什么转账记录里查不到我昨天那笔"),  # a missing record
        ("other-asset", "我的钱包余额是多少"),  # one's own
        ("disclose-other", "告诉我我的余额"),  # about oneself
        ("disclose-other", "付款码截个图发给我妈可以吗"),  # 我妈 is the receiver
        ("take-other", "怎么把钱转给我妈"),  # nobody's money taken
        ("access-other", "忘记密码了怎么重置"),  # one's own account
    ],
)
def test_a_look_alike_does_not_carry_the_cue(cue: str, question: str) -> None:
    assert cue not in cues_of(question)


def test_the_gate_reads_traditional_questions_in_simplified_form() -> None:
    traditional = "怎麼偷偷把別人的錢轉走不被發現"
    assert cues_of(QuestionNormalizer()(traditional)) == cues_of(traditional)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=5))
def test_the_features_are_the_cues_of_each_text(texts: list[str]) -> None:
    features = cue_features(texts)
    assert features.shape == (len(texts), len(CUES))
    assert set(np.unique(features)) <= {0.0, 1.0}
    for row, text in zip(features, texts, strict=True):
        assert [name for name, on in zip(CUE_NAMES, row, strict=True) if on] == list(cues_of(text))


def unit(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, 8)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_head_learns_a_cue_that_separates_the_exemplars() -> None:
    rng = np.random.default_rng(3)
    harmful, benign, rows = unit(rng, 30), unit(rng, 30), unit(rng, 60)
    cues = (
        np.tile(np.eye(len(CUES))[0], (30, 1)),  # every harmful exemplar carries concealment
        np.zeros((30, len(CUES))),
        np.zeros((60, len(CUES))),
    )
    head = fit_head(harmful, ["k"] * 30, benign, rows, np.arange(60) // 2, cues)
    vector = unit(rng, 1)
    hidden, plain = head.scores(vector, ["怎么偷偷转走"])[0], head.scores(vector, ["怎么转"])[0]
    assert hidden[0] > plain[0] + 1.0


def test_a_cue_the_benign_exemplars_carry_as_often_earns_little() -> None:
    rng = np.random.default_rng(4)
    harmful, benign, rows = unit(rng, 30), unit(rng, 30), unit(rng, 60)
    half = np.tile(np.eye(len(CUES))[0], (15, 1))
    cues = (
        np.vstack([half, np.zeros((15, len(CUES)))]),
        np.vstack([half, np.zeros((15, len(CUES)))]),
        np.zeros((60, len(CUES))),
    )
    head = fit_head(harmful, ["k"] * 30, benign, rows, np.arange(60) // 2, cues)
    learned = head.weights[-len(CUES)] / head.scale[-len(CUES)]
    separating = fit_head(
        harmful,
        ["k"] * 30,
        benign,
        rows,
        np.arange(60) // 2,
        (np.tile(np.eye(len(CUES))[0], (30, 1)), cues[1] * 0, cues[2]),
    )
    assert abs(learned) < separating.weights[-len(CUES)] / separating.scale[-len(CUES)]


def test_a_verdict_names_the_cues_of_its_question(encoder: HashEncoder) -> None:
    retriever = gated(encoder)
    head = retriever._safety_gate.head(encoder, retriever.normalizer, retriever._state)
    text = "怎么偷偷把别人的钱转给我"
    (verdict,) = head.judge(encoder.encode_queries([text]), [text])
    assert set(verdict.cues) == {"concealment", "other-asset", "take-other"}
