"""The corpus doctor: each kind of problem, planted in a tiny corpus, is found and explained;
a clean corpus gets no high-severity finding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from walletfaq import Corpus, FAQRetriever, WalletFAQError
from walletfaq.data.contacts import directory_from_data
from walletfaq.quality.doctor import (
    HIGH_SEVERITY,
    MEDIUM_SEVERITY,
    DoctorReport,
    Finding,
    doctor,
)

# Five entries whose texts share wording within an entry and none across entries (the
# HashEncoder ranks by shared characters): a clean corpus for the hashing encoder.
CLEAN = [
    {
        "id": "login",
        "category": "account",
        "question": "无法登录怎么办",
        "answer": "检查网络并重置密码。",
        "alt_questions": ["登录不了怎么办", "登录失败", "无法登录账号", "登录报错"],
    },
    {
        "id": "topup",
        "category": "money",
        "question": "充值不到账",
        "answer": "查看交易记录后联系客服。",
        "alt_questions": ["充值没到账", "充值迟迟不到账", "充值了没到", "充值到账慢"],
    },
    {
        "id": "refund",
        "category": "money",
        "question": "退款流程是怎样的",
        "answer": "先联系商户申请退款。",
        "alt_questions": ["退款流程", "如何申请退款", "退款步骤", "申请退款流程"],
    },
    {
        "id": "fees",
        "category": "fees",
        "question": "有哪些费用",
        "answer": "以服务条款为准。",
        "alt_questions": ["费用标准", "收取哪些费用", "费用多少", "费用明细"],
    },
    {
        "id": "safety",
        "category": "account",
        "question": "怎样保证安全",
        "answer": "开启两步验证。",
        "alt_questions": ["账户安全", "保证账户安全", "安全设置", "安全中心"],
    },
]


def corpus_with(*changes: dict[str, object], drop: tuple[str, ...] = ()) -> Corpus:
    """The clean corpus with entries replaced (same id) or added, and some dropped."""
    entries = {e["id"]: dict(e) for e in CLEAN if e["id"] not in drop}
    for change in changes:
        entries[str(change["id"])] = {**entries.get(str(change["id"]), {}), **change}
    return Corpus.from_entries(entries.values(), source="planted")


def examine(corpus: Corpus, encoder) -> DoctorReport:
    return doctor(FAQRetriever.build(corpus, model=encoder))


def test_a_clean_corpus_has_no_high_severity_finding(encoder) -> None:
    report = examine(corpus_with(), encoder)
    assert report.at_least("high") == ()
    assert report.n_entries == 5 and report.n_texts == 25


def test_findings_are_sorted_worst_first_and_labelled_by_severity(encoder) -> None:
    report = examine(corpus_with({"id": "fees", "alt_questions": ["无法登录怎么办"]}), encoder)
    severities = [f.severity for f in report]
    assert severities == sorted(severities, reverse=True) and len(report) > 0
    for finding in report:
        expected = (
            "high"
            if finding.severity >= HIGH_SEVERITY
            else "medium"
            if finding.severity >= MEDIUM_SEVERITY
            else "low"
        )
        assert finding.label == expected and finding.advice


def test_a_question_shared_by_two_entries_is_the_worst_finding(encoder) -> None:
    # the same question, up to punctuation, case and Traditional/Simplified script
    corpus = corpus_with({"id": "fees", "alt_questions": ["收费吗", "無法登錄怎麼辦？", "fee"]})
    worst = examine(corpus, encoder).findings[0]
    assert worst.kind == "shared-question" and worst.label == "high"
    assert set(worst.entry_ids) == {"login", "fees"}
    assert set(worst.texts) == {"无法登录怎么办", "無法登錄怎麼辦？"}
    assert "keep it only in the entry that answers it" in worst.advice


def test_an_alt_question_closer_to_another_entry_is_misplaced_and_names_that_entry(
    encoder,
) -> None:
    # a refund-worded alt question planted in the fees entry
    corpus = corpus_with(
        {"id": "fees", "alt_questions": ["收费吗", "手续费多少", "fee schedule", "退款流程怎样"]}
    )
    misplaced = examine(corpus, encoder).of_kind("misplaced-question")
    planted = [f for f in misplaced if f.texts[0] == "退款流程怎样"]
    assert len(planted) == 1
    finding = planted[0]
    assert finding.entry_ids == ("fees", "refund")
    assert finding.texts[1] in corpus["refund"].questions()  # the rival text it is closest to
    assert finding.label == "medium" and finding.similarity is not None  # at most medium
    assert finding.severity == max(f.severity for f in misplaced)  # the worst one planted
    assert "fees" in finding.advice and "refund" in finding.advice


def test_two_entries_asking_the_same_thing_are_near_duplicates(encoder) -> None:
    twin = {
        "id": "topup-twin",
        "category": "money",
        "question": "充值没到账",
        "answer": "稍后再看。",
        "alt_questions": [
            "钱充了没有到",
            "充进去了余额没变",
            "top up is missing",
            "充值迟迟没有显示",
        ],
    }
    findings = examine(corpus_with(twin), encoder).of_kind("near-duplicate")
    assert [set(f.entry_ids) for f in findings] == [{"topup", "topup-twin"}]
    assert findings[0].severity >= MEDIUM_SEVERITY
    assert "merge them" in findings[0].advice


def test_an_entry_with_fewer_than_three_alt_questions_is_reported(encoder) -> None:
    corpus = corpus_with(
        {"id": "fees", "alt_questions": []},
        {"id": "safety", "alt_questions": ["防诈骗", "保护隐私"]},
    )
    found = {f.entry_ids[0]: f for f in examine(corpus, encoder).of_kind("too-few-questions")}
    assert set(found) == {"fees", "safety"}
    assert found["fees"].label == "medium" and found["safety"].label == "low"
    assert "add at least 3 more" in found["fees"].advice


def test_alt_questions_that_are_near_copies_are_redundant(encoder) -> None:
    corpus = corpus_with(
        {
            "id": "refund",
            "alt_questions": ["退款流程是怎样的呢", "退款流程是怎样的啊", "退款流程是怎样的吗"],
        }
    )
    found = examine(corpus, encoder).of_kind("redundant-questions")
    assert [f.entry_ids for f in found] == [("refund",)]
    assert found[0].similarity is not None and found[0].similarity > 0.9


def test_the_same_text_twice_in_one_entry_is_a_repeated_question(encoder) -> None:
    corpus = corpus_with({"id": "fees", "alt_questions": ["收费吗", "收費嗎", "手续费多少"]})
    found = examine(corpus, encoder).of_kind("repeated-question")
    assert [(f.entry_ids, f.texts) for f in found] == [(("fees",), ("收费吗", "收費嗎"))]
    assert "Simplified Chinese" in found[0].advice


def test_different_texts_of_only_punctuation_or_emoji_are_not_a_repeated_question(
    encoder,
) -> None:
    corpus = corpus_with({"id": "fees", "alt_questions": ["？？", "！！", "😀", "收费吗", "？？"]})
    found = examine(corpus, encoder).of_kind("repeated-question")
    assert [(f.entry_ids, f.texts) for f in found] == [(("fees",), ("？？", "？？"))]


def test_a_category_whose_texts_land_in_another_category_is_reported(encoder) -> None:
    # every fees text is a near-copy of one text or another of the money category
    corpus = corpus_with(
        {
            "id": "fees",
            "question": "退款流程是怎样的呢",
            "alt_questions": ["充值没到账呢", "退款步骤呢", "充值到账慢呢", "申请退款流程呢"],
        }
    )
    found = examine(corpus, encoder).of_kind("category-confusion")
    assert found[0].category == "fees → money" and found[0].label == "high"
    assert "refund" in found[0].entry_ids


def test_generated_hotline_entries_are_not_compared_with_each_other(encoder) -> None:
    contacts = directory_from_data(
        {
            "version": 1,
            "contacts": [
                {
                    "id": wallet,
                    "name": name,
                    "aliases": [name],
                    "hotline": "95000",
                    "official_url": "https://example.com",
                }
                for wallet, name in (("aa", "甲钱包"), ("bb", "乙钱包"), ("cc", "丙钱包"))
            ],
        }
    )
    corpus = FAQRetriever.from_corpus(corpus_with(), model=encoder, contacts=contacts).corpus
    retriever = FAQRetriever.build(corpus, model=encoder, contacts=contacts)
    report = doctor(retriever)
    hotlines = {"hotline-aa", "hotline-bb", "hotline-cc"}
    for finding in report:
        assert len(hotlines & set(finding.entry_ids)) < 2, finding


def test_a_corpus_path_is_examined_with_the_model_given(tmp_path: Path, encoder) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in CLEAN), "utf-8")
    report = doctor(path, model=encoder)
    assert report.model == "hash-test" and report.n_entries == 5


def test_a_model_with_a_built_retriever_is_refused(encoder) -> None:
    retriever = FAQRetriever.build(corpus_with(), model=encoder)
    with pytest.raises(WalletFAQError, match="model= applies to a corpus"):
        doctor(retriever, model=encoder)


def test_an_unsupported_source_is_refused_with_its_type(encoder) -> None:
    with pytest.raises(WalletFAQError, match="got int"):
        doctor(42)  # type: ignore[arg-type]


def test_an_hnsw_index_gives_the_same_findings_as_a_flat_one(encoder) -> None:
    corpus = corpus_with({"id": "fees", "alt_questions": ["收费吗", "退款流程怎样"]})
    flat = doctor(FAQRetriever.build(corpus, model=encoder))
    hnsw = doctor(FAQRetriever.build(corpus, model=encoder, index="hnsw"))
    assert flat.findings == hnsw.findings


def test_leave_one_out_matches_a_brute_force_reference(encoder) -> None:
    corpus = corpus_with({"id": "fees", "alt_questions": ["收费吗", "退款流程怎样", "手续费"]})
    report = doctor(FAQRetriever.build(corpus, model=encoder))
    # reference: every text against every other text, in plain numpy
    texts = [(e.id, t) for e in corpus for t in e.questions()]
    vectors = encoder.encode_queries([t for _, t in texts])
    expected = set()
    for i, (owner, text) in enumerate(texts):
        sims = vectors @ vectors[i]
        own = max(s for j, s in enumerate(sims) if j != i and texts[j][0] == owner)
        other = max(s for j, s in enumerate(sims) if texts[j][0] != owner)
        if other > own:
            expected.add(text)
    found = {f.texts[0] for f in report.of_kind("misplaced-question")}
    assert found == expected and expected


def test_report_exports_to_dict_and_frame(encoder) -> None:
    report = examine(corpus_with({"id": "fees", "alt_questions": []}), encoder)
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert data["n_entries"] == 5 and len(data["findings"]) == len(report)
    assert set(data["counts"]) == {"high", "medium", "low"}
    frame = report.to_frame()
    assert list(frame["kind"]) == [f.kind for f in report]
    assert list(frame.columns) == list(Finding.__dataclass_fields__)
    assert "too-few-questions" in report.summary()


def test_cli_doctor_prints_the_report_as_json(tmp_path: Path, routed_encoder, capsys) -> None:
    from walletfaq.cli import main

    path = tmp_path / "faq.jsonl"
    entries = [*CLEAN[:3], {**CLEAN[3], "alt_questions": ["无法登录怎么办"]}, CLEAN[4]]
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), "utf-8")
    assert main(["doctor", "--corpus", str(path), "--model", "hash-test", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["kind"] == "shared-question"
    assert data["findings"][0]["entry_ids"] == ["login", "fees"]


def test_cli_doctor_reports_a_missing_corpus_in_one_line(tmp_path: Path, capsys) -> None:
    from walletfaq.cli import main

    assert main(["doctor", "--corpus", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("walletfaq: error: ") and "file not found" in err


@pytest.mark.slow
def test_bundled_corpus_has_no_shared_question_and_flags_confusable_entries() -> None:
    report = doctor()
    assert report.model == "e5-small" and report.n_entries >= 170
    assert report.of_kind("shared-question") == ()
    assert report.of_kind("too-few-questions") == ()
    # generated hotline entries are kept apart by the wallet-name gate, never paired
    for finding in report.of_kind("near-duplicate"):
        assert not all(eid.startswith("hotline-") for eid in finding.entry_ids)
    assert np.isfinite(report.paraphrase_distance) and 0 < report.paraphrase_distance < 0.2
    # what a newcomer's first `walletfaq doctor` flags high must be worth fixing first: a
    # misplaced text rarely costs an answer (benchmarks/doctor_vs_eval.py), so none is high
    assert report.at_least("high") == ()
    assert all(f.label != "high" for f in report.of_kind("misplaced-question"))


def test_ids_that_read_alike_are_reported_as_confusable(encoder) -> None:
    corpus = corpus_with(
        {**CLEAN[0], "id": "l0gin", "question": "登录页面打不开"},
        {**CLEAN[1], "id": "top-up", "question": "充值了钱包余额没变"},
        {**CLEAN[1], "id": "top_up", "question": "充值以后余额不对"},
    )
    found = examine(corpus, encoder).of_kind("confusable-ids")
    assert sorted(f.entry_ids for f in found) == [("login", "l0gin"), ("top-up", "top_up")]
    for finding in found:
        assert finding.label == "medium" and all(eid in finding.advice for eid in finding.entry_ids)
        assert finding.texts == tuple(corpus[eid].question for eid in finding.entry_ids)


def test_a_clean_corpus_has_no_confusable_ids(encoder) -> None:
    assert examine(corpus_with(), encoder).of_kind("confusable-ids") == ()
