"""From corpus rows to vectors: how FAQ texts are embedded for the index, the key under which
a built index is cached, and vectors cached in a file (:func:`cached_vectors`)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

import walletfaq.index.directory as index_directory
from walletfaq.data.atomic import write_bytes_atomic
from walletfaq.data.corpus import Corpus
from walletfaq.data.normalize import clean_text
from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.errors import WalletFAQError
from walletfaq.index.vector_index import IndexSpec

logger = logging.getLogger(__name__)

QuestionEncoding = Literal["query", "document", "both"]
"""How FAQ question rows are embedded: ``"query"`` with the model's query prompt (matching a
user's question to FAQ questions is symmetric, which is how e5's authors say to use its
"query: " prompt; the default, it measured best: benchmarks/README.md), ``"document"`` with
its document prompt (the usual asymmetric question-to-passage set-up), or ``"both"``: the
normalised mean of the two. For models without prompts the three are the same."""


def embed_corpus_texts(
    encoder: Encoder, texts: Sequence[str], question_encoding: QuestionEncoding = "query"
) -> np.ndarray:
    """Embed FAQ texts for the index (cleaned like questions: :func:`clean_text`), question
    rows per ``question_encoding``; returns unit-norm rows."""
    texts = [clean_text(text) for text in texts]
    queries = getattr(encoder, "encode_queries_bulk", encoder.encode_queries)
    if question_encoding == "document":
        return as_unit_rows(encoder.encode_documents(texts))
    if question_encoding == "query":
        return as_unit_rows(queries(texts))
    if question_encoding == "both":
        return as_unit_rows(
            as_unit_rows(queries(texts)) + as_unit_rows(encoder.encode_documents(texts))
        )
    raise WalletFAQError(
        f"question_encoding must be 'both', 'query' or 'document', got {question_encoding!r}"
    )


def cache_key(
    encoder: Encoder, corpus: Corpus, spec: IndexSpec, index_answers: bool, question_encoding: str
) -> str:
    """The user-cache key of an index: model fingerprint, corpus hash, index settings,
    row settings and the saved format (a change to any of them is another index)."""
    key = json.dumps(
        {
            "format": index_directory.FORMAT_VERSION,
            "model": encoder.fingerprint,
            "corpus": corpus.content_hash(),
            "index": spec.to_dict(),
            "answers": index_answers,
            "questions": question_encoding,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def text_digest(*parts: str) -> str:
    """A short SHA-256 hex digest of ``parts`` (each ended by a NUL, so that no two different
    lists of texts share a digest by concatenation): names of cached files."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def cached_vectors(
    path: Path, dim: int, texts: Sequence[str], encode: Callable[[Sequence[str]], np.ndarray]
) -> np.ndarray:
    """The vectors of ``texts`` (one ``dim``-wide float32 row each): read from ``path`` when it
    holds such an array of finite values (``np.save``, nothing unpickled), else ``encode(texts)``
    and saved there atomically (a failed write only warns). The caller puts everything the
    vectors depend on (model fingerprint, texts) in ``path``'s name."""
    try:
        stored = np.load(path, allow_pickle=False)
        if stored.shape == (len(texts), dim) and np.isfinite(stored).all():
            return np.asarray(stored, dtype=np.float32)
    except (OSError, ValueError):
        pass
    vectors = np.asarray(encode(texts), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, vectors, allow_pickle=False)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as exc:
        logger.warning(
            "cannot cache vectors in %s (%s); they are encoded again next time", path, exc
        )
    return vectors
