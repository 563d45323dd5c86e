"""The corpus loader accepts well-formed JSONL and rejects every bad input with file:line:field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from walletfaq import Corpus, CorpusError, FAQEntry, load_corpus
from walletfaq.data.corpus import index_texts, load_bundled_corpus

GOOD = {"id": "a", "category": "c", "question": "问题", "answer": "答案"}


def write_lines(tmp_path: Path, lines: list[str | bytes]) -> Path:
    path = tmp_path / "faq.jsonl"
    data = b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


def record(**changes: object) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}, ensure_ascii=False)


def test_loads_entries_in_file_order_with_optional_alt_questions(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record(), record(id="b", alt_questions=["别的问法"])])
    corpus = load_corpus(path)
    assert corpus.ids == ("a", "b")
    assert corpus["a"].alt_questions == ()
    assert corpus["b"].questions() == ("问题", "别的问法")


def test_blank_lines_and_a_utf8_bom_are_accepted(tmp_path: Path) -> None:
    path = write_lines(tmp_path, ["\ufeff" + record(), "", "   ", record(id="b")])
    assert load_corpus(path).ids == ("a", "b")


@pytest.mark.parametrize("field", ["id", "category", "question", "answer"])
def test_missing_required_field_names_file_line_and_field(tmp_path: Path, field: str) -> None:
    path = write_lines(tmp_path, [record(id="first"), record(**{field: ...})])
    with pytest.raises(CorpusError) as caught:
        load_corpus(path)
    assert caught.value.line == 2 and caught.value.field == field
    assert f"{path}:2 field '{field}'" in str(caught.value)


@pytest.mark.parametrize("field", ["category", "question", "answer"])  # ids: tests/test_ids.py
def test_empty_or_blank_text_is_rejected(tmp_path: Path, field: str) -> None:
    path = write_lines(tmp_path, [record(**{field: "  \t"})])
    with pytest.raises(CorpusError, match=re.escape(f":1 field '{field}'") + ".*empty"):
        load_corpus(path)


def test_empty_alt_question_is_rejected(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record(alt_questions=["ok", " "])])
    with pytest.raises(CorpusError, match="alt_questions.*item 1: empty"):
        load_corpus(path)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record(), record(question="另一个")])
    message = r":2 field 'id'.*duplicate id 'a' \(first used on line 1\)"
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_bad_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record(), "问题".encode("gbk")])
    with pytest.raises(CorpusError, match=r":2: not valid UTF-8"):
        load_corpus(path)


def test_malformed_json_line_is_reported(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record(), '{"id": "b", "category": '])
    with pytest.raises(CorpusError, match=r":2: malformed JSON"):
        load_corpus(path)


def test_non_object_line_is_rejected(tmp_path: Path) -> None:
    path = write_lines(tmp_path, ['["a", "b"]'])
    with pytest.raises(CorpusError, match="expected a JSON object, got list"):
        load_corpus(path)


def test_wrong_types_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="field 'answer': expected a string, got int"):
        load_corpus(write_lines(tmp_path, [record(answer=3)]))
    with pytest.raises(CorpusError, match="field 'alt_questions': expected a list"):
        load_corpus(write_lines(tmp_path, [record(alt_questions="一个字符串")]))


def test_unknown_field_is_rejected_rather_than_ignored(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record(anwser="typo")])
    with pytest.raises(CorpusError, match="field 'anwser': unknown field"):
        load_corpus(path)


def test_missing_and_empty_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="file not found"):
        load_corpus(tmp_path / "nope.jsonl")
    with pytest.raises(CorpusError, match="no entries"):
        load_corpus(write_lines(tmp_path, [""]))


def test_corpus_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_corpus(tmp_path / "nope.jsonl")


def test_content_hash_depends_on_content_not_on_source(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [record()])
    same = Corpus.from_entries([GOOD])
    assert load_corpus(path).content_hash() == same.content_hash()
    changed = Corpus.from_entries([{**GOOD, "answer": "新答案"}])
    assert changed.content_hash() != same.content_hash()


def test_from_entries_validates_like_the_file_loader() -> None:
    with pytest.raises(CorpusError, match="duplicate id"):
        Corpus.from_entries([GOOD, GOOD])
    entry = FAQEntry(id="x", category="c", question="q", answer="a")
    assert Corpus.from_entries([entry]).entries == (entry,)


def test_index_texts_lists_every_question_then_optionally_the_answer() -> None:
    corpus = Corpus.from_entries([{**GOOD, "alt_questions": ["问法二"]}])
    assert index_texts(corpus.entries) == (["问题", "问法二"], [0, 0])
    texts, owners = index_texts(corpus.entries, include_answers=True)
    assert texts[-1] == "问题\n答案" and owners == [0, 0, 0]


# ---- the bundled corpus -----------------------------------------------------------------

CATEGORIES = {
    "basics",
    "account-login",
    "top-up",
    "withdrawal",
    "transfer",
    "payment",
    "bank-card",
    "verification",
    "limits",
    "frozen-account",
    "security",
    "fees",
    "refunds",
    "customer-service",
    "app-device",
}

ARTICLE_QUESTIONS = {
    "login-failed": "我的数字钱包无法登录，我该怎么办？",
    "topup-not-received": "数字钱包的充值不到账，如何处理？",
    "account-security": "如何确保我的数字钱包安全？",
    "fees": "数字钱包的使用费用有哪些？",
    "refund-process": "数字钱包的退款流程是怎样的？",
    "what-is-digital-wallet": "什么是数字钱包？",
    "why-contact-support": "为什么数字钱包客服电话很重要？",
    "find-support-hotline": "如何找到数字钱包的客服电话？",
    "prepare-before-calling": "拨打客服电话前需要准备什么？",
}


def test_bundled_corpus_uses_exactly_the_documented_categories() -> None:
    assert set(load_bundled_corpus().categories) == CATEGORIES


def test_bundled_corpus_has_at_least_150_entries_with_three_alt_questions_each() -> None:
    corpus = load_bundled_corpus()
    assert len(corpus) >= 150
    thin = [e.id for e in corpus if len(e.alt_questions) < 3]
    assert thin == []


def test_bundled_corpus_ids_are_kebab_case() -> None:
    bad = [i for i in load_bundled_corpus().ids if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i)]
    assert bad == []


def test_bundled_corpus_contains_the_article_topics_verbatim() -> None:
    corpus = load_bundled_corpus()
    for entry_id, question in ARTICLE_QUESTIONS.items():
        assert corpus[entry_id].question == question


def test_no_alt_question_is_shared_between_two_bundled_entries() -> None:
    owner: dict[str, str] = {}
    clashes = []
    for entry in load_bundled_corpus():
        for text in entry.questions():
            if owner.setdefault(text, entry.id) != entry.id:
                clashes.append((text, owner[text], entry.id))
    assert clashes == []


def test_a_key_repeated_in_one_object_is_rejected(tmp_path: Path) -> None:
    line = record()[:-1] + ', "answer": "second answer"}'
    path = tmp_path / "faq.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r":1 field 'answer': duplicate key 'answer'"):
        load_corpus(path)


def test_deeply_nested_json_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text('{"id": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=":1: nested too deeply"):
        load_corpus(path)


def test_malformed_json_message_names_the_column_once(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text('{"id": "x", "question": "unterminated}\n', encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_corpus(path)
    assert "at at" not in str(caught.value) and "column" in str(caught.value)


@pytest.mark.parametrize("text", ["\u200b\u200b", "\x00", "\x01\x02", "\ufeff"])
def test_text_made_only_of_invisible_characters_is_empty(tmp_path: Path, text: str) -> None:
    path = write_lines(tmp_path, [record(question=text)])
    with pytest.raises(CorpusError, match="field 'question'.*empty"):
        load_corpus(path)


def test_a_lone_surrogate_escape_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text(record()[:-1] + ', "alt_questions": ["\\ud800"]}\n')
    with pytest.raises(CorpusError, match="alt_questions.*not valid Unicode"):
        load_corpus(path)
