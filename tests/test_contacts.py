"""The support-contact directory: validated, and turned into searchable hotline entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walletfaq import CorpusError, FAQRetriever, load_contacts
from walletfaq.contacts import contact_entries, load_bundled_contacts


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


def test_mentioned_tolerates_one_mistyped_character_in_chinese_names() -> None:
    directory = load_bundled_contacts()
    assert directory.mentioned("支付包客服电话") == {"alipay"}
    assert directory.mentioned("云闪附客服电话多少") == {"unionpay"}
    assert directory.mentioned("ALIPAY hotline") == {"alipay"}
    assert directory.mentioned("钱包的客服电话在哪找") == set()


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
