"""Full fine-tuning (tune(method="finetune")): settings, the split, persistence, and a few
real training steps of the default model on tiny data (marked slow)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from walletfaq import Corpus, FAQRetriever, IndexMismatchError
from walletfaq.data.corpus import index_texts
from walletfaq.encoders.adapted import AdaptedEncoder
from walletfaq.encoders.finetuned import FinetunedEncoder
from walletfaq.errors import IndexFormatError, WalletFAQError
from walletfaq.quality.tuning import (
    AdapterSettings,
    FinetuneSettings,
    load_tuning_data,
    training_rows,
    tune,
)
from walletfaq.quality.tuning.adapter import _prepare
from walletfaq.quality.tuning.finetune import prompts_for

from .conftest import TINY_ENTRIES, HashEncoder

PAIRS = [
    ("怎么退款", "如何退钱"),
    ("退款多久到账", "退的钱什么时候回来"),
    ("登不上", "无法登录"),
    ("密码忘了", "忘记登录密码"),
    ("充值没到", "钱没进账"),
    ("充了钱余额没变", "充值后余额不对"),
    ("手续费多少", "收费标准"),
    ("提现要钱吗", "提现收费吗"),
    ("账户被盗", "钱包被人盗了"),
    ("怎么防诈骗", "如何避免被骗"),
    ("提现多久到", "提现到账时间"),
    ("怎么改密码", "修改登录密码"),
    ("实名认证", "认证身份"),
    ("客服电话多少", "人工客服号码"),
    ("打客服要准备什么", "联系客服前准备"),
    ("钱包是什么", "电子钱包的意思"),
]


@pytest.fixture
def retriever(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


@pytest.fixture
def pair_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    rows = ["sentence1\tsentence2\tlabel"]
    rows += [f"{a}\t{b}\t1" for a, b in PAIRS]
    rows += ["怎么退款\t怎么充值\t0", "登不上\t登录太慢\t0", "提现多久到\t充值多久到\t0"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _rows(corpus: Corpus, data: Any, holdout: float, **settings: Any):  # type: ignore[no-untyped-def]
    row_texts, owners = index_texts(corpus.entries, False)
    return training_rows(
        data,
        list(data.texts),
        row_texts,
        np.asarray(owners),
        corpus.ids,
        FinetuneSettings(**settings),
        holdout,
        np.random.default_rng(0),
    )


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("epochs", 0),
        ("epochs", 1.5),
        ("batch_size", 1),
        ("batch_size", True),
        ("lr", 0),
        ("lr", float("nan")),
        ("warmup", 1.0),
        ("weight_decay", -0.1),
        ("scale", 0),
        ("hard_negatives", "yes"),
        ("max_seq_length", 4),
        ("max_steps", 0),
        ("dtype", "int8"),
    ],
)
def test_bad_finetune_settings_name_the_setting_and_what_is_expected(
    retriever: FAQRetriever, setting: str, value: object
) -> None:
    with pytest.raises(WalletFAQError, match=f"setting {setting}=.*expected"):
        tune(retriever, PAIRS, method="finetune", **{setting: value})


def test_an_adapter_only_setting_is_refused_for_finetune(retriever: FAQRetriever) -> None:
    with pytest.raises(WalletFAQError, match=r"unknown tune setting\(s\) \['rank'\].*finetune"):
        tune(retriever, PAIRS, method="finetune", rank=8)


def test_finetune_needs_a_sentence_transformers_model(retriever: FAQRetriever) -> None:
    with pytest.raises(WalletFAQError, match="hash-test.*has none.*method='adapter'"):
        tune(retriever, PAIRS, method="finetune")


def test_the_tune_command_reports_an_encoder_that_cannot_be_fine_tuned(
    tiny_corpus_file: Path,
    pair_file: Path,
    routed_encoder: HashEncoder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from walletfaq.cli import main

    argv = ["tune", "--data", str(pair_file), "--corpus", str(tiny_corpus_file), "--model"]
    code = main([*argv, "hash-test", "--method", "finetune", "--out", str(tmp_path / "t")])
    assert code != 0
    assert "has none" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------- the split


def test_held_out_texts_are_never_training_rows(tiny_corpus: Corpus, pair_file: Path) -> None:
    rows = _rows(tiny_corpus, load_tuning_data(pair_file), 0.3)
    trained = set(rows.anchors) | set(rows.positives) | {n for n in rows.negatives if n}
    held = set(rows.holdout_queries) | set(rows.holdout_candidates)
    assert rows.holdout_queries and rows.data_rows > 0
    assert not trained & held


def test_held_out_logged_queries_are_never_anchors(tiny_corpus: Corpus, tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    records = [{"query": f"问题{i}", "gold": [TINY_ENTRIES[i % 5]["id"]]} for i in range(20)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    rows = _rows(tiny_corpus, load_tuning_data(path, tiny_corpus.ids), 0.3)
    assert rows.holdout_queries
    assert not set(rows.holdout_queries) & set(rows.anchors)
    assert not rows.holdout_candidates  # ranked against the corpus rows


def test_finetune_holds_out_what_the_adapter_holds_out(
    tiny_corpus: Corpus, pair_file: Path
) -> None:
    data = load_tuning_data(pair_file)
    rows = _rows(tiny_corpus, data, 0.3)
    row_texts, owners = index_texts(tiny_corpus.entries, False)
    vectors = np.zeros((len(data.texts) + len(row_texts), 1), dtype=np.float32)
    problem = _prepare(
        data,
        vectors[: len(data.texts)],
        vectors[len(data.texts) :],
        np.asarray(owners),
        tiny_corpus.ids,
        AdapterSettings(),
        0.3,
        np.random.default_rng(0),
    )
    assert rows.holdout_queries == tuple(data.texts[i] for i in problem.holdout_queries)


def test_label_0_partners_become_hard_negatives(tiny_corpus: Corpus, pair_file: Path) -> None:
    rows = _rows(tiny_corpus, load_tuning_data(pair_file), 0.0)
    negatives = dict(zip(rows.anchors, rows.negatives, strict=True))
    assert negatives["怎么退款"] == "怎么充值"
    without = _rows(tiny_corpus, load_tuning_data(pair_file), 0.0, hard_negatives=False)
    assert not any(without.negatives)


def test_corpus_alt_pairs_start_at_their_entry_question(
    tiny_corpus: Corpus, pair_file: Path
) -> None:
    rows = _rows(tiny_corpus, load_tuning_data(pair_file), 0.0)
    alt_pairs = set(
        zip(rows.anchors[rows.data_rows :], rows.positives[rows.data_rows :], strict=True)
    )
    expected = {(e["question"], alt) for e in TINY_ENTRIES for alt in e["alt_questions"]}
    assert alt_pairs == expected
    none = _rows(tiny_corpus, load_tuning_data(pair_file), 0.0, use_corpus_alts=False)
    assert len(none.anchors) == none.data_rows


class _PromptModel:
    prompts = {"query": "query: ", "document": "passage: "}


@pytest.mark.parametrize(
    ("question_encoding", "row_prompt"),
    [("query", "query: "), ("both", "query: "), ("document", "passage: ")],
)
def test_training_prompts_follow_how_the_index_embeds_its_rows(
    question_encoding: str, row_prompt: str
) -> None:
    prompts = prompts_for(_PromptModel(), question_encoding)  # type: ignore[arg-type]
    assert prompts == {"anchor": "query: ", "positive": row_prompt, "negative": row_prompt}


def test_a_model_without_prompts_trains_on_plain_text() -> None:
    class Plain:
        prompts: dict[str, str] = {}

    assert prompts_for(Plain(), "query") == {}  # type: ignore[arg-type]


# --------------------------------------------------------------------------- persistence


def _fake_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "0.layer.weight": rng.normal(size=(4, 4)).astype(np.float16),
        "0.layer.bias": np.zeros(4, dtype=np.float16),
    }


@pytest.fixture
def fake_finetuned(tiny_corpus: Corpus, encoder: HashEncoder) -> FAQRetriever:
    """A retriever whose encoder carries fine-tuned tensors (never run: persistence only)."""
    base = FAQRetriever.build(tiny_corpus, model=encoder)
    tuned = FinetunedEncoder(encoder, _fake_tensors(), info={"method": "finetune", "x": 1})
    return FAQRetriever(tiny_corpus, tuned, base.index)


def test_fine_tuned_tensors_are_saved_with_a_manifest_record(
    fake_finetuned: FAQRetriever, encoder: HashEncoder, tmp_path: Path
) -> None:
    path = fake_finetuned.save(tmp_path / "ft")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tuning"] == {
        "method": "finetune",
        "base_fingerprint": encoder.fingerprint,
        "info": {"method": "finetune", "x": 1},
    }
    assert "finetune.safetensors" in manifest["files"]
    assert "adapter.safetensors" not in manifest["files"]
    assert manifest["model_fingerprint"] == fake_finetuned.encoder.fingerprint


def test_a_fine_tuned_index_reloads_its_tensors_on_the_base(
    fake_finetuned: FAQRetriever, encoder: HashEncoder, tmp_path: Path
) -> None:
    path = fake_finetuned.save(tmp_path / "ft")
    loaded = FAQRetriever.load(path, model=encoder)
    assert isinstance(loaded.encoder, FinetunedEncoder)
    assert loaded.encoder.fingerprint == fake_finetuned.encoder.fingerprint
    for name, value in _fake_tensors().items():
        np.testing.assert_array_equal(loaded.encoder.tensors()[name], value)


def test_a_fine_tuned_index_refuses_another_base_model(
    fake_finetuned: FAQRetriever, tmp_path: Path
) -> None:
    path = fake_finetuned.save(tmp_path / "ft")
    with pytest.raises(IndexMismatchError, match="tuned on top of another model"):
        FAQRetriever.load(path, model=HashEncoder(salt="other"))


def test_an_edited_fine_tuned_file_is_detected(
    fake_finetuned: FAQRetriever, encoder: HashEncoder, tmp_path: Path
) -> None:
    path = fake_finetuned.save(tmp_path / "ft")
    data = bytearray((path / "finetune.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (path / "finetune.safetensors").write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="finetune.safetensors"):
        FAQRetriever.load(path, model=encoder)


def test_an_adapter_on_a_fine_tuned_encoder_saves_both_files(
    fake_finetuned: FAQRetriever, encoder: HashEncoder, tmp_path: Path
) -> None:
    finetuned = fake_finetuned.encoder
    adapter = AdaptedEncoder(finetuned, np.eye(encoder.dim, dtype=np.float32), info={"a": 1})
    both = FAQRetriever(fake_finetuned.corpus, adapter, fake_finetuned.index)
    path = both.save(tmp_path / "both")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert {"adapter.safetensors", "finetune.safetensors"} <= set(manifest["files"])
    assert manifest["tuning"]["finetune"]["base_fingerprint"] == encoder.fingerprint
    assert manifest["tuning"]["base_fingerprint"] == finetuned.fingerprint
    loaded = FAQRetriever.load(path, model=encoder)
    assert isinstance(loaded.encoder, AdaptedEncoder)
    assert isinstance(loaded.encoder.base, FinetunedEncoder)
    assert loaded.encoder.fingerprint == adapter.fingerprint


def test_fingerprint_depends_on_the_tensors(encoder: HashEncoder) -> None:
    first = FinetunedEncoder(encoder, _fake_tensors())
    changed = _fake_tensors()
    changed["0.layer.bias"][0] = 1
    assert first.fingerprint != FinetunedEncoder(encoder, changed).fingerprint
    assert first.fingerprint != encoder.fingerprint
    assert first.name == encoder.name and first.dim == encoder.dim


# --------------------------------------------------------------------------- real training

SLOW_SETTINGS: dict[str, Any] = {"max_steps": 2, "batch_size": 8, "holdout": 0.25}


@pytest.fixture(scope="module")
def e5(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The real default model, built once for this module."""
    pytest.importorskip("datasets")
    pytest.importorskip("accelerate")
    from walletfaq.encoders.presets import PresetEncoder

    return PresetEncoder("e5-small", root=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def base_retriever(e5: Any) -> FAQRetriever:
    return FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES, source="tiny"), model=e5)


