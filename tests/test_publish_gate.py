"""The quality gate of a publish (``walletfaq.quality.gate``) and the commands around it
(``walletfaq store stage / staged / discard``, ``walletfaq publish``): a harmless edit passes,
a harmful one (an entry deleted, or rewritten so that its queries go elsewhere) is refused with
the broken queries listed, ``--force`` publishes and the history says so, and a publish racing
another writer publishes nothing.

The tiny corpus and the hashing encoder of ``tests/conftest.py`` stand in for the real model
(``--model hash-test`` is routed to it); the gate queries are the corpus's own questions, which
the hashing encoder ranks first, so every ranking below is known in advance. The command-line
tests run on SQLite and on the real PostgreSQL of ``tests/store_support.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TINY_ENTRIES, HashEncoder
from walletfaq.cli import main
from walletfaq.data.contacts import ContactDirectory, directory_from_data
from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.errors import CorpusError, WalletFAQError
from walletfaq.quality import gate as gate_module
from walletfaq.quality.evaluation import evaluate
from walletfaq.quality.gate import DEFAULT_TOLERANCE, GateResult, check_gate, check_tolerance
from walletfaq.quality.gate_report import MAX_HEADLINE_CHARS
from walletfaq.retrieval.retriever import FAQRetriever
from walletfaq.store import Change, StagedChangedError, Store, open_store

TINY = Corpus.from_entries(TINY_ENTRIES, source="tiny")
QUERIES = [
    {"query": text, "gold": [entry["id"]], "style": "own"}
    for entry in TINY_ENTRIES
    for text in [entry["question"], *entry["alt_questions"]]
]  # 15 queries, 3 per entry, each answered by its entry (an exact text of it)
OFF_TOPIC = {"query": "今天天气怎么样", "gold": []}
WEATHER = {"question": "明天会下雨吗", "alt_questions": ["天气预报", "气温多少度"]}


def _with(entry_id: str, **fields: object) -> Corpus:
    """The tiny corpus with one entry's fields replaced."""
    return Corpus.from_entries(
        [dataclasses.replace(e, **fields) if e.id == entry_id else e for e in TINY.entries]  # type: ignore[arg-type]
    )


def _without(entry_id: str) -> Corpus:
    return Corpus.from_entries([e for e in TINY.entries if e.id != entry_id])


def _gate(candidate: Corpus, encoder: HashEncoder, **options: object) -> GateResult:
    options.setdefault("gate_queries", [*QUERIES, OFF_TOPIC])
    return check_gate(TINY, candidate, model=encoder, **options)  # type: ignore[arg-type]


# --- the gate --------------------------------------------------------------------------------


def test_an_unchanged_candidate_passes_with_equal_metrics(encoder: HashEncoder) -> None:
    result = _gate(TINY, encoder)
    assert result.passed and result.reasons == ()
    assert result.metrics_before == result.metrics_after == {"recall@1": 1.0, "mrr@10": 1.0}
    assert result.deltas == {"recall@1": 0.0, "mrr@10": 0.0}
    assert (result.n_queries, result.n_out_of_domain, result.n_skipped) == (15, 1, 0)


def test_an_added_alt_question_passes(encoder: HashEncoder) -> None:
    refund = TINY["refund"]
    result = _gate(_with("refund", alt_questions=(*refund.alt_questions, "钱能退回来吗")), encoder)
    assert result.passed and result.broken == () and result.lost_entries == ()
    assert result.changed == ("refund",) and result.added == result.removed == ()


def test_a_deleted_entry_that_answered_gate_queries_is_lost_and_refused(
    encoder: HashEncoder,
) -> None:
    result = _gate(_without("refund"), encoder)
    assert not result.passed
    assert [(e.entry_id, e.removed) for e in result.lost_entries] == [("refund", True)]
    broken = {q.query: q for q in result.broken}
    assert set(broken) == {"退款流程是怎样的", "怎么退款", "refund steps"}
    assert all(q.gold_removed and q.after_rank is None for q in broken.values())
    assert all(q.before_top == "refund" and q.after_top != "refund" for q in broken.values())
    assert result.metrics_after["recall@1"] == pytest.approx(12 / 15)
    assert any("answers none any more: refund" in reason for reason in result.reasons)


