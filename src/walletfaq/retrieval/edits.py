"""Live edits: the state of an edited corpus, embedding only the entries that changed.

:class:`~walletfaq.retrieval.retriever.FAQRetriever`'s ``add``/``update``/``remove`` validate
the edit, call :func:`edited_state` under their edit lock and swap the result in with one
assignment (readers see the old or the new corpus, never a mix).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

import walletfaq.index.vector_index as vector_index
from walletfaq.data.contacts import ContactDirectory
from walletfaq.data.corpus import Corpus, FAQEntry, index_texts
from walletfaq.data.ids import check_id
from walletfaq.encoders.protocol import Encoder
from walletfaq.errors import CorpusError
from walletfaq.index.vector_index import IndexSpec
from walletfaq.retrieval.embedding import QuestionEncoding, embed_corpus_texts
from walletfaq.retrieval.state import RetrieverState

logger = logging.getLogger(__name__)


def validated_entries(entries: Iterable[FAQEntry | Mapping[str, object]]) -> tuple[FAQEntry, ...]:
    """The entries of an edit, validated as a corpus file's are (dicts or :class:`FAQEntry`).

    Raises:
        CorpusError: not a list of entries, or an entry is invalid.
    """
    if isinstance(entries, (str, bytes, Mapping, FAQEntry)) or not isinstance(entries, Iterable):
        raise CorpusError(
            f"expected a list of entries (FAQEntry or dicts), got {type(entries).__name__}"
        )
    return Corpus.from_entries(
        [e if isinstance(e, FAQEntry) else dict(e) for e in entries], source="<edit>"
    ).entries


def validated_ids(ids: str | Iterable[str]) -> list[str]:
    """The ids of a removal (one id or several), each checked against the id grammar of
    :mod:`walletfaq.data.ids`.

    Raises:
        CorpusError: an id outside the grammar (the message names the rule).
    """
    wanted = [ids] if isinstance(ids, str) else list(ids)
    return [check_id(entry_id) for entry_id in wanted]


def rows_by_entry(vectors: np.ndarray, row_entry: np.ndarray, n_entries: int) -> list[np.ndarray]:
    """The rows of each entry, in entry order (:func:`index_texts` keeps an entry's rows
    contiguous and in entry order, so each is one slice)."""
    bounds = np.searchsorted(row_entry, np.arange(n_entries + 1))
    return [vectors[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


def edited_state(
    state: RetrieverState,
    entries: Sequence[FAQEntry],
    *,
    encoder: Encoder,
    index_spec: IndexSpec,
    index_answers: bool,
    question_encoding: QuestionEncoding,
    contacts: ContactDirectory | None,
) -> RetrieverState:
    """The state of ``entries`` after ``state``: the vectors of unchanged entries are reused,
    the texts of new or changed entries are embedded, and the index is rebuilt from them (the
    result equals a full rebuild of ``entries``). ``version`` grows by one."""
    corpus = Corpus.from_entries(entries, source=state.corpus.source)
    vectors = state.index.reconstruct_n(0, state.index.ntotal)
    old_rows = {
        entry.id: (entry, block)
        for entry, block in zip(
            state.corpus,
            rows_by_entry(vectors, state.row_entry, len(state.corpus)),
            strict=True,
        )
    }
    to_embed = [entry for entry in corpus if old_rows.get(entry.id, (None,))[0] != entry]
    texts, owners = index_texts(to_embed, index_answers)
    fresh = (
        embed_corpus_texts(encoder, texts, question_encoding)
        if texts
        else np.zeros((0, state.index.d), dtype=np.float32)
    )
    embedded = {
        entry.id: block
        for entry, block in zip(
            to_embed,
            rows_by_entry(fresh, np.asarray(owners, dtype=np.int64), len(to_embed)),
            strict=True,
        )
    }
    rows = [
        embedded[entry.id] if entry.id in embedded else old_rows[entry.id][1] for entry in corpus
    ]
    index = vector_index.build_index(np.vstack(rows), index_spec)
    logger.info("applied an edit: %d entries, %d texts embedded", len(corpus), len(texts))
    return RetrieverState.of(corpus, index, index_answers, contacts, version=state.version + 1)