@pytest.fixture(scope="module")
def finetuned(base_retriever: FAQRetriever) -> Any:
    return tune(base_retriever, PAIRS, method="finetune", seed=0, progress=False, **SLOW_SETTINGS)


@pytest.mark.slow
def test_fine_tuning_changes_the_model_and_leaves_the_base_alone(
    base_retriever: FAQRetriever, finetuned: Any
) -> None:
    question = "退款要多久"
    before = base_retriever.encoder.encode_queries([question])
    tuned = finetuned.retriever
    assert isinstance(tuned.encoder, FinetunedEncoder)
    assert not np.allclose(tuned.encoder.encode_queries([question]), before, atol=1e-4)
    np.testing.assert_array_equal(base_retriever.encoder.encode_queries([question]), before)
    assert finetuned.method == "finetune" and finetuned.settings["steps"] == 2
    assert set(finetuned.before) == set(finetuned.after) == {"mrr@10", "recall@1", "queries"}


@pytest.mark.slow
def test_only_the_transformer_layers_are_saved_in_half_precision(finetuned: Any) -> None:
    tensors = finetuned.retriever.encoder.tensors()
    assert tensors and all(t.dtype == np.float16 for t in tensors.values())
    assert not any("embeddings" in name and "LayerNorm" not in name for name in tensors)
    assert sum(t.size for t in tensors.values()) < 30_000_000  # of e5-small's 118M


