"""``tune`` learns from the store's query log (issue 19, part 3): feedback naming an entry, or
"helpful" on an answered query, makes a labelled query; ``tune(retriever, store)``,
``tune(retriever, store.labelled_queries(since))`` and ``walletfaq tune --store URL``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import HashEncoder
from tests.test_tune_recalibration import IN_DOMAIN, OUT_OF_DOMAIN
from walletfaq import Corpus, FAQRetriever
from walletfaq.cli import main
from walletfaq.data.queries import LabelledQuery
from walletfaq.encoders.adapted import AdaptedEncoder
from walletfaq.errors import CorpusError
from walletfaq.quality.calibration import CalibrationWarning
from walletfaq.quality.tuning import (
    TuningWarning,
    load_tuning_data,
    store_tuning_data,
    tune,
)
from walletfaq.store import QueryHit, QueryRecord, Store, open_store

T0 = datetime(2026, 4, 1, tzinfo=timezone.utc)
LABELLED = [(question, gold) for gold, questions in IN_DOMAIN.items() for question in questions]


def log_labelled_traffic(store: Store, start: datetime = T0) -> None:
    """Every question of ``IN_DOMAIN`` answered and labelled, one minute apart: the even ones
    by feedback naming the entry (after a wrong answer), the odd ones by "helpful" on the right
    answer. Then queries that label nothing: out-of-domain hand-offs (one rated helpful), and
    an answer rated not helpful without naming an entry."""
    records, feedback = [], []
    for number, (question, gold) in enumerate(LABELLED):
        request_id = f"q{number}"
        top = gold if number % 2 else "fees" if gold != "fees" else "login"
        hits = (QueryHit(top, 0.9), QueryHit("safety", 0.5))
        at = start + timedelta(minutes=number)
        records.append(QueryRecord(request_id, question, "answer", hits, 5.0, created_at=at))
        feedback.append((request_id, True, None) if number % 2 else (request_id, False, gold))
    for number, question in enumerate(OUT_OF_DOMAIN):
        at = start + timedelta(hours=2, minutes=number)
        records.append(QueryRecord(f"o{number}", question, "handoff", (), 5.0, created_at=at))
    feedback.append(("o0", True, None))
    hits = (QueryHit("refund", 0.9),)
    records.append(QueryRecord("n1", "退款", "answer", hits, 5.0, created_at=start))
    feedback.append(("n1", False, None))
    store.log_queries(records)
    for request_id, helpful, entry_id in feedback:
        store.add_feedback(request_id, helpful, entry_id=entry_id)


@pytest.fixture
def logged(store_location: str, tiny_corpus: Corpus) -> Iterator[Store]:
    """A store (SQLite, then PostgreSQL) holding the tiny corpus and labelled traffic."""
    store = open_store(store_location, create=True)
    store.init(tiny_corpus, author="alice")
    log_labelled_traffic(store)
    yield store
    store.close()


@pytest.fixture
def retriever(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


def quietly(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Call ``function`` with the small-data warnings of this tiny log silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        warnings.simplefilter("ignore", TuningWarning)
        return function(*args, **kwargs)


def gold_by_text(data) -> dict[str, tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return {data.texts[q]: gold for (q, _), gold in zip(data.positives, data.gold, strict=True)}


# ----------------------------------------------------------------------------- the data


def test_the_logs_labelled_queries_are_evaluation_data(logged: Store, tiny_corpus: Corpus) -> None:
    data = load_tuning_data(logged.labelled_queries(), tiny_corpus.ids)
    assert (data.kind, data.source) == ("queries", "<labelled queries>")
    assert gold_by_text(data) == {question: (gold,) for question, gold in LABELLED}
    assert len(data.labelled) == len(LABELLED)


def test_a_store_is_read_as_its_whole_log(logged: Store, tiny_corpus: Corpus) -> None:
    data = load_tuning_data(logged, tiny_corpus.ids)
    assert data.source == f"the query log of {logged.url}"
    assert gold_by_text(data) == {question: (gold,) for question, gold in LABELLED}


def test_since_reads_only_the_labels_of_recent_queries(logged: Store, tiny_corpus: Corpus) -> None:
    data = store_tuning_data(logged, T0 + timedelta(minutes=20), tiny_corpus.ids)
    assert set(data.texts) == {question for question, _ in LABELLED[20:]}


def test_labels_naming_an_entry_not_in_the_corpus_are_left_out_with_a_warning(
    logged: Store, tiny_corpus: Corpus
) -> None:
    hits = (QueryHit("login", 0.9),)
    logged.log_query(QueryRecord("g1", "旧的问题", "answer", hits, 5.0, created_at=T0))
    logged.add_feedback("g1", False, entry_id="gone-entry")
    with pytest.warns(TuningWarning, match=r"1 of the 31 labelled queries .* \(gone-entry\)"):
        data = store_tuning_data(logged, corpus_ids=tiny_corpus.ids)
    assert "旧的问题" not in data.texts and len(data.positives) == len(LABELLED)


def test_labelled_queries_in_memory_naming_an_unknown_entry_are_an_error(
    tiny_corpus: Corpus,
) -> None:
    queries = [LabelledQuery("登录不了", ("login",)), LabelledQuery("旧的问题", ("gone-entry",))]
    with pytest.raises(CorpusError, match=r"query 2 .* gold id\(s\) \['gone-entry'\]"):
        load_tuning_data(queries, tiny_corpus.ids)


def test_a_log_without_labelled_queries_is_refused_saying_how_to_collect_them(
    store_location: str, tiny_corpus: Corpus
) -> None:
    with open_store(store_location, create=True) as store:
        store.init(tiny_corpus, author="alice")
        store.log_query(QueryRecord("h1", "怎么开发票", "handoff", (), 5.0))
        with pytest.raises(CorpusError, match="holds no labelled query .* collect feedback"):
            store_tuning_data(store, corpus_ids=tiny_corpus.ids)


# ----------------------------------------------------------------------------- tuning


def test_tune_learns_from_the_log_and_recalibrates_on_its_held_out_queries(
    logged: Store, retriever: FAQRetriever
) -> None:
    result = quietly(tune, retriever, logged, holdout=0.5, seed=0, progress=False)
    assert isinstance(result.retriever.encoder, AdaptedEncoder)
    recalibration = result.recalibration
    assert recalibration is not None and "query log" in recalibration.source
    held = set(result.holdout_queries)
    assert recalibration.after.n_in_domain == sum(question in held for question, _ in LABELLED)
    assert result.retriever.threshold == recalibration.threshold_after


def test_the_stores_labelled_queries_and_the_store_train_the_same_adapter(
    logged: Store, retriever: FAQRetriever
) -> None:
    from_log = quietly(tune, retriever, logged, holdout=0.5, seed=0, progress=False)
    listed = quietly(
        tune, retriever, logged.labelled_queries(), holdout=0.5, seed=0, progress=False
    )
    assert from_log.holdout_queries == listed.holdout_queries
    assert from_log.after == listed.after and from_log.train_size == listed.train_size


def test_too_few_labelled_queries_give_the_existing_warning(
    logged: Store, retriever: FAQRetriever
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        with pytest.warns(TuningWarning, match="held-out queries measure before/after"):
            tune(retriever, logged, holdout=0.2, seed=0, progress=False)


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def store_path(tmp_path: Path, tiny_corpus: Corpus) -> str:
    path = str(tmp_path / "faq.db")
    with open_store(path, create=True) as store:
        store.init(tiny_corpus, author="alice")
        log_labelled_traffic(store)
    return path


def test_the_tune_command_learns_from_a_stores_log(
    store_path: str, routed_encoder: HashEncoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuned"
    argv = ["tune", "--store", store_path, "--model", "hash-test", "--out", str(out)]
    assert main([*argv, "--holdout", "0.5"]) == 0
    assert f"saved the tuned index to {out}" in capsys.readouterr().out
    loaded = FAQRetriever.load(out, model=routed_encoder)
    assert isinstance(loaded.encoder, AdaptedEncoder)
    assert loaded.corpus.ids == ("login", "topup", "refund", "fees", "safety")  # the store's


def test_the_tune_command_reads_only_the_labels_since(
    store_path: str, routed_encoder: HashEncoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tune", "--store", store_path, "--model", "hash-test", "--out", str(tmp_path / "t")]
    assert main([*argv, "--since", "1d"]) == 2  # everything was asked in April
    assert "holds no labelled query since" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "q.jsonl", "--since", "7d"], "--since reads the store's query log"),
        (["--store", "{store}", "--since", "soon"], "since 'soon' is not a time"),
    ],
)
def test_a_bad_tune_command_is_one_line_error_with_status_2(
    store_path: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.format(store=store_path) for a in argv]
    assert main(["tune", *args, "--out", "unused"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1


def test_the_tune_command_takes_data_or_a_store_not_both(store_path: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "--data", "q.jsonl", "--store", store_path, "--out", "unused"])
    assert exit_info.value.code == 2


def test_the_clarify_margin_and_threshold_calibrate_on_the_logs_labelled_queries(
    logged: Store, retriever: FAQRetriever
) -> None:
    from walletfaq import calibrate, calibrate_margin, margin_curves

    labelled = logged.labelled_queries()
    assert len(labelled) == len(LABELLED)
    curves = margin_curves(retriever, labelled)
    assert set(curves["n_queries"]) == {len(LABELLED)}
    assert list(curves["margin"]) == sorted(curves["margin"])
    chosen = quietly(calibrate_margin, retriever, labelled)
    assert 0.0 <= chosen.margin <= 2.0
    threshold = quietly(calibrate, retriever, labelled)
    assert -1.0 <= threshold.chosen.threshold <= 1.0
