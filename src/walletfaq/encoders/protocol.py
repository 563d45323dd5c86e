"""The :class:`Encoder` protocol: what every layer above needs from an embedding model.

An encoder is anything with this shape: the sentence-transformers wrapper, the presets, a
tuned encoder, or a test stand-in. :func:`as_unit_rows` is the one normalisation of vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """What the retriever needs from an embedding model.

    ``encode_queries`` and ``encode_documents`` take a sequence of ``n`` strings and return a
    C-contiguous ``float32`` array of shape ``(n, dim)`` (rows are normalised to unit L2 norm
    by the retriever in any case). ``encode_queries`` encodes user questions and must give a
    text the same vector whatever else is in the call (one question, one ranking: alone, in a
    batch, in an evaluation). ``fingerprint`` identifies the weights: two encoders with the
    same fingerprint produce the same vectors, so a saved index can be reused with either.

    Optionally, ``encode_queries_bulk(texts)`` encodes many FAQ texts with the query prompt
    for building the index, batched for throughput; without it ``encode_queries`` is used.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


def as_unit_rows(vectors: object) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 2-D array with unit-norm rows."""
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)