def test_an_entry_rewritten_to_another_topic_is_lost_although_it_still_exists(
    encoder: HashEncoder,
) -> None:
    result = _gate(_with("refund", **WEATHER), encoder)  # type: ignore[arg-type]
    assert not result.passed
    assert [(e.entry_id, e.removed) for e in result.lost_entries] == [("refund", False)]
    assert {q.query for q in result.lost_entries[0].queries} == {
        "退款流程是怎样的",
        "怎么退款",
        "refund steps",
    }
    assert not any(q.gold_removed for q in result.broken)


def test_an_entry_lost_is_refused_even_when_the_metrics_stay_within_the_tolerance(
    encoder: HashEncoder,
) -> None:
    result = _gate(_without("refund"), encoder, tolerance=100.0)
    assert not result.passed
    assert len(result.reasons) == 1 and "none any more" in result.reasons[0]


def _one_query_broken_in(n: int) -> tuple[Corpus, list[dict[str, object]]]:
    """A candidate and ``n`` gate queries of which exactly one breaks (an alt question of
    ``login`` moved to a new entry) while ``login`` still answers the others."""
    login = TINY["login"]
    moved = "登不上去"
    candidate = Corpus.from_entries(
        [
            *(e for e in TINY.entries if e.id != "login"),
            dataclasses.replace(login, alt_questions=("login failed",)),
            FAQEntry("locked", "account", moved, "账户被锁时请联系客服。"),
        ]
    )
    others = [q for q in QUERIES if q["query"] != moved]
    queries = [{"query": moved, "gold": ["login"]}]
    queries += [others[i % len(others)] for i in range(n - 1)]
    return candidate, queries


def test_a_fall_of_exactly_the_tolerance_passes_and_a_little_more_refuses(
    encoder: HashEncoder,
) -> None:
    candidate, queries = _one_query_broken_in(200)  # one query in 200 = 0.5 points of R@1
    at = _gate(candidate, encoder, gate_queries=queries)
    assert at.deltas["recall@1"] == -0.5 and DEFAULT_TOLERANCE == 0.5
    assert at.passed and [q.query for q in at.broken] == ["登不上去"]
    below = _gate(candidate, encoder, gate_queries=queries, tolerance=0.49)
    assert not below.passed and below.lost_entries == ()
    assert below.reasons[0].startswith("recall@1 fell 0.50 points")


@pytest.mark.parametrize("tolerance", [-0.1, math.nan, math.inf, True, "0.5", None])
def test_a_tolerance_that_is_not_a_finite_number_of_points_is_refused(
    encoder: HashEncoder, tolerance: object
) -> None:
    with pytest.raises(WalletFAQError, match="tolerance must be a finite number of points"):
        _gate(TINY, encoder, tolerance=tolerance)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6)))
def test_a_tolerance_passes_exactly_when_it_is_a_finite_number_at_least_0(value: float) -> None:
    if math.isfinite(value) and value >= 0:
        assert check_tolerance(value) == float(value)
    else:
        with pytest.raises(WalletFAQError, match="tolerance must be a finite number"):
            check_tolerance(value)


def test_a_query_whose_gold_entry_is_not_published_is_skipped_not_gated(
    encoder: HashEncoder,
) -> None:
    unpublished = {"query": "微信客服电话是多少", "gold": ["hotline-wechat-pay"]}
    result = _gate(TINY, encoder, gate_queries=[*QUERIES, unpublished])
    assert (result.n_queries, result.n_skipped) == (15, 1)
    assert result.unpublished_gold == ("hotline-wechat-pay",)
    assert "whose gold entries are not published (hotline-wechat-pay)" in str(result)


def test_a_query_with_one_gold_entry_left_is_judged_on_that_entry(encoder: HashEncoder) -> None:
    both = {"query": "怎么退款", "gold": ["refund", "hotline-x"]}
    result = _gate(TINY, encoder, gate_queries=[both])
    assert (result.n_queries, result.n_skipped, result.unpublished_gold) == (1, 0, ("hotline-x",))
    assert result.metrics_before["recall@1"] == 1.0


