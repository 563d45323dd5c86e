"""The hotline gate, end to end: a ``hotline-<id>`` entry only answers questions naming its
wallet, so a question about one wallet never gets another wallet's number in its top 3."""

from __future__ import annotations

import os

import pytest

from walletfaq import FAQRetriever
from walletfaq.data.contacts import Contact

from .conftest import HashEncoder
from .test_contacts import BUNDLED, questions_naming


@pytest.fixture(scope="module")
def retriever() -> FAQRetriever:
    """The bundled corpus and contacts, embedded by the tiny deterministic encoder."""
    return FAQRetriever.from_corpus(None, model=HashEncoder(), cache=False)


def other_hotlines(retriever: FAQRetriever, question: str, wallet: Contact) -> list[str]:
    """Hotline entries of wallets other than ``wallet`` among the question's top 3."""
    return [
        hit.id
        for hit in retriever.ask(question, k=3)
        if hit.id.startswith("hotline-") and hit.id != wallet.entry_id
    ]


@pytest.mark.parametrize("wallet", BUNDLED.contacts, ids=lambda c: c.id)
def test_a_question_naming_one_wallet_never_gets_another_wallets_hotline(
    retriever: FAQRetriever, wallet: Contact
) -> None:
    leaks = {q: other_hotlines(retriever, q, wallet) for q in questions_naming(wallet)}
    assert {q: ids for q, ids in leaks.items() if ids} == {}


@pytest.mark.parametrize("wallet", BUNDLED.contacts, ids=lambda c: c.id)
def test_a_clarify_never_offers_another_wallets_hotline(
    retriever: FAQRetriever, wallet: Contact
) -> None:
    offered = {}
    for question in questions_naming(wallet):
        outcome = retriever.answer(question, threshold=-1.0, clarify_margin=2.0)  # all close
        offered[question] = [o.id for o in outcome.options if o.id.startswith("hotline-")]
    assert any(wallet.entry_id in ids for ids in offered.values())  # its own hotline is offered
    others = {q: [i for i in ids if i != wallet.entry_id] for q, ids in offered.items()}
    assert {q: ids for q, ids in others.items() if ids} == {}


@pytest.mark.parametrize(
    "question",
    [
        "支付失败了找谁",
        "钱包客服电话在哪找",
        "人工客服怎么联系",
        "客服电话是多少",
        "手机和包裹丢了",
    ],
)
def test_a_question_naming_no_wallet_gets_no_hotline(
    retriever: FAQRetriever, question: str
) -> None:
    assert [h.id for h in retriever.ask(question, k=3) if h.id.startswith("hotline-")] == []


@pytest.mark.parametrize(
    ("question", "hotline"),
    [("翼支付客服电话", "hotline-bestpay"), ("京东支付退款客服电话", "hotline-jd-pay")],
)
def test_a_wallet_whose_name_contains_zhifu_gets_only_its_own_hotline(
    retriever: FAQRetriever, question: str, hotline: str
) -> None:
    hits = retriever.ask(question, k=3)
    assert [h.id for h in hits if h.id.startswith("hotline-")] == [hotline]


@pytest.fixture(scope="module")
def real_retriever() -> FAQRetriever:
    """The real default model, built into (and reused from) the user cache."""
    os.environ.pop("WALLETFAQ_CACHE_DIR", None)
    return FAQRetriever.from_corpus()


@pytest.mark.slow
def test_with_the_real_model_each_wallet_gets_its_own_hotline_and_no_other(
    real_retriever: FAQRetriever,
) -> None:
    wrong = {}
    for wallet in BUNDLED:
        for question in (f"{wallet.name}客服电话多少", f"我的{wallet.aliases[0]}付款失败了找谁"):
            ids = [h.id for h in real_retriever.ask(question, k=3) if h.id.startswith("hotline-")]
            if any(i != wallet.entry_id for i in ids):
                wrong[question] = ids
        phone = real_retriever.ask(f"{wallet.aliases[0]}的人工客服电话是多少", k=1)[0]
        if phone.id != wallet.entry_id:
            wrong[f"{wallet.aliases[0]}的人工客服电话是多少"] = [phone.id]
    assert wrong == {}
