"""The support-contact directory: validated, and turned into searchable hotline entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walletfaq import CorpusError, FAQRetriever, load_contacts
from walletfaq.data.contacts import (
    Contact,
    ContactDirectory,
    contact_entries,
    directory_from_data,
    load_bundled_contacts,
)

BUNDLED = load_bundled_contacts()

# Questions that name one wallet: "{}" is replaced by one of its names, aliases or misspellings.
CHINESE_TEMPLATES = ("{}客服电话多少", "{}怎么联系人工", "我的{}付款失败了找谁", "请问{}的热线号码")
ASCII_TEMPLATES = (
    "my {} payment failed who do I call",
    "{} customer service number",
    "How do I reach {} support?",
)


def questions_naming(contact: Contact) -> list[str]:
    """Every template filled with every name of ``contact`` (English ones for ASCII names)."""
    out = []
    for term in contact.names:
        templates = CHINESE_TEMPLATES + (ASCII_TEMPLATES if term.isascii() else ())
        out += [template.format(term) for template in templates]
    return out


def contact(contact_id: str, *aliases: str) -> Contact:
    """An in-memory contact with the given aliases and nothing else of note."""
    return Contact(
        id=contact_id,
        name=contact_id,
        aliases=aliases,
        hotline=None,
        channels=(),
        official_url=f"https://{contact_id}.example",
    )


def test_bundled_directory_lists_the_major_wallets_with_verified_hotlines() -> None:
    directory = load_bundled_contacts()
    by_name = {c.name: c for c in directory}
    assert len(directory) >= 10
    hotlines = {c.hotline for c in directory if c.hotline}
    assert {"95188", "95017", "95516"} <= hotlines
    assert by_name["支付宝"].hotline == "95188"
    assert all(c.official_url.startswith("https://") for c in directory)


def test_find_matches_aliases_case_insensitively_and_prefers_the_longest() -> None:
    directory = load_bundled_contacts()
    assert directory.find("ALIPAY hotline").name == "支付宝"
    assert directory.find("支付寶客服").name == "支付宝"
    assert directory.find("今天天气怎么样") is None


def test_every_contact_becomes_a_customer_service_entry() -> None:
    directory = load_bundled_contacts()
    corpus = contact_entries(directory)
    assert len(corpus) == len(directory)
    alipay = corpus["hotline-alipay"]
    assert alipay.category == "customer-service"
    assert "95188" in alipay.answer
    assert any("alipay" in q.lower() for q in alipay.alt_questions)


def test_contacts_without_a_verified_hotline_point_to_official_channels() -> None:
    for contact in load_bundled_contacts():
        if contact.hotline is None:
            assert contact.official_url in contact.summary()
            assert "核实" in contact.summary() or "为准" in contact.summary()


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "contacts.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_contact_without_official_url_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, {"version": 1, "contacts": [{"id": "x", "name": "X钱包"}]})
    with pytest.raises(CorpusError, match=r"contacts\[0\]\.official_url"):
        load_contacts(path)


def test_duplicate_contact_ids_are_rejected(tmp_path: Path) -> None:
    item = {"id": "x", "name": "X钱包", "official_url": "https://x.example"}
    path = write(tmp_path, {"version": 1, "contacts": [item, item]})
    with pytest.raises(CorpusError, match="duplicate contact id 'x'"):
        load_contacts(path)


def test_malformed_contacts_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "contacts.json"
    path.write_text('{"version": 1,\n "contacts": [', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"contacts.json:2: malformed JSON"):
        load_contacts(path)


def test_user_corpus_can_add_a_contacts_file(
    tiny_corpus_file: Path, tmp_path: Path, encoder
) -> None:
    path = write(
        tmp_path,
        {
            "version": 1,
            "contacts": [
                {
                    "id": "demo",
                    "name": "演示钱包",
                    "aliases": ["demopay"],
                    "hotline": "12345",
                    "official_url": "https://demo.example",
                }
            ],
        },
    )
    retriever = FAQRetriever.from_corpus(tiny_corpus_file, model=encoder, contacts=path)
    assert "hotline-demo" in retriever.corpus
    assert retriever.ask("演示钱包客服电话", k=1)[0].id == "hotline-demo"


def test_hotline_entries_only_answer_questions_naming_their_wallet(tiny_corpus, encoder) -> None:
    retriever = FAQRetriever.build(
        tiny_corpus.merged(contact_entries(load_bundled_contacts())),
        model=encoder,
        contacts=load_bundled_contacts(),
    )
    generic = retriever.ask("客服电话是多少", k=len(retriever.corpus))
    assert not [h.id for h in generic if h.id.startswith("hotline-")]
    named = retriever.ask("支付宝客服电话是多少", k=3)
    assert named[0].id == "hotline-alipay"
    assert [h.id for h in named if h.id.startswith("hotline-")] == ["hotline-alipay"]


# --- naming a wallet: one exact matcher for find() and the hotline gate -------------------


@pytest.mark.parametrize("wallet", BUNDLED.contacts, ids=lambda c: c.id)
def test_a_question_naming_one_wallet_names_that_wallet_and_no_other(wallet: Contact) -> None:
    wrong = {
        q: BUNDLED.mentioned(q)
        for q in questions_naming(wallet)
        if BUNDLED.mentioned(q) != {wallet.id}
    }
    assert wrong == {}


@pytest.mark.parametrize("wallet", BUNDLED.contacts, ids=lambda c: c.id)
def test_find_returns_the_wallet_a_question_names(wallet: Contact) -> None:
    wrong = {
        q: getattr(BUNDLED.find(q), "id", None)
        for q in questions_naming(wallet)
        if BUNDLED.find(q) != wallet
    }
    assert wrong == {}


def test_misspellings_listed_in_the_file_name_their_wallet() -> None:
    by_id = {c.id: c for c in BUNDLED}
    assert {"支付包", "支附宝"} <= set(by_id["alipay"].misspellings)
    assert BUNDLED.mentioned("支付包客服电话") == {"alipay"}
    assert BUNDLED.mentioned("云闪附客服电话多少") == {"unionpay"}
    assert BUNDLED.find("支附宝人工客服") == by_id["alipay"]


def test_a_misspelling_that_is_not_listed_names_no_wallet() -> None:
    assert BUNDLED.mentioned("支付饱客服电话") == set()


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("支付失败了找谁", set()),
        ("翼支付客服", {"bestpay"}),
        ("京东支付退款", {"jd-pay"}),
        ("天翼支付的客服电话", {"bestpay"}),
        ("阿里支付客服", {"alipay"}),
    ],
)
def test_other_payments_do_not_name_alipay(question: str, named: set[str]) -> None:
    assert BUNDLED.mentioned(question) == named


@pytest.mark.parametrize(
    "question",
    [
        "钱包客服电话在哪找",
        "人工客服怎么联系",
        "客服电话是多少",
        "电子钱包怎么开通",
        "扫码支付失败怎么办",
        "my payment failed who do I call",
        "which wallet is the best pay app",
        "app支付失败怎么办",
    ],
)
def test_generic_questions_name_no_wallet(question: str) -> None:
    assert BUNDLED.mentioned(question) == set()
    assert BUNDLED.find(question) is None


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("pineapple pay deals", set()),
        ("myalipay account", set()),
        ("alipay's hotline", {"alipay"}),
        ("三星Samsung Pay客服電話是多少", {"samsung-pay"}),
        ("e-CNY客服热线", {"e-cny"}),
        ("PP支付客服", {"paypal"}),
    ],
)
def test_ascii_names_match_only_on_ascii_word_boundaries(question: str, named: set[str]) -> None:
    assert BUNDLED.mentioned(question) == named


def test_a_name_inside_another_wallets_longer_name_does_not_name_it() -> None:
    directory = ContactDirectory(
        (contact("generic", "支付"), contact("bestpay", "翼支付"), contact("jd", "京东支付"))
    )
    assert directory.mentioned("翼支付客服") == {"bestpay"}
    assert directory.mentioned("京东支付退款") == {"jd"}
    assert directory.mentioned("京东支付和翼支付哪个好") == {"jd", "bestpay"}
    assert directory.mentioned("支付失败") == {"generic"}


def test_words_listed_as_not_mentions_do_not_name_the_wallet() -> None:
    assert BUNDLED.mentioned("手机和包裹一起丢了") == set()
    assert BUNDLED.mentioned("感谢理解和包容") == set()
    assert BUNDLED.mentioned("和包客服电话多少") == {"cmpay"}


def test_names_are_matched_ignoring_case_width_and_extra_spaces() -> None:
    assert BUNDLED.mentioned("ＡＬＩＰＡＹ客服") == {"alipay"}
    assert BUNDLED.mentioned("Apple   Pay support") == {"apple-pay"}


def test_mentioned_lists_every_wallet_a_question_names() -> None:
    assert BUNDLED.mentioned("微信转账到支付宝要多久") == {"wechat-pay", "alipay"}


def test_find_prefers_the_longest_name_then_file_order() -> None:
    assert BUNDLED.find("微信转账到支付宝钱包").id == "alipay"  # 支付宝钱包 is longer than 微信
    directory = ContactDirectory((contact("first", "甲钱包"), contact("second", "乙钱包")))
    assert directory.find("乙钱包还是甲钱包").id == "first"


# --- loading names ---------------------------------------------------------------------------


def one_contact(**fields: object) -> dict[str, object]:
    item: dict[str, object] = {"id": "x", "name": "X钱包", "official_url": "https://x.example"}
    item.update(fields)
    return {"version": 1, "contacts": [item]}


def test_misspellings_must_be_a_list_of_strings() -> None:
    with pytest.raises(CorpusError, match=r"contacts\[0\]\.misspellings'.*list of non-empty"):
        directory_from_data(one_contact(misspellings="X钱抱"))


def test_a_one_character_alias_is_rejected_as_too_generic() -> None:
    with pytest.raises(CorpusError, match=r"contacts\[0\]\.aliases\[1\]'.*too short"):
        directory_from_data(one_contact(aliases=["X钱包", "X"]))


def test_a_name_listed_for_two_contacts_is_rejected() -> None:
    data = one_contact(aliases=["钱包"])
    data["contacts"].append(  # type: ignore[attr-defined]
        {"id": "y", "name": "Y", "misspellings": ["钱包"], "official_url": "https://y.example"}
    )
    with pytest.raises(
        CorpusError, match=r"contacts\[1\]\.misspellings\[0\]'.*already names contact 'x'"
    ):
        directory_from_data(data)


def test_a_not_mention_that_is_a_name_is_rejected() -> None:
    with pytest.raises(CorpusError, match=r"not_mentions\[0\]'.*is a name of contact 'x'"):
        directory_from_data(one_contact(not_mentions=["x钱包"]))


def test_a_not_mention_containing_no_name_is_rejected() -> None:
    with pytest.raises(CorpusError, match=r"not_mentions\[0\]'.*contains none"):
        directory_from_data(one_contact(not_mentions=["包裹"]))


def test_the_bundled_directory_survives_a_round_trip_through_to_dict() -> None:
    again = directory_from_data(BUNDLED.to_dict(), path=BUNDLED.source)
    assert again == BUNDLED
    assert again.mentioned("支付包客服电话") == {"alipay"}


# --- the answer of a hotline entry ------------------------------------------------------------


@pytest.mark.parametrize("wallet", BUNDLED.with_hotline(), ids=lambda c: c.id)
def test_a_hotline_answer_states_the_number_once(wallet: Contact) -> None:
    answer = contact_entries(BUNDLED)[wallet.entry_id].answer
    # www.10086.cn is China Mobile's site, not a second mention of the number
    assert answer.replace(wallet.official_url, "").count(wallet.hotline or "?") == 1


@pytest.mark.parametrize("wallet", BUNDLED.contacts, ids=lambda c: c.id)
def test_an_answer_states_the_check_with_the_official_source_caveat_once(wallet: Contact) -> None:
    answer = contact_entries(BUNDLED)[wallet.entry_id].answer
    assert answer.count("为准") == 1
    assert answer.count(f"请以官方网站或官方 App 公布的信息为准：{wallet.official_url}") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"version": 1, "contacts": [], "contacts": []}', "duplicate key 'contacts'"),
        ('{"version": 1, "contacts": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
    ],
)
def test_duplicate_keys_and_deep_nesting_are_contacts_errors(tmp_path, text, message) -> None:
    path = tmp_path / "contacts.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_contacts(path)
