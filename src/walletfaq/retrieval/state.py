"""What a search reads, as one immutable snapshot: the corpus, its index and the per-row and
per-entry tables derived from them, with the query cache that belongs to that snapshot."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

import walletfaq.index.vector_index as vector_index
from walletfaq.data.contacts import ContactDirectory
from walletfaq.data.corpus import Corpus, index_texts
from walletfaq.errors import IndexMismatchError, QueryError
from walletfaq.index.search import Hit, best_per_entry, to_hits

if TYPE_CHECKING:
    import faiss


@dataclass
class RetrieverState:
    """Everything a search reads, built together and replaced together (copy on write): a
    reader takes one snapshot, an edit builds a new state and swaps it in with one
    assignment, so no reader ever sees half of an edit."""

    corpus: Corpus
    index: faiss.Index
    row_text: list[str]
    row_entry: np.ndarray
    categories: dict[str, int]
    entry_category: np.ndarray
    gated: dict[int, str]
    version: int
    cache: OrderedDict[tuple[str, int, str | None], list[Hit]] = field(default_factory=OrderedDict)

    @classmethod
    def of(
        cls,
        corpus: Corpus,
        index: faiss.Index,
        index_answers: bool,
        contacts: ContactDirectory | None,
        version: int,
    ) -> RetrieverState:
        texts, owners = index_texts(corpus.entries, index_answers)
        if index.ntotal != len(texts):
            raise IndexMismatchError(
                f"the index has {index.ntotal} vectors but the corpus gives {len(texts)} texts; "
                "rebuild the index from this corpus"
            )
        categories = {category: i for i, category in enumerate(corpus.categories)}
        return cls(
            corpus=corpus,
            index=index,
            row_text=texts,
            row_entry=np.asarray(owners, dtype=np.int64),
            categories=categories,
            entry_category=np.asarray(
                [categories[entry.category] for entry in corpus], dtype=np.int64
            ),
            gated=contact_gates(corpus, contacts),
            version=version,
        )

    def category_mask(self, category: str | None) -> np.ndarray | None:
        """Boolean mask over entries of ``category`` (``None``: no filter)."""
        if category is None:
            return None
        if not isinstance(category, str):
            raise QueryError(
                f"category must be a string or None, got {type(category).__name__}; choose one "
                f"of {list(self.categories)}"
            )
        if category not in self.categories:
            raise QueryError(
                f"unknown category {category!r}; choose one of {list(self.categories)}"
            )
        return self.entry_category == self.categories[category]

    def gate(self, named: set[str], mask: np.ndarray | None) -> np.ndarray | None:
        """Mask out hotline entries of wallets not in ``named``."""
        closed = [pos for pos, contact_id in self.gated.items() if contact_id not in named]
        if not closed:
            return mask
        allowed = np.ones(len(self.corpus), dtype=bool) if mask is None else mask.copy()
        allowed[closed] = False
        return allowed

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        category_mask: np.ndarray | None,
        contacts: ContactDirectory | None,
        texts: Sequence[str] | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best entries for each row of ``vectors`` (unit rows), best first, within
        ``category_mask``; with ``texts`` and ``contacts``, a hotline entry only for questions
        that name its wallet. Searches deeper until ``k`` entries are found or the index is
        exhausted."""
        total = self.index.ntotal
        fetch = min(total, max(4 * k, 32))
        scores, rows = vector_index.search(self.index, vectors, fetch)
        out = []
        for i in range(len(vectors)):
            allowed = category_mask
            if texts is not None and self.gated and contacts is not None:
                allowed = self.gate(contacts.mentioned(texts[i]), category_mask)
            picked = best_per_entry(scores[i], rows[i], self.row_entry, k, allowed)
            want = min(k, int(allowed.sum()) if allowed is not None else len(self.corpus))
            depth = fetch
            while len(picked) < want and depth < total:
                depth = min(total, depth * 4)
                more_scores, more_rows = vector_index.search(self.index, vectors[i], depth)
                picked = best_per_entry(more_scores[0], more_rows[0], self.row_entry, k, allowed)
            out.append(to_hits(picked, self.corpus.entries, self.row_text))
        return out


def contact_gates(corpus: Corpus, contacts: ContactDirectory | None) -> dict[int, str]:
    """Entry position -> contact id, for the hotline entries generated from ``contacts``."""
    if contacts is None:
        return {}
    position = {entry.id: i for i, entry in enumerate(corpus)}
    return {position[c.entry_id]: c.id for c in contacts if c.entry_id in position}