def test_gate_queries_none_of_which_is_published_are_an_error(encoder: HashEncoder) -> None:
    with pytest.raises(WalletFAQError, match="none of the 1 gate queries has a gold entry"):
        _gate(TINY, encoder, gate_queries=[{"query": "客服电话", "gold": ["hotline-x"]}])


def _acme() -> ContactDirectory:
    """One wallet whose hotline entry is ``hotline-acme``."""
    acme = {"id": "acme", "name": "阿克米", "hotline": "95000", "official_url": "https://acme.cn"}
    return directory_from_data({"version": 1, "contacts": [acme]})


def test_with_the_services_contacts_the_hotline_queries_are_gated(encoder: HashEncoder) -> None:
    contacts = _acme()
    hotline = {"query": "阿克米客服电话是什么", "gold": ["hotline-acme"]}
    thief = FAQEntry("acme-phone", "support", "阿克米客服电话是什么", "请拨打 12345。")
    without = _gate(TINY.merged(Corpus((thief,))), encoder, gate_queries=[*QUERIES, hotline])
    assert without.passed and without.n_skipped == 1  # the hotline entry is not served
    result = _gate(
        TINY.merged(Corpus((thief,))),
        encoder,
        gate_queries=[*QUERIES, hotline],
        contacts=contacts,
    )
    assert not result.passed and result.n_skipped == 0
    assert [e.entry_id for e in result.lost_entries] == ["hotline-acme"]


def test_a_candidate_entry_taking_a_hotline_entrys_id_is_refused(encoder: HashEncoder) -> None:
    contacts = _acme()
    clash = FAQEntry("hotline-acme", "support", "阿克米电话", "12345")
    with pytest.raises(CorpusError, match="duplicate id 'hotline-acme'"):
        _gate(TINY.merged(Corpus((clash,))), encoder, contacts=contacts)


def test_a_candidate_that_is_not_a_valid_corpus_is_refused_naming_the_field(
    encoder: HashEncoder,
) -> None:
    bad = Corpus((*TINY.entries, FAQEntry("bad id", "money", "问题", "答案")))  # not validated
    with pytest.raises(CorpusError) as caught:
        _gate(bad, encoder)
    assert caught.value.field == "id"


def test_the_candidate_ranks_as_a_full_build_of_it_would(encoder: HashEncoder) -> None:
    candidate = _with("refund", **WEATHER).merged(  # type: ignore[arg-type]
        Corpus.from_entries(
            [{"id": "new", "category": "money", "question": "退钱", "answer": "好"}]
        )
    )
    result = _gate(candidate, encoder)
    full = evaluate(
        FAQRetriever.build(candidate, model=encoder),
        [q for q in QUERIES],
        metrics=("recall@1", "mrr@10"),
        progress=False,
    )
    assert result.metrics_after == pytest.approx(full.metrics)


PARAPHRASES = [
    {"query": "钱包登录不了", "gold": ["login"]},
    {"query": "充钱了但是没到账", "gold": ["topup"]},
    {"query": "提现要手续费吗", "gold": ["fees"]},
    {"query": "怎么才能让账户更安全", "gold": ["safety"]},
    {"query": "退钱要多久", "gold": ["refund", "topup"]},
    {"query": "money did not arrive", "gold": ["topup"]},
]


def test_the_gates_metrics_are_those_evaluate_reports(encoder: HashEncoder) -> None:
    queries = [*QUERIES, *PARAPHRASES]
    result = _gate(_with("refund", **WEATHER), encoder, gate_queries=queries)  # type: ignore[arg-type]
    for corpus, metrics in (
        (TINY, result.metrics_before),
        (_with("refund", **WEATHER), result.metrics_after),
    ):  # type: ignore[arg-type]
        reference = evaluate(
            FAQRetriever.build(corpus, model=encoder),
            queries,
            metrics=("recall@1", "mrr@10"),
            progress=False,
        )
        assert metrics == pytest.approx(reference.metrics)
    assert 0 < result.metrics_before["mrr@10"] < 1  # not every query is ranked first