@pytest.mark.slow
def test_the_saved_index_reloads_to_identical_answers(
    finetuned: Any, e5: Any, tmp_path: Path
) -> None:
    tuned = finetuned.retriever
    path = tuned.save(tmp_path / "ft")
    loaded = FAQRetriever.load(path, model=e5)
    assert isinstance(loaded.encoder, FinetunedEncoder)
    for question in ["登不上去", "怎么退款", "收费吗", "钱包安全吗"]:
        assert loaded.ask(question, k=5) == tuned.ask(question, k=5)
        np.testing.assert_array_equal(
            loaded.encoder.encode_queries([question]), tuned.encoder.encode_queries([question])
        )


@pytest.mark.slow
def test_the_manifest_records_method_base_settings_metrics_and_time(
    finetuned: Any, e5: Any, tmp_path: Path
) -> None:
    path = finetuned.retriever.save(tmp_path / "ft")
    tuning = json.loads((path / "manifest.json").read_text(encoding="utf-8"))["tuning"]
    assert tuning["method"] == "finetune"
    assert tuning["base_fingerprint"] == e5.fingerprint
    info = tuning["info"]
    assert info["settings"]["batch_size"] == 8 and info["settings"]["seed"] == 0
    assert info["settings"]["prompts"] == {
        "anchor": "query: ",
        "positive": "query: ",
        "negative": "query: ",
    }
    assert info["metrics"]["before"]["queries"] == info["metrics"]["after"]["queries"] > 0
    assert info["training"]["steps"] == 2 and info["training"]["training_seconds"] > 0
    assert info["seconds"] >= info["training"]["training_seconds"]


