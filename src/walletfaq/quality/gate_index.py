"""The retrievers the quality gate compares, and the user-cache files that keep it fast.

- :func:`published_retriever`: the published content's retriever, from the user cache when
  that content was indexed before (:meth:`FAQRetriever.from_corpus` caches by content, model
  and settings); when it was not (an edit was applied outside the gate), it is made from the
  last index the gate built with this model, embedding only the texts new to it, and only
  without such an index is the whole content embedded.
- :func:`edited_retriever`: the candidate, made from the published retriever as a live edit
  (only new texts embedded) and saved in the cache where ``from_corpus`` looks for its
  content, so that once it is published the next gate finds it.
- :func:`query_vectors`: the gate queries' vectors, encoded once for both sides and kept in
  the cache (keyed by the model fingerprint and the query texts).

Files: ``<cache>/indexes/<key>`` (the indexes, shared with ``from_corpus``),
``<cache>/gate/queries-<digest>.npy`` (query vectors, ``np.save`` without pickle) and
``<cache>/gate/last-<digest>.txt`` (the key of the last index the gate built with a model).
A damaged or missing file is rebuilt; a cache that cannot be written only warns. A refused
candidate's index stays in the cache like any index ``from_corpus`` built (a few MB for the
bundled corpus); the cache folder is the user's to clear.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import walletfaq.retrieval.retriever as retriever_module
from walletfaq._progress import progress_bar
from walletfaq.data.atomic import write_text_atomic
from walletfaq.data.contacts import ContactDirectory, corpus_with_contacts
from walletfaq.data.corpus import Corpus
from walletfaq.encoders.presets import cache_dir
from walletfaq.encoders.protocol import as_unit_rows
from walletfaq.errors import WalletFAQError
from walletfaq.index.vector_index import IndexSpec
from walletfaq.retrieval.edits import edited_state
from walletfaq.retrieval.embedding import cache_key, cached_vectors, text_digest
from walletfaq.retrieval.retriever import FAQRetriever
from walletfaq.retrieval.state import RetrieverState

if TYPE_CHECKING:
    from walletfaq.encoders.protocol import Encoder

logger = logging.getLogger(__name__)

_BATCH = 64  # gate queries encoded at once
_SPEC = IndexSpec(kind="flat")  # from_corpus's default: what a replica builds


def published_retriever(
    current: Corpus,
    *,
    model: str | Path | Encoder | None,
    contacts: ContactDirectory | None,
    cache: bool,
) -> FAQRetriever:
    """The retriever over ``current`` (plus the hotline entries of ``contacts``), built as
    :meth:`FAQRetriever.from_corpus` builds it; from the cache or the last gated index when
    ``cache`` (module doc)."""
    encoder = retriever_module.resolve_encoder(model)  # the command line's model names
    if cache:
        full, _ = corpus_with_contacts(current, contacts)
        if not _location(encoder, full).exists():
            last = _last_gated(encoder)
            if last is not None:
                logger.info(
                    "the published content is not indexed in the cache: editing the last "
                    "index the gate built (only new texts are embedded)"
                )
                return edited_retriever(last, full, contacts=contacts, cache=True)
    return FAQRetriever.from_corpus(current, model=encoder, contacts=contacts, cache=cache)


def edited_retriever(
    current: FAQRetriever, full: Corpus, *, contacts: ContactDirectory | None, cache: bool
) -> FAQRetriever:
    """A retriever over ``full`` (the hotline entries of ``contacts`` included) made from
    ``current``'s index:
    only the texts new to it are embedded (:func:`~walletfaq.retrieval.edits.edited_state`, a
    live edit; the result equals a full build of ``full``, in its order). With ``cache`` it
    is saved where ``from_corpus`` looks for that content, and remembered as the last index
    the gate built with this model."""
    state = RetrieverState.of(
        current.corpus, current.index, current.index_answers, current.contacts, current.version
    )
    edited = edited_state(
        state,
        full.entries,
        encoder=current.encoder,
        index_spec=current.index_spec,
        index_answers=current.index_answers,
        question_encoding=current.question_encoding,
        contacts=contacts,
    )
    candidate = FAQRetriever(
        edited.corpus,
        current.encoder,
        edited.index,
        index_spec=current.index_spec,
        index_answers=current.index_answers,
        question_encoding=current.question_encoding,
        contacts=contacts,
    )
    if cache:
        location = _location(current.encoder, edited.corpus)
        try:
            if not location.exists():
                candidate.save(location)
            write_text_atomic(_last_file(current.encoder), location.name)
        except (WalletFAQError, OSError) as exc:
            logger.warning("cannot cache the candidate's index in %s (%s)", location, exc)
    return candidate


def query_vectors(
    encoder: Encoder, texts: Sequence[str], *, cache: bool, progress: bool
) -> np.ndarray:
    """The unit query vectors of ``texts`` (normalised questions), one row each; from the
    cache when the same texts were encoded by the same model before."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        chunks = []
        bar = progress_bar(
            total=len(texts), desc="gate queries", unit="query", leave=False, disable=not progress
        )
        for start in range(0, len(texts), _BATCH):
            chunk = list(texts[start : start + _BATCH])
            chunks.append(as_unit_rows(encoder.encode_queries(chunk)))
            bar.update(len(chunk))
        bar.close()
        return np.concatenate(chunks)

    if not cache:
        return encode(texts).astype(np.float32)
    path = cache_dir() / "gate" / f"queries-{text_digest(encoder.fingerprint, *texts)}.npy"
    return cached_vectors(path, encoder.dim, texts, encode)


def _location(encoder: Encoder, full: Corpus) -> Path:
    """Where :meth:`FAQRetriever.from_corpus` caches the index of ``full`` (default settings)."""
    return cache_dir() / "indexes" / cache_key(encoder, full, _SPEC, False, "query")


def _last_file(encoder: Encoder) -> Path:
    return cache_dir() / "gate" / f"last-{text_digest(encoder.fingerprint)}.txt"


def _last_gated(encoder: Encoder) -> FAQRetriever | None:
    """The last index the gate built with ``encoder``, if it is still in the cache and loads."""
    try:
        name = _last_file(encoder).read_text(encoding="utf-8").strip()
        if not name or "/" in name or name.startswith("."):
            return None
        return FAQRetriever.load(cache_dir() / "indexes" / name, model=encoder)
    except (WalletFAQError, OSError, UnicodeDecodeError) as exc:
        logger.info("no usable last gated index (%s); embedding the published content", exc)
        return None