def test_a_small_edit_embeds_only_its_new_text_when_the_published_index_is_cached(
    encoder: HashEncoder,
) -> None:
    _gate(TINY, encoder)  # caches the published content's index and the queries' vectors
    encoder.texts_encoded = 0
    refund = TINY["refund"]
    _gate(_with("refund", alt_questions=(*refund.alt_questions, "钱能退回来吗")), encoder)
    assert encoder.texts_encoded == 1  # the new alt question, nothing else


def test_once_published_the_candidate_is_a_warm_published_content_for_the_next_gate(
    encoder: HashEncoder,
) -> None:
    refund = TINY["refund"]
    first = _with("refund", alt_questions=(*refund.alt_questions, "钱能退回来吗"))
    _gate(first, encoder)  # the candidate's index is saved in the cache
    encoder.texts_encoded = 0
    fees = first["fees"]
    second = Corpus.from_entries(
        [
            dataclasses.replace(e, alt_questions=(*fees.alt_questions, "要交钱吗"))
            if e.id == "fees"
            else e
            for e in first.entries
        ]
    )
    result = check_gate(first, second, model=encoder, gate_queries=QUERIES)
    assert result.passed and encoder.texts_encoded == 1  # the new alt question only


def _plus_alt(corpus: Corpus, entry_id: str, alt: str) -> Corpus:
    return Corpus.from_entries(
        [
            dataclasses.replace(e, alt_questions=(*e.alt_questions, alt)) if e.id == entry_id else e
            for e in corpus.entries
        ]
    )


def test_a_published_content_the_gate_never_saw_is_made_from_the_last_index_it_built(
    encoder: HashEncoder,
) -> None:
    gated = _plus_alt(TINY, "refund", "钱能退回来吗")
    _gate(gated, encoder)
    applied = _plus_alt(gated, "login", "账号进不去")  # an edit applied without the gate
    encoder.texts_encoded = 0
    candidate = _plus_alt(applied, "fees", "要交钱吗")
    assert check_gate(applied, candidate, model=encoder, gate_queries=QUERIES).passed
    assert encoder.texts_encoded == 2  # the two new alt questions


def test_a_damaged_record_of_the_last_index_means_embedding_the_published_content(
    encoder: HashEncoder,
) -> None:
    from walletfaq.encoders.presets import cache_dir

    _gate(_plus_alt(TINY, "refund", "钱能退回来吗"), encoder)
    (record,) = (cache_dir() / "gate").glob("last-*.txt")
    record.write_text("../elsewhere", encoding="utf-8")
    applied = _plus_alt(TINY, "login", "账号进不去")
    encoder.texts_encoded = 0
    check_gate(applied, _plus_alt(applied, "fees", "要交钱吗"), model=encoder, gate_queries=QUERIES)
    assert encoder.texts_encoded == len(TINY_ENTRIES) * 3 + 1 + 1  # every row, the new alt


def test_without_the_cache_each_gate_query_is_encoded_once(encoder: HashEncoder) -> None:
    _gate(TINY, encoder, cache=False)
    assert encoder.texts_encoded == len(TINY_ENTRIES) * 3 + len(QUERIES)  # the rows, the queries


def test_a_damaged_cache_of_the_gate_queries_is_encoded_again(encoder: HashEncoder) -> None:
    from walletfaq.encoders.presets import cache_dir

    first = _gate(TINY, encoder)
    (cached,) = (cache_dir() / "gate").glob("queries-*.npy")
    cached.write_bytes(b"not a numpy file")
    encoder.texts_encoded = 0
    again = _gate(TINY, encoder)
    assert encoder.texts_encoded == len(QUERIES)
    assert again.metrics_before == first.metrics_before
    assert np.load(cached, allow_pickle=False).shape == (len(QUERIES), encoder.dim)


