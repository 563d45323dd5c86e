"""The index rows the doctor examines and their leave-one-out neighbours.

The rows are the retriever's own index rows (the vectors search compares questions with);
similarities are their cosines. For each question or alt-question row, :func:`_nearest` finds
its closest other text of the same entry and its closest text of any other entry that search
would allow: a generated hotline entry (``hotline-<id>``) is allowed only for a text that names
its wallet, the gate search applies (:func:`_blocked_entries`). Computed in blocks of rows, so
memory stays bounded on a large corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from walletfaq.data.normalize import clean_text

if TYPE_CHECKING:
    from walletfaq.retrieval.retriever import FAQRetriever

_BLOCK_CELLS = 4_000_000
"""Similarity rows are computed in blocks of about this many cells (16 MB of float32)."""


@dataclass(frozen=True)
class _Rows:
    """The question rows of the index: vectors, texts, owners, and the gate per row."""

    vectors: np.ndarray  # (n_index_rows, dim), every index row
    texts: list[str]  # per index row
    owner: np.ndarray  # (n_index_rows,) entry position
    starts: np.ndarray  # (n_entries,) first index row of each entry
    probes: np.ndarray  # index rows that are question texts (not question+answer rows)


@dataclass(frozen=True)
class _Nearest:
    """Leave-one-out neighbours of each probe row."""

    own: np.ndarray  # best cosine to another row of the same entry (-inf: none)
    other: np.ndarray  # best cosine to a row of another (allowed) entry
    other_entry: np.ndarray  # that entry's position (-1: none)
    other_row: np.ndarray  # that row


def _rows(retriever: FAQRetriever) -> _Rows:
    from walletfaq.data.corpus import index_texts

    texts, owners = index_texts(retriever.corpus.entries, retriever.index_answers)
    index = retriever.index
    vectors = np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
    owner = np.asarray(owners, dtype=np.int64)
    starts = np.searchsorted(owner, np.arange(len(retriever.corpus)))
    is_question = np.ones(len(texts), dtype=bool)
    if retriever.index_answers:  # each entry's last row is its question + answer text
        is_question[np.r_[starts[1:], len(texts)] - 1] = False
    return _Rows(vectors, texts, owner, starts, np.flatnonzero(is_question))


def _generated_hotlines(retriever: FAQRetriever) -> dict[int, str]:
    """Entry position -> contact id, for hotline entries generated from the contacts."""
    if retriever.contacts is None:
        return {}
    position = {entry_id: i for i, entry_id in enumerate(retriever.corpus.ids)}
    return {
        position[contact.entry_id]: contact.id
        for contact in retriever.contacts
        if contact.entry_id in position
    }


def _blocked_entries(
    retriever: FAQRetriever, rows: _Rows, generated: dict[int, str]
) -> dict[int, list[int]]:
    """Probe row -> hotline entries search would not allow for it (as asked verbatim)."""
    if not generated or retriever.contacts is None:
        return {}
    blocked = {}
    for row in rows.probes.tolist():
        named = retriever.contacts.mentioned(retriever.normalizer(clean_text(rows.texts[row])))
        closed = [pos for pos, contact_id in generated.items() if contact_id not in named]
        if closed:
            blocked[row] = closed
    return blocked


def _nearest(rows: _Rows, blocked: dict[int, list[int]], n_entries: int) -> _Nearest:
    """For each probe row, its best cosine within its own entry (itself excluded) and the best
    row of any other entry that search would allow, in blocks of rows."""
    n = len(rows.probes)
    own = np.full(n, -np.inf, dtype=np.float32)
    other = np.full(n, -np.inf, dtype=np.float32)
    other_entry = np.full(n, -1, dtype=np.int64)
    other_row = np.full(n, -1, dtype=np.int64)
    ends = np.r_[rows.starts[1:], len(rows.owner)]
    block = max(1, _BLOCK_CELLS // max(1, len(rows.owner)))
    for first in range(0, n, block):
        probe_rows = rows.probes[first : first + block]
        sims = rows.vectors[probe_rows] @ rows.vectors.T
        sims[np.arange(len(probe_rows)), probe_rows] = -np.inf  # leave the text itself out
        per_entry = np.maximum.reduceat(sims, rows.starts, axis=1)
        for i, row in enumerate(probe_rows.tolist()):
            entry = int(rows.owner[row])
            own[first + i] = per_entry[i, entry]
            per_entry[i, entry] = -np.inf
            for closed in blocked.get(row, ()):
                per_entry[i, closed] = -np.inf
            best = int(np.argmax(per_entry[i])) if n_entries > 1 else -1
            if best >= 0 and np.isfinite(per_entry[i, best]):
                other[first + i] = per_entry[i, best]
                other_entry[first + i] = best
                start, end = int(rows.starts[best]), int(ends[best])
                other_row[first + i] = start + int(np.argmax(sims[i, start:end]))
    return _Nearest(own, other, other_entry, other_row)


def _centroids(rows: _Rows, n_entries: int) -> np.ndarray:
    sums = np.zeros((n_entries, rows.vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, rows.owner[rows.probes], rows.vectors[rows.probes])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (sums / norms).astype(np.float32)
