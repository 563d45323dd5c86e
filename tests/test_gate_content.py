"""The quality gate's content check: an added or changed entry that gives a phone number, web
address or account number found in neither the published content nor the contacts directory
is refused (the planted "call this number" edit that retrieval metrics cannot see)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TINY_ENTRIES, HashEncoder
from walletfaq.data.contacts import directory_from_data
from walletfaq.data.corpus import Corpus
from walletfaq.quality.gate import check_gate
from walletfaq.quality.gate_content import contact_details, new_contact_details

TINY = Corpus.from_entries(TINY_ENTRIES, source="tiny")
QUERIES = [
    {"query": text, "gold": [entry["id"]]}
    for entry in TINY_ENTRIES
    for text in [entry["question"], *entry["alt_questions"]]
]


def _answer(entry_id: str, answer: str, corpus: Corpus = TINY) -> Corpus:
    return Corpus.from_entries(
        [dataclasses.replace(e, answer=answer) if e.id == entry_id else e for e in corpus.entries]
    )


def _keys(text: str) -> list[tuple[str, str]]:
    return [(d.kind, d.key) for d in contact_details(text)]


# --- what counts as a contact detail ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请拨打 400-123-4567 联系客服", [("phone", "4001234567")]),
        ("客服热线4001234567", [("phone", "4001234567")]),
        ("拨打95188转1", [("phone", "95188")]),
        ("打 +86 138 1234 5678 找我", [("phone", "13812345678")]),
        ("手机１３８１２３４５６７８", [("phone", "13812345678")]),
        ("座机 021-12345678", [("phone", "02112345678")]),
        ("转到卡号 6222 0212 3456 7890 123", [("number", "6222021234567890123")]),
        ("打开 https://alipay-safe.top/refund?id=1 办理", [("address", "alipay-safe.top")]),
        ("登录 www.Example.com 查看", [("address", "example.com")]),
        ("官网 help.alipay.com", [("address", "help.alipay.com")]),
    ],
)
def test_phone_numbers_addresses_and_account_numbers_are_found(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert _keys(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "金额100000元以内",
        "2024-05-01 到账",
        "验证码是6位数字",
        "24小时内到账",
        "余额宝收益7日年化",
        "第3步",
    ],
)
def test_amounts_dates_codes_and_counts_are_not_contact_details(text: str) -> None:
    assert contact_details(text) == []


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", " ", "-"]))
def test_a_mobile_number_is_one_detail_however_it_is_spaced(number: str, sep: str) -> None:
    spaced = f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"
    assert _keys(f"请联系{spaced}处理") == [("phone", number)]


# --- what the check refuses ------------------------------------------------------------------


def test_a_new_number_in_a_changed_answer_is_reported_with_its_field() -> None:
    candidate = _answer("refund", "退款请拨打 400-123-4567 专线。")
    found = new_contact_details(TINY, candidate, entries=["refund"])
    assert [(d.entry_id, d.field, d.detail.key) for d in found] == [
        ("refund", "answer", "4001234567")
    ]


def test_a_detail_the_published_content_already_gives_is_not_new() -> None:
    current = _answer("refund", "官方客服 95188。")
    candidate = _answer("topup", "充值问题也可以拨打95188", current)
    assert new_contact_details(current, candidate, entries=["topup"]) == ()


def test_a_host_under_a_known_host_is_not_new() -> None:
    current = _answer("refund", "详见 alipay.com")
    candidate = _answer("topup", "详见 https://help.alipay.com/topup", current)
    assert new_contact_details(current, candidate, entries=["topup"]) == ()


def test_only_the_added_or_changed_entries_are_read() -> None:
    candidate = _answer("refund", "请拨打 400-123-4567。")
    assert new_contact_details(TINY, candidate, entries=["topup"]) == ()


def test_the_gate_refuses_an_answer_that_sends_users_to_an_unknown_number(
    encoder: HashEncoder,
) -> None:
    candidate = _answer("refund", "退款失败请立即拨打 400-123-4567，按客服指引转账到安全账户。")
    result = check_gate(TINY, candidate, model=encoder, gate_queries=QUERIES)
    assert not result.passed
    assert result.broken == () and result.lost_entries == ()  # retrieval alone would pass it
    assert [d.detail.key for d in result.new_details] == ["4001234567"]
    assert "contact detail" in " ".join(result.reasons)
    assert result.to_dict()["new_contact_details"][0]["entry_id"] == "refund"
    assert "refund.answer: phone '400-123-4567'" in result.summary()


def test_the_gate_passes_a_hotline_of_the_contacts_directory(encoder: HashEncoder) -> None:
    acme = {"id": "acme", "name": "阿克米", "hotline": "95000", "official_url": "https://acme.cn"}
    contacts = directory_from_data({"version": 1, "contacts": [acme]})
    candidate = _answer("refund", "退款问题请拨打阿克米客服 95000，或登录 acme.cn。")
    result = check_gate(TINY, candidate, model=encoder, gate_queries=QUERIES, contacts=contacts)
    assert result.passed and result.new_details == ()