def test_the_result_reads_as_text_a_dict_and_frames(encoder: HashEncoder) -> None:
    result = _gate(_without("refund"), encoder)
    text = str(result)
    assert text.startswith("quality gate REFUSED: 15 gate queries")
    assert "'怎么退款' (gold refund): was refund [1.000], now" in text
    assert "refund (removed), answered 3 gate queries" in text
    record = json.loads(json.dumps(result.to_dict()))
    assert set(record) == {
        "passed", "reasons", "tolerance", "metrics", "queries", "broken_queries",
        "lost_entries", "changes", "new_contact_details", "model", "seconds",
    }  # fmt: skip
    assert record["metrics"]["recall@1"] == {
        "before": 1.0,
        "after": pytest.approx(0.8),
        "delta": pytest.approx(-20.0),
    }
    assert record["changes"] == {"added": [], "removed": ["refund"], "changed": []}
    assert record["lost_entries"][0]["queries"][0]["after"]["gold_rank"] is None
    frame = result.to_frame()
    assert list(frame["metric"]) == ["recall@1", "mrr@10"] and not frame["ok"].any()
    assert set(result.broken_frame()["lost_entry"]) == {"refund"}


def test_the_headline_stays_short_whatever_the_ids(encoder: HashEncoder) -> None:
    ids = [f"{'x' * 62}-{n}" for n in range(8)]  # ids of the longest length, 64
    entries = [
        {"id": i, "category": "c", "question": f"问题{n}号", "answer": "答"}
        for n, i in enumerate(ids)
    ]
    queries = [{"query": f"问题{n}号", "gold": [i]} for n, i in enumerate(ids)]
    other = {"id": "other", "category": "c", "question": "别的", "answer": "答"}
    result = check_gate(
        Corpus.from_entries(entries),
        Corpus.from_entries([other]),
        model=encoder,
        gate_queries=queries,
        tolerance=100.0,
    )
    assert len(result.lost_entries) == 8 and "and 5 more" in result.headline()
    assert len(result.headline()) <= MAX_HEADLINE_CHARS


def test_a_query_answered_only_by_the_candidate_counts_as_fixed(encoder: HashEncoder) -> None:
    weather = {"query": "明天会下雨吗", "gold": ["fees"]}  # no entry answers it before
    fees = TINY["fees"]
    candidate = _with("fees", alt_questions=(*fees.alt_questions, "明天会下雨吗"))
    result = _gate(candidate, encoder, gate_queries=[*QUERIES, weather])
    assert result.passed and result.fixed == 1 and result.deltas["recall@1"] > 0


# --- the commands ------------------------------------------------------------------------------


@pytest.fixture
def tiny_store(store_location: str, tiny_corpus_file: Path, capsys) -> str:
    """A store (SQLite, then PostgreSQL) holding the tiny corpus as revision 1."""
    assert (
        main(["store", "init", "--store", store_location, "--corpus", str(tiny_corpus_file)]) == 0
    )
    capsys.readouterr()
    return store_location