@pytest.mark.slow
def test_a_saved_fine_tuned_index_refuses_another_base(finetuned: Any, tmp_path: Path) -> None:
    path = finetuned.retriever.save(tmp_path / "ft")
    with pytest.raises(IndexMismatchError, match="tuned on top of another model"):
        FAQRetriever.load(path, model=HashEncoder(dim=384, name="e5-small"))


@pytest.mark.slow
def test_same_seed_gives_the_same_weights_and_a_time_estimate_is_logged(
    base_retriever: FAQRetriever, finetuned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="walletfaq.quality.tuning.finetune"):
        again = tune(
            base_retriever, PAIRS, method="finetune", seed=0, progress=False, **SLOW_SETTINGS
        )
    assert again.retriever.encoder.fingerprint == finetuned.retriever.encoder.fingerprint
    assert any("estimated" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_an_adapter_tunes_on_top_of_the_fine_tuned_model(
    finetuned: Any, e5: Any, tmp_path: Path
) -> None:
    adapted = tune(finetuned.retriever, PAIRS, method="adapter", epochs=3, progress=False)
    path = adapted.retriever.save(tmp_path / "both")
    loaded = FAQRetriever.load(path, model=e5)
    assert isinstance(loaded.encoder.base, FinetunedEncoder)  # type: ignore[attr-defined]
    assert loaded.ask("怎么退款", k=3) == adapted.retriever.ask("怎么退款", k=3)
