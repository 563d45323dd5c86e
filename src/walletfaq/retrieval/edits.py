"""Live edits: the state of an edited corpus, embedding only the texts that are new to the index.

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
    """The state of ``entries`` after ``state``: every index text already in ``state`` keeps
    its vector, only texts that are new to the index are embedded, and the index is rebuilt
    from them (the result equals a full rebuild of ``entries``). ``version`` grows by one.

    A row is reused by its text (its vector depends on nothing else): an edit of an entry's
    answer embeds nothing when answers are not indexed (``index_answers=False``), and only
    that entry's question + answer row when they are; a new alt question embeds that text.
    """
    corpus = Corpus.from_entries(entries, source=state.corpus.source)
    texts, _ = index_texts(corpus.entries, index_answers)
    known = {text: row for row, text in enumerate(state.row_text)}
    missing = list(dict.fromkeys(text for text in texts if text not in known))
    fresh = (
        embed_corpus_texts(encoder, missing, question_encoding)
        if missing
        else np.zeros((0, state.index.d), dtype=np.float32)
    )
    new_row = {text: row for row, text in enumerate(missing)}
    old = state.index.reconstruct_n(0, state.index.ntotal)
    vectors = np.stack(
        [fresh[new_row[text]] if text in new_row else old[known[text]] for text in texts]
    )
    index = vector_index.build_index(vectors, index_spec)
    logger.info("applied an edit: %d entries, %d texts embedded", len(corpus), len(missing))
    return RetrieverState.of(corpus, index, index_answers, contacts, version=state.version + 1)