@pytest.fixture
def gate_file(tmp_path: Path) -> Path:
    path = tmp_path / "gate.jsonl"
    lines = [json.dumps(q, ensure_ascii=False) for q in [*QUERIES, OFF_TOPIC]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _entries_file(tmp_path: Path, corpus: Corpus | list[FAQEntry], suffix: str = ".jsonl") -> str:
    from walletfaq.store.imports import write_entries

    entries = corpus.entries if isinstance(corpus, Corpus) else corpus
    return str(write_entries(entries, tmp_path / f"stage{suffix}"))


def _publish(store: str, gate: Path, *extra: str) -> int:
    return main(["publish", "--store", store, "--gate", str(gate), "--model", "hash-test", *extra])


@pytest.mark.usefixtures("routed_encoder")
def test_publish_publishes_a_harmless_staged_edit(
    tiny_store: str, gate_file: Path, tmp_path: Path, capsys
) -> None:

    refund = TINY["refund"]
    edited = dataclasses.replace(refund, alt_questions=(*refund.alt_questions, "钱能退回来吗"))
    stage = ["store", "stage", "--store", tiny_store, "--author", "bob"]
    assert main([*stage, "--corpus", _entries_file(tmp_path, [edited])]) == 0
    assert "staged 0 to add, 1 to replace, 0 to remove" in capsys.readouterr().out
    assert _publish(tiny_store, gate_file, "--author", "carol", "--reason", "more ways to ask") == 0
    out = capsys.readouterr().out
    assert "quality gate PASSED" in out and "published revision 2 (gate passed)" in out
    with open_store(tiny_store) as store:
        revision = store.log()[-1]
        assert (revision.kind, revision.forced, revision.author) == ("publish", False, "carol")
        assert revision.reason is not None and revision.reason.startswith("quality gate passed")
        assert revision.reason.endswith("; more ways to ask")
        assert store.entry("refund") == edited and store.staged() == ()


@pytest.mark.usefixtures("routed_encoder")
@pytest.mark.parametrize("harm", ["delete", "rewrite"])
def test_publish_refuses_a_harmful_edit_with_status_3_and_keeps_it_staged(
    tiny_store: str, gate_file: Path, tmp_path: Path, capsys, harm: str
) -> None:

    stage = ["store", "stage", "--store", tiny_store]
    if harm == "delete":
        assert main([*stage, "--delete", "refund"]) == 0
    else:
        rewritten = dataclasses.replace(TINY["refund"], **WEATHER)  # type: ignore[arg-type]
        assert main([*stage, "--corpus", _entries_file(tmp_path, [rewritten], ".csv")]) == 0
    capsys.readouterr()
    assert _publish(tiny_store, gate_file) == 3
    captured = capsys.readouterr()
    assert "quality gate REFUSED" in captured.out
    assert "'怎么退款' (gold refund): was refund" in captured.out
    assert "refund (removed)" in captured.out or "refund (still there)" in captured.out
    err = captured.err.splitlines()[-1]  # after the INFO lines of building the index
    assert err.startswith("walletfaq: refused by the quality gate: ")
    assert "nothing was published, the staged changes are kept" in err
    with open_store(tiny_store) as store:
        assert store.head() == 1 and len(store.staged()) == 1


@pytest.mark.usefixtures("routed_encoder")
def test_publish_force_publishes_a_refused_edit_and_the_history_says_forced(
    tiny_store: str, gate_file: Path, capsys
) -> None:

    main(["store", "stage", "--store", tiny_store, "--delete", "refund"])
    assert _publish(tiny_store, gate_file, "--force", "--reason", "merged into fees") == 0
    assert "published revision 2 (forced past the quality gate)" in capsys.readouterr().out
    with open_store(tiny_store) as store:
        revision = store.log()[-1]
        assert revision.forced and revision.kind == "publish"
        assert revision.reason is not None
        assert revision.reason.startswith("quality gate refused: recall@1 -20.00")
        assert "1 entries lost (refund), published with --force; merged into fees" in (
            revision.reason
        )
        assert "refund" not in store.entries().ids
    assert main(["store", "log", "--store", tiny_store]) == 0
    assert "publish (forced past its gate)" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.usefixtures("routed_encoder")
def test_publish_json_prints_the_status_revision_and_gate(
    tiny_store: str, gate_file: Path, capsys
) -> None:
    main(["store", "stage", "--store", tiny_store, "--delete", "refund"])
    capsys.readouterr()
    assert _publish(tiny_store, gate_file, "--json") == 3
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"status", "revision", "store", "head", "gate"}
    assert (record["status"], record["revision"], record["head"]) == ("refused", None, 1)
    assert record["gate"]["passed"] is False
    assert [e["id"] for e in record["gate"]["lost_entries"]] == ["refund"]
    assert _publish(tiny_store, gate_file, "--json", "--force") == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["status"], record["revision"]) == ("forced", 2)


