"""Real user questions for the search-at-scale section, and their cached embeddings.

The questions come from ``../shared/data/questions/zh_questions.txt`` (development machines
only: the file is read when present and the section is skipped when it is absent; it is never
copied into the project). Embedding all 152,971 of them with ``e5-small`` takes 10 to 25
minutes on two quiet cores, so the vectors are cached as float16 chunks of
:data:`CHUNK_ROWS` rows under a cache folder: an interrupted run resumes where it stopped, and a
partial cache can be used as a stated subset.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

QUESTIONS_FILE = Path("../shared/data/questions/zh_questions.txt")
"""Default location of the real-question file, relative to the repository root."""

CHUNK_ROWS = 4096
"""Rows per cached embedding chunk."""

ENCODE_BATCH = 64
"""Questions per encoder call (the preset's light engine gives each the vector it gets alone,
in a batch of any size)."""


def find_questions_file(path: Path | None = None) -> Path | None:
    """The real-question file: ``path`` if given, else :data:`QUESTIONS_FILE` relative to the
    current directory or to the repository this package sits in; ``None`` when absent."""
    if path is not None:
        return path if path.is_file() else None
    candidates = [QUESTIONS_FILE, Path(__file__).resolve().parents[3] / QUESTIONS_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def load_questions(path: Path) -> list[str]:
    """The non-empty lines of ``path``, stripped, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def cache_folder(cache_dir: Path, model: str, questions: list[str]) -> Path:
    digest = hashlib.sha256("\n".join(questions).encode("utf-8")).hexdigest()[:12]
    return cache_dir / f"{model}-{len(questions)}-{digest}"


def cached_rows(cache_dir: Path, model: str, questions: list[str]) -> int:
    """How many leading questions already have cached embeddings."""
    folder = cache_folder(cache_dir, model, questions)
    return sum(np.load(p, mmap_mode="r").shape[0] for p in sorted(folder.glob("chunk-*.npy")))


def embed_questions(
    questions: list[str],
    cache_dir: Path,
    *,
    model: str = "e5-small",
    limit: int | None = None,
    encode_missing: bool = True,
) -> np.ndarray:
    """Query embeddings of ``questions[:limit]``, float32 ``(n, dim)``, unit rows.

    Chunks already in ``cache_dir`` are loaded; missing ones are encoded with ``model``'s
    query encoder (``walletfaq.encoders.presets.resolve_encoder``) in batches of
    :data:`ENCODE_BATCH`
    and saved as float16 ``.npy`` files (written to a temporary name, then renamed). With
    ``encode_missing=False`` only the cached chunks are returned, in file order (possibly
    fewer rows than asked for, and not necessarily the leading ones).
    """
    from walletfaq.encoders.presets import resolve_encoder

    n = len(questions) if limit is None else min(limit, len(questions))
    folder = cache_folder(cache_dir, model, questions)
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[np.ndarray] = []
    encoder = None
    for start in range(0, n, CHUNK_ROWS):
        path = chunk_path(folder, start)
        if path.is_file():
            parts.append(np.load(path).astype(np.float32))
            continue
        if not encode_missing:
            continue
        if encoder is None:
            encoder = resolve_encoder(model)
            logger.info("embedding questions %d..%d into %s", start, n, folder)
        chunk = encode_chunk(encoder, questions, folder, start)
        parts.append(chunk.astype(np.float32))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.concatenate(parts)[:n]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def encode_chunk(encoder: Any, questions: list[str], folder: Path, start: int) -> np.ndarray:
    """Encode ``questions[start : start + CHUNK_ROWS]`` and save them as ``folder``'s chunk
    file (float16, atomically); returns the float16 rows."""
    from tqdm.auto import tqdm

    stop = min(start + CHUNK_ROWS, len(questions))
    encode = getattr(encoder, "encode_queries_bulk", encoder.encode_queries)  # every core
    rows = []
    for i in tqdm(range(start, stop, ENCODE_BATCH), desc=f"embed {start}", leave=False):
        rows.append(encode(questions[i : min(i + ENCODE_BATCH, stop)]))
    chunk = np.concatenate(rows).astype(np.float16)
    path = chunk_path(folder, start)
    tmp = path.with_name(path.stem + ".part.npy")
    np.save(tmp, chunk)
    tmp.replace(path)
    return chunk


def chunk_path(folder: Path, start: int) -> Path:
    """The cache file holding the chunk that starts at row ``start``."""
    return folder / f"chunk-{start:07d}.npy"


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``benchmarks/results/tmp`` of the repository this package
    sits in (a development checkout), else of the current directory. Never committed."""
    repo = Path(__file__).resolve().parents[3]
    if (repo / "benchmarks").is_dir():
        return repo / "benchmarks" / "results" / "tmp"
    return Path("benchmarks") / "results" / "tmp"
