"""Domain tuning: data loading, the held-out split, the adapter and the tuned retriever."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import walletfaq.quality.tuning.data as data_module
import walletfaq.quality.tuning.runner as tune_module
from walletfaq import Corpus, FAQRetriever
from walletfaq.encoders.adapted import AdaptedEncoder
from walletfaq.encoders.protocol import Encoder
from walletfaq.errors import CorpusError, ModelError, WalletFAQError
from walletfaq.quality.tuning import load_tuning_data, retrieval_metrics, tune

from .conftest import HashEncoder


def planted_pairs(n: int = 120, seed: int = 0) -> list[tuple[str, str]]:
    """The planted task: each pair is a random string and its "translation", every character
    replaced by a fixed partner from a disjoint alphabet. The hash encoder sees the two sides
    as unrelated; a linear map can learn the character mapping and carry it to unseen strings."""
    rng = np.random.default_rng(seed)
    source = "甲乙丙丁戊己庚辛壬癸子丑寅卯"
    target = "金木水火土日月山石田风云雨雪"
    translate = str.maketrans(source, target)
    pairs = []
    for _ in range(n):
        text = "".join(rng.choice(list(source), size=5))
        pairs.append((text, text.translate(translate)))
    return pairs


@pytest.fixture
def retriever(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


@pytest.fixture
def pair_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    rows = ["sentence1\tsentence2\tlabel"]
    rows += [f"{a}\t{b}\t1" for a, b in planted_pairs(60)]
    rows += ["怎么退款\t怎么充值\t0"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def queries_file(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    records = [
        {"query": "登录不了", "gold": ["login"]},
        {"query": "钱没到账", "gold": ["topup"]},
        {"query": "退钱", "gold": ["refund"]},
        {"query": "今天天气", "gold": []},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


# --------------------------------------------------------------------------- data formats


def test_pair_file_loads_positives_and_hard_negatives(pair_file: Path) -> None:
    data = load_tuning_data(pair_file)
    assert data.kind == "pairs"
    assert len(data.positives) == 60
    assert len(data.negatives) == 1


def test_csv_pair_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2,label\n怎么退款,如何退钱,1\n", encoding="utf-8")
    data = load_tuning_data(path)
    assert [tuple(data.texts[i] for i in pair) for pair in data.positives] == [
        ("怎么退款", "如何退钱")
    ]


def test_evaluation_file_loads_queries_with_gold_and_skips_out_of_domain(
    queries_file: Path, tiny_corpus: Corpus
) -> None:
    data = load_tuning_data(queries_file, tiny_corpus.ids)
    assert data.kind == "queries"
    assert data.gold == (("login",), ("topup",), ("refund",))


def test_tuples_load_as_positive_pairs() -> None:
    data = load_tuning_data([("怎么退款", "如何退钱"), ("登不上", "无法登录")])
    assert data.kind == "pairs"
    assert len(data.positives) == 2


def test_bad_label_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("sentence1\tsentence2\tlabel\n甲\t乙\t1\n丙\t丁\tyes\n", encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_tuning_data(path)
    assert (caught.value.line, caught.value.field) == (3, "label")
    assert f"{path}:3" in str(caught.value)


def test_missing_header_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("question\tparaphrase\n甲\t乙\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="sentence1"):
        load_tuning_data(path)


def test_empty_sentence_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("sentence1\tsentence2\tlabel\n甲\t \t1\n", encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_tuning_data(path)
    assert (caught.value.line, caught.value.field) == (2, "sentence2")


def test_unknown_gold_id_is_an_error(tmp_path: Path, tiny_corpus: Corpus) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "退款", "gold": ["nope"]}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="nope") as caught:
        load_tuning_data(path, tiny_corpus.ids)
    assert caught.value.field == "gold"


def test_malformed_tuple_is_an_error() -> None:
    with pytest.raises(CorpusError, match="item 2"):
        load_tuning_data([("甲", "乙"), ("丙",)])


def test_data_without_any_positive_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "neg.tsv"
    path.write_text("sentence1\tsentence2\tlabel\n甲\t乙\t0\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no positive"):
        load_tuning_data(path)


def test_unknown_method_is_an_error(retriever: FAQRetriever) -> None:
    with pytest.raises(WalletFAQError, match="method must be 'adapter' or 'finetune'"):
        tune(retriever, [("甲", "乙")], method="lora")  # type: ignore[arg-type]


def test_unknown_setting_is_an_error(retriever: FAQRetriever) -> None:
    with pytest.raises(WalletFAQError, match="colour"):
        tune(retriever, [("甲", "乙")], colour="red")


# --------------------------------------------------------------------------- the split


def test_holdout_texts_are_never_trained_on(
    retriever: FAQRetriever, pair_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    real = tune_module._train_adapter

    def spy(problem, settings, seed, progress):  # type: ignore[no-untyped-def]
        seen["problem"] = problem
        return real(problem, settings, seed, progress)

    monkeypatch.setattr(tune_module, "_train_adapter", spy)
    result = tune(retriever, pair_file, holdout=0.3, epochs=2, progress=False)
    problem = seen["problem"]
    trained = (
        set(problem.anchor) | set(problem.positive) | set(problem.negative[problem.negative >= 0])
    )  # type: ignore[attr-defined]
    held = set(problem.holdout_rows) | set(problem.holdout_queries)  # type: ignore[attr-defined]
    assert result.holdout_size > 0
    assert not trained & held


def test_the_result_lists_the_held_out_queries_as_the_retriever_reads_them(
    retriever: FAQRetriever, pair_file: Path
) -> None:
    result = tune(retriever, pair_file, holdout=0.3, epochs=2, progress=False)
    sentences = {retriever.normalizer(text) for text in load_tuning_data(pair_file).texts}
    assert len(result.holdout_queries) == result.holdout_size > 0
    assert set(result.holdout_queries) <= sentences
    assert tune(retriever, pair_file, holdout=0.0, epochs=2, progress=False).holdout_queries == ()


def test_the_split_keeps_paraphrase_clusters_whole(retriever: FAQRetriever) -> None:
    chain = [
        ("甲一", "甲二"),
        ("甲二", "甲三"),
        ("乙一", "乙二"),
        ("丙一", "丙二"),
        ("丁一", "丁二"),
    ]
    data = load_tuning_data(chain)
    component = data_module._components(len(data.texts), data.positives)
    assert component[data.texts.index("甲一")] == component[data.texts.index("甲三")]


# --------------------------------------------------------------------------- learning


def test_tuning_on_a_planted_task_improves_the_held_out_metric(
    tiny_corpus: Corpus, encoder: HashEncoder
) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    result = tune(
        retriever,
        planted_pairs(300),
        holdout=0.3,
        epochs=30,
        lr=0.05,
        patience=0,
        progress=False,
        use_corpus_alts=False,
    )
    assert result.after["mrr@10"] > result.before["mrr@10"] + 0.1


def test_tuned_retriever_uses_an_adapted_encoder_and_still_finds_corpus_questions(
    retriever: FAQRetriever,
) -> None:
    result = tune(retriever, planted_pairs(80), epochs=5, progress=False)
    tuned = result.retriever
    assert isinstance(tuned.encoder, AdaptedEncoder)
    assert isinstance(tuned.encoder, Encoder)
    for entry in tuned.corpus:
        assert tuned.ask(entry.question, k=1)[0].id == entry.id


def test_tuned_index_rows_are_the_base_rows_transformed(retriever: FAQRetriever) -> None:
    tuned = tune(retriever, planted_pairs(80), epochs=3, progress=False).retriever
    base_rows = retriever.index.reconstruct_n(0, retriever.index.ntotal)
    expected = tuned.encoder.transform(base_rows)  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        tuned.index.reconstruct_n(0, tuned.index.ntotal), expected, atol=1e-6
    )


def test_ask_applies_the_transform_to_the_question(retriever: FAQRetriever) -> None:
    tuned = tune(retriever, planted_pairs(80), epochs=3, progress=False).retriever
    adapter = tuned.encoder
    question = "退款要多久"
    expected = adapter.transform(adapter.base.encode_queries([question]))  # type: ignore[attr-defined]
    vector = tuned.encoder.encode_queries([question])
    np.testing.assert_allclose(vector, expected, atol=1e-6)
    assert tuned.ask(question, k=1)[0].score == pytest.approx(
        float(np.max(tuned.index.reconstruct_n(0, tuned.index.ntotal) @ vector[0])), abs=1e-5
    )


def test_the_original_retriever_is_left_unchanged(retriever: FAQRetriever) -> None:
    rows = retriever.index.reconstruct_n(0, retriever.index.ntotal).copy()
    tune(retriever, planted_pairs(80), epochs=3, progress=False)
    assert not isinstance(retriever.encoder, AdaptedEncoder)
    np.testing.assert_array_equal(retriever.index.reconstruct_n(0, retriever.index.ntotal), rows)


def test_evaluation_data_is_measured_against_the_corpus(
    retriever: FAQRetriever, queries_file: Path
) -> None:
    result = tune(retriever, queries_file, holdout=0.4, epochs=3, progress=False)
    assert result.holdout_size >= 1
    assert set(result.before) == {"mrr@10", "recall@1", "queries"}


def test_same_seed_gives_the_same_adapter(retriever: FAQRetriever) -> None:
    pairs = planted_pairs(100)
    first = tune(retriever, pairs, epochs=4, seed=3, progress=False)
    second = tune(retriever, pairs, epochs=4, seed=3, progress=False)
    np.testing.assert_array_equal(first.encoder.weight, second.encoder.weight)
    assert first.encoder.fingerprint == second.encoder.fingerprint
    assert first.after == second.after


def test_query_only_adapter_leaves_corpus_rows_unchanged(retriever: FAQRetriever) -> None:
    tuned = tune(retriever, planted_pairs(80), epochs=3, apply_to="queries", progress=False)
    np.testing.assert_allclose(
        tuned.retriever.index.reconstruct_n(0, retriever.index.ntotal),
        retriever.index.reconstruct_n(0, retriever.index.ntotal),
        atol=1e-6,
    )


# --------------------------------------------------------------------------- the adapter


def test_identity_adapter_gives_the_base_vectors(encoder: HashEncoder) -> None:
    adapter = AdaptedEncoder(encoder, np.eye(encoder.dim, dtype=np.float32))
    texts = ["怎么退款", "登录失败"]
    np.testing.assert_allclose(
        adapter.encode_queries(texts), encoder.encode_queries(texts), atol=1e-6
    )


def test_adapter_round_trips_through_its_tensors(encoder: HashEncoder) -> None:
    rng = np.random.default_rng(0)
    adapter = AdaptedEncoder(
        encoder, rng.normal(size=(32, encoder.dim)), rng.normal(size=32), info={"method": "x"}
    )
    again = AdaptedEncoder.from_tensors(encoder, adapter.tensors(), info=adapter.info)
    assert again.fingerprint == adapter.fingerprint
    assert again.dim == 32
    assert again.name == encoder.name


def test_adapter_fingerprint_depends_on_weights_and_side(encoder: HashEncoder) -> None:
    eye = np.eye(encoder.dim, dtype=np.float32)
    both = AdaptedEncoder(encoder, eye)
    assert both.fingerprint != AdaptedEncoder(encoder, eye, apply_to="queries").fingerprint
    assert both.fingerprint != AdaptedEncoder(encoder, 2 * eye).fingerprint
    assert both.fingerprint != encoder.fingerprint


def test_adapter_rejects_a_weight_of_the_wrong_shape(encoder: HashEncoder) -> None:
    with pytest.raises(ModelError, match="shape"):
        AdaptedEncoder(encoder, np.eye(encoder.dim + 1, dtype=np.float32))


def test_retrieval_metrics_match_a_hand_computed_ranking() -> None:
    queries = np.asarray([[1.0, 0.0]], dtype=np.float32)
    rows = np.asarray([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    # items 0, 1, 1: item 1's best row is the exact match, item 0 comes second
    metrics = retrieval_metrics(queries, rows, np.asarray([0, 1, 1]), [{0}])
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["recall@1"] == 0.0


def test_a_tuned_index_saves_and_loads_with_its_adapter(
    retriever: FAQRetriever, encoder: HashEncoder, tmp_path: Path
) -> None:
    tuned = tune(retriever, planted_pairs(), seed=0, progress=False).retriever
    path = tuned.save(tmp_path / "tuned")
    assert (path / "adapter.safetensors").is_file()
    loaded = FAQRetriever.load(path, model=encoder)  # the base model, as for any index
    assert isinstance(loaded.encoder, AdaptedEncoder)
    for question in ["登不上去", "怎么退款", "收费吗"]:
        assert loaded.ask(question, k=5) == tuned.ask(question, k=5)


def test_a_tuned_index_refuses_another_base_model(retriever: FAQRetriever, tmp_path: Path) -> None:
    from walletfaq import IndexMismatchError

    tuned = tune(retriever, planted_pairs(), seed=0, progress=False).retriever
    path = tuned.save(tmp_path / "tuned")
    with pytest.raises(IndexMismatchError, match="tuned on top of another model"):
        FAQRetriever.load(path, model=HashEncoder(salt="other"))


def test_walletfaq_tune_and_doctor_stay_functions_after_their_modules_load() -> None:
    import walletfaq
    import walletfaq.quality.doctor.checks
    import walletfaq.quality.tuning.runner  # noqa: F401

    assert callable(walletfaq.tune) and walletfaq.tune is tune
    assert callable(walletfaq.doctor)


def test_the_tune_command_saves_a_tuned_index(
    tiny_corpus_file: Path, pair_file: Path, routed_encoder: HashEncoder, tmp_path: Path
) -> None:
    from walletfaq.cli import main

    encoder = routed_encoder
    argv = ["tune", "--data", str(pair_file), "--corpus", str(tiny_corpus_file)]
    assert main([*argv, "--model", "hash-test", "--out", str(tmp_path / "tuned")]) == 0
    loaded = FAQRetriever.load(tmp_path / "tuned", model=encoder)
    assert isinstance(loaded.encoder, AdaptedEncoder)


# --------------------------------------------------------------------------- bad input


def test_a_quoted_field_keeps_its_line_break_and_later_lines_keep_their_numbers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(
        'sentence1,sentence2,label\n"how do\nI pay",paying,1\nx,y,maybe\n', encoding="utf-8"
    )
    with pytest.raises(CorpusError) as caught:
        load_tuning_data(path)
    assert (caught.value.line, caught.value.field) == (4, "label")
    path.write_text('sentence1,sentence2,label\n"how do\nI pay",paying,1\n', encoding="utf-8")
    assert load_tuning_data(path).texts == ("how do\nI pay", "paying")


def test_an_unclosed_quote_in_a_pair_file_names_its_line_and_the_quote(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text('sentence1\tsentence2\tlabel\n"甲\t乙\t1\n丙\t丁\t1\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="double quote") as caught:
        load_tuning_data(path)
    assert caught.value.line == 2


def test_an_unclosed_quote_in_a_large_pair_file_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    rows = "".join(f"句子{i}\t另一个句子{i}\t1\n" for i in range(20_000))
    path.write_text(f'sentence1\tsentence2\tlabel\n"甲\t乙\t1\n{rows}', encoding="utf-8")
    with pytest.raises(CorpusError, match="double quote") as caught:
        load_tuning_data(path)
    assert caught.value.line == 2


def test_a_pair_file_header_naming_a_column_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("sentence1\tsentence1\tsentence2\tlabel\n甲\t乙\t丙\t1\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="more than once") as caught:
        load_tuning_data(path)
    assert (caught.value.line, caught.value.field) == (1, "sentence1")


def test_an_unknown_gold_id_names_the_line_of_its_query(
    tmp_path: Path, tiny_corpus: Corpus
) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"query": "登录", "gold": ["login"]}\n\n{"query": "退款", "gold": ["nope"]}\n',
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match="nope") as caught:
        load_tuning_data(path, tiny_corpus.ids)
    assert (caught.value.line, caught.value.field) == (3, "gold")
    assert f"{path}:3" in str(caught.value)


def test_a_tuple_with_a_lone_surrogate_names_its_item() -> None:
    with pytest.raises(CorpusError, match="item 2") as caught:
        load_tuning_data([("甲", "乙"), ("丙\ud800", "丁")])
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("bias", "no"),
        ("symmetric", "false"),
        ("use_corpus_alts", 0),
        ("hard_negatives", "yes"),
        ("mined_negatives", 1),
        ("lr", True),
        ("identity_decay", float("inf")),
        ("batch_size", 1),
    ],
)
def test_a_tune_setting_of_the_wrong_kind_is_refused_by_name(
    retriever: FAQRetriever, setting: str, value: object
) -> None:
    with pytest.raises(WalletFAQError, match=f"{setting}="):
        tune(retriever, planted_pairs(20), progress=False, **{setting: value})


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_a_bad_seed_is_refused_with_its_value(retriever: FAQRetriever, seed: object) -> None:
    with pytest.raises(WalletFAQError, match="seed must be an int"):
        tune(retriever, planted_pairs(20), seed=seed, progress=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("retriever", [None, "e5-small"])
def test_tune_refuses_something_that_is_not_a_retriever(retriever: object) -> None:
    with pytest.raises(WalletFAQError, match="needs a FAQRetriever"):
        tune(retriever, [("甲", "乙")])  # type: ignore[arg-type]


def test_too_few_training_pairs_to_learn_from_is_an_error(retriever: FAQRetriever) -> None:
    with pytest.raises(WalletFAQError, match="at least 2"):
        tune(retriever, [("甲", "乙")], use_corpus_alts=False, progress=False)