def test_publish_with_nothing_staged_is_one_line_with_status_2(tiny_store: str, capsys) -> None:
    assert main(["publish", "--store", tiny_store]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("walletfaq: error: nothing is staged in ") and "\n" not in err


def test_publish_of_staged_changes_that_change_nothing_is_status_2(
    tiny_store: str, tmp_path: Path, capsys
) -> None:

    with open_store(tiny_store) as store:
        store.stage([Change.update(TINY["refund"])], author="bob")  # the same content
    assert main(["publish", "--store", tiny_store]) == 2
    assert "leave revision 1's content as it is; nothing to publish" in capsys.readouterr().err


def test_publish_names_the_gate_files_line_and_field(
    tiny_store: str, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "gate.jsonl"
    bad.write_text('{"query": "怎么退款", "gold": ["refund"]}\n{"query": "x", "gold": "refund"}\n')
    main(["store", "stage", "--store", tiny_store, "--delete", "fees"])
    capsys.readouterr()
    assert main(["publish", "--store", tiny_store, "--gate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and ":2" in err and "gold" in err and "\n" not in err


@pytest.mark.parametrize("tolerance", ["-1", "nan", "inf"])
def test_publish_refuses_a_bad_tolerance_before_reading_the_store(
    tmp_path: Path, capsys, tolerance: str
) -> None:
    missing = str(tmp_path / "none.db")
    assert main(["publish", "--store", missing, "--tolerance", tolerance]) == 2
    assert "tolerance must be a finite number of points" in capsys.readouterr().err


def test_publish_refuses_a_reason_too_long_to_record_with_the_verdict(
    tiny_store: str, capsys
) -> None:
    main(["store", "stage", "--store", tiny_store, "--delete", "fees"])
    capsys.readouterr()
    assert main(["publish", "--store", tiny_store, "--reason", "x" * 1491]) == 2
    assert "--reason is 1491 characters; keep it to 1490" in capsys.readouterr().err


def _edit_login(store: Store) -> None:
    edited = dataclasses.replace(store.entry("login"), answer="新的答案。")
    store.apply([Change.update(edited)], author="dave")


def _stage_removal(store: Store) -> None:
    store.stage([Change.remove("refund")], author="mallory")  # not what the gate evaluated


@pytest.mark.usefixtures("routed_encoder")
@pytest.mark.parametrize(
    ("meanwhile", "message", "head", "staged"),
    [
        (_edit_login, "walletfaq: conflict: the store moved from revision 1", 2, ["fees"]),
        (_stage_removal, "walletfaq: conflict: the staged changes in", 1, ["fees", "refund"]),
    ],
    ids=["an apply", "a stage"],
)
def test_publish_racing_another_writer_publishes_nothing_with_status_4(
    tiny_store: str,
    gate_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    meanwhile: Callable[[Store], None],
    message: str,
    head: int,
    staged: list[str],
) -> None:
    main(["store", "stage", "--store", tiny_store, "--delete", "fees"])
    real = gate_module.check_gate

    def gate_while_another_writer_writes(*args: object, **kwargs: object) -> GateResult:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        with open_store(tiny_store) as other:
            meanwhile(other)
        return result

    monkeypatch.setattr(gate_module, "check_gate", gate_while_another_writer_writes)
    capsys.readouterr()
    assert _publish(tiny_store, gate_file, "--force") == 4
    assert capsys.readouterr().err.splitlines()[-1].startswith(message)
    with open_store(tiny_store) as store:
        assert store.head() == head and [s.entry_id for s in store.staged()] == staged


def test_publish_of_an_entry_edited_after_it_was_staged_is_status_4(
    tiny_store: str, gate_file: Path, routed_encoder: HashEncoder, capsys
) -> None:

    refund = TINY["refund"]
    with open_store(tiny_store) as store:
        store.stage([Change.update(dataclasses.replace(refund, answer="新答案一。"))], author="b")
        store.apply([Change.update(dataclasses.replace(refund, answer="新答案二。"))], author="c")
    capsys.readouterr()
    assert _publish(tiny_store, gate_file) == 4
    err = capsys.readouterr().err
    assert "entry 'refund' changed in revision 2" in err and "walletfaq store discard" in err


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".xlsx"])
def test_stage_adds_new_ids_and_replaces_known_ones_from_a_file(
    tmp_path: Path, tiny_corpus_file: Path, suffix: str, capsys
) -> None:

    db = str(tmp_path / "faq.db")
    main(["store", "init", "--store", db, "--corpus", str(tiny_corpus_file)])
    new = FAQEntry("limits", "money", "转账限额是多少", "单笔五万元。")
    edited = dataclasses.replace(TINY["fees"], answer="免费。")
    entries = [new, edited, TINY["login"]]  # login unchanged: not staged
    capsys.readouterr()
    assert (
        main(
            ["store", "stage", "--store", db, "--corpus", _entries_file(tmp_path, entries, suffix)]
        )
        == 0
    )
    assert "staged 1 to add, 1 to replace, 0 to remove (1 unchanged entries skipped)" in (
        capsys.readouterr().out
    )
    with open_store(db) as store:
        assert [(s.op, s.entry_id) for s in store.staged()] == [("put", "limits"), ("put", "fees")]
        assert store.head() == 1


def test_stage_needs_a_file_or_ids_to_delete(tiny_store: str, capsys) -> None:
    assert main(["store", "stage", "--store", tiny_store]) == 2
    assert "needs --corpus FILE" in capsys.readouterr().err


def test_stage_refuses_an_unknown_id_to_delete_and_stages_nothing(tiny_store: str, capsys) -> None:

    assert main(["store", "stage", "--store", tiny_store, "--delete", "fees", "nope"]) == 2
    assert "no entry 'nope' to remove" in capsys.readouterr().err
    with open_store(tiny_store) as store:
        assert store.staged() == ()


def test_staged_lists_the_changes_and_discard_deletes_them(
    tiny_store: str, tmp_path: Path, capsys
) -> None:
    new = FAQEntry("limits", "money", "转账限额是多少", "单笔五万元。")
    main(["store", "stage", "--store", tiny_store, "--corpus", _entries_file(tmp_path, [new])])
    main(["store", "stage", "--store", tiny_store, "--delete", "fees", "--reason", "obsolete"])
    capsys.readouterr()
    assert main(["store", "staged", "--store", tiny_store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "add limits (on revision 1)" in lines[0]
    assert "remove fees (on revision 1)  obsolete" in lines[1]
    assert lines[2].startswith("2 staged changes")
    assert main(["store", "staged", "--store", tiny_store, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["op"], r["id"], r["reason"]) for r in records] == [
        ("put", "limits", None),
        ("delete", "fees", "obsolete"),
    ]
    assert main(["store", "discard", "--store", tiny_store]) == 0
    assert "discarded 2 staged changes" in capsys.readouterr().out
    assert main(["store", "staged", "--store", tiny_store]) == 0
    assert capsys.readouterr().out.strip() == "nothing staged"


# --- the store's guard for the gate ---------------------------------------------------------------


def test_a_publish_checked_with_other_staged_changes_writes_nothing(tiny_store: str) -> None:

    with open_store(tiny_store) as store:
        store.stage([Change.remove("fees")], author="bob")
        checked = store.staged()
        store.stage([Change.remove("refund")], author="mallory")
        with pytest.raises(StagedChangedError, match="1 checked, 2 staged now"):
            store.publish(author="carol", expected_staged=checked)
        assert store.head() == 1 and len(store.staged()) == 2
        assert store.publish(author="carol", expected_staged=store.staged()).number == 2


# --- the real model ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("user_cache")
def test_on_the_real_model_a_deleted_busy_entry_is_stopped_and_an_added_alt_passes() -> None:
    from walletfaq.data.corpus import load_bundled_corpus

    bundled = load_bundled_corpus()
    deleted = Corpus.from_entries([e for e in bundled.entries if e.id != "refund-process"])
    harmful = check_gate(bundled, deleted)
    assert not harmful.passed
    assert "refund-process" in [e.entry_id for e in harmful.lost_entries]
    entry = bundled["login-failed"]
    benign = Corpus.from_entries(
        [
            dataclasses.replace(e, alt_questions=(*e.alt_questions, "app 登录一直转圈进不去"))
            if e.id == entry.id
            else e
            for e in bundled.entries
        ]
    )
    assert check_gate(bundled, benign).passed
