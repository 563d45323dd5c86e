"""The quality gate of a publish: does the staged content answer the gate queries as well as
the published content does?

:func:`check_gate` builds a retriever over the published content (``current``) and one over
the content a publish would produce (``candidate``, e.g.
:meth:`Store.staged_corpus <walletfaq.store.Store.staged_corpus>`), with the same model and
index settings, asks both the gate queries (labelled queries, the bundled evaluation set by
default) and refuses the candidate when

- Recall@1 or MRR@10 falls by more than ``tolerance`` points (percentage points: 0.5 =
  half a point, i.e. 0.005 on the 0-1 scale), or
- an entry that answered at least one gate query (it was the query's gold entry and ranked
  first) answers none of them any more: a lost entry. An entry deleted, or rewritten so that
  its questions go to another entry, is stopped even when the averages barely move.

Which gate queries count (the rules, tested in ``tests/test_publish_gate.py``):

- Out-of-domain queries (``gold: []``) have nothing to rank: not gated.
- A query is gated when at least one of its gold entries is in the published content; its
  gold is those entries. A query whose gold entries are all unpublished is skipped (counted
  in :attr:`GateResult.n_skipped`, its ids in :attr:`GateResult.unpublished_gold`): the gate
  compares the candidate with what is served, it cannot hold it to entries nobody serves.
- A gated query whose gold entries are all gone from the candidate (deleted, or renamed) is a
  miss there (0 for every metric, no rank) and, if it was answered before, a broken query.

Contacts: the published content is the store's entries. A service that adds the hotline
entries of a contacts directory (``walletfaq serve ... --contacts FILE``) serves those too, and
so should the gate see them: pass the same ``contacts``. By default (``None``) there are none,
as a replica of the store has none unless it is given a contacts file; then the bundled
evaluation set's hotline queries (gold ``hotline-*``) are skipped.

Content checks: both corpora are validated as a corpus file is (ids, text limits, unique ids,
no clash with a hotline entry's id). The store already refuses such content when it is staged
(:meth:`Store.stage <walletfaq.store.Store.stage>` validates every entry); the gate checks
again because it takes any :class:`~walletfaq.data.corpus.Corpus`.

Cost (:mod:`~walletfaq.quality.gate_index`): the published content's index comes from the user
cache (or is made from the last index the gate built, embedding only new texts); the
candidate is that index with only the texts new to it embedded (as a live edit), saved in the
cache so that once published the next gate finds it; each gate query is encoded once for both
sides and its vector kept in the cache. With the caches warm a small edit costs loading the
model and the index and embedding the edit's new texts (``benchmarks/README.md``, "The
quality gate").

The metrics are those of :func:`~walletfaq.quality.evaluation.evaluate` (Recall@1: a gold
entry first; MRR@10: 1/rank of the first gold entry in the top 10), computed here from the
rankings ``ask`` gives (a test checks them against ``evaluate``). Beyond retrieval, the gate
reads what an added or changed entry says only for contact details
(:mod:`~walletfaq.quality.gate_content`): a phone number, web address or account number that
neither the published content nor the contacts directory gives refuses the publish (the
planted "call this number" / "transfer to this account" edit). Otherwise an answer rewritten
into nonsense under an unchanged question passes it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletfaq.data.contacts import ContactDirectory, as_contacts, corpus_with_contacts
from walletfaq.data.corpus import Corpus
from walletfaq.data.queries import LabelledQuery, as_labelled
from walletfaq.errors import CorpusError, WalletFAQError
from walletfaq.quality.evaluation.results import QueryResult
from walletfaq.quality.gate_content import new_contact_details
from walletfaq.quality.gate_index import edited_retriever, published_retriever, query_vectors
from walletfaq.quality.gate_report import GateResult, QueryChange

if TYPE_CHECKING:
    from walletfaq.encoders.protocol import Encoder
    from walletfaq.index.search import Hit
    from walletfaq.retrieval.retriever import FAQRetriever

__all__ = [
    "DEFAULT_TOLERANCE",
    "GATED_METRICS",
    "GateResult",
    "QueryChange",
    "check_gate",
    "check_tolerance",
]

DEFAULT_TOLERANCE = 0.5
"""The largest fall of a gated metric that passes, in points (0.5 = 0.005 on the 0-1 scale)."""

GATED_METRICS = ("recall@1", "mrr@10")
"""The metrics the gate compares (:mod:`walletfaq.quality.evaluation.metrics` names)."""

_DEPTH = 10  # hits fetched per query: the deepest cutoff of GATED_METRICS


def check_tolerance(tolerance: object) -> float:
    """``tolerance`` as a float: a finite number of points, at least 0.

    Raises:
        WalletFAQError: anything else (a bool, a string, NaN, a negative number).
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise WalletFAQError(
            f"tolerance must be a finite number of points, at least 0 (e.g. 0.5 = half a "
            f"point of Recall@1 or MRR@10), got {tolerance!r}"
        )
    return float(tolerance)


def check_gate(
    current: Corpus,
    candidate: Corpus,
    *,
    model: str | Path | Encoder | None = None,
    gate_queries: str | Path | Iterable[Mapping[str, Any]] | Sequence[LabelledQuery] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    contacts: str | Path | ContactDirectory | None = None,
    cache: bool = True,
    progress: bool = False,
) -> GateResult:
    """Compare ``candidate`` with ``current`` on the gate queries (module doc: the rules).

    Args:
        current: the published content (e.g. ``store.entries()``).
        candidate: the content a publish would produce (e.g. ``store.staged_corpus()``).
        model: the model both are embedded with: a preset name (default ``"e5-small"``), a
            sentence-transformers name or path, or an :class:`~walletfaq.encoders.Encoder`.
        gate_queries: labelled queries (a JSONL path, dicts ``{"query", "gold"[, "style"]}``
            or :class:`LabelledQuery` objects); ``None`` = the bundled evaluation set.
        tolerance: the largest fall of Recall@1 or MRR@10 that passes, in points.
        contacts: a contacts JSON file or directory whose hotline entries the service adds to
            the store's entries (``None``: none).
        cache: load the published content's index and the gate queries' vectors from the user
            cache, and save them and the candidate's index there.
        progress: show progress bars while the queries are asked.

    Returns:
        A :class:`GateResult`: ``passed``, the metrics before and after, the broken queries
        and the lost entries.

    Raises:
        CorpusError: malformed gate queries (file:line and field named), or a corpus that is
            not valid (an id, a text limit, an id twice or taken by a hotline entry).
        WalletFAQError: a bad ``tolerance``; no gate query has a gold entry in ``current``.
    """
    started = time.perf_counter()
    tolerance = check_tolerance(tolerance)
    labelled = as_labelled(gate_queries)
    directory = as_contacts(contacts)
    current, current_full = _valid(current, directory, "the published content")
    candidate, candidate_full = _valid(candidate, directory, "the candidate content")
    published = set(current_full.ids)
    gated = [
        LabelledQuery(q.query, tuple(g for g in q.gold if g in published), q.style)
        for q in labelled
        if any(g in published for g in q.gold)
    ]
    unpublished = sorted({g for q in labelled for g in q.gold if g not in published})
    skipped = sum(1 for q in labelled if q.gold and not any(g in published for g in q.gold))
    if not gated:
        raise WalletFAQError(
            f"none of the {len(labelled)} gate queries has a gold entry in the published "
            f"content ({current.source}); gold ids not published: {unpublished[:5]}; use gate "
            "queries labelled with this store's entry ids (or pass the service's contacts)"
        )
    before_retriever = published_retriever(current, model=model, contacts=directory, cache=cache)
    after_retriever = edited_retriever(
        before_retriever, candidate_full, contacts=directory, cache=cache
    )
    before, after = _rankings(
        before_retriever, after_retriever, gated, cache=cache, progress=progress
    )
    old = {e.id: e for e in current.entries}
    candidate_ids = set(candidate.ids)
    added = tuple(i for i in candidate.ids if i not in old)
    changed = tuple(e.id for e in candidate.entries if e.id in old and old[e.id] != e)
    return GateResult.of(
        gated,
        before,
        after,
        metrics=GATED_METRICS,
        tolerance=tolerance,
        model=before_retriever.encoder.name,
        n_out_of_domain=sum(1 for q in labelled if not q.gold),
        n_skipped=skipped,
        unpublished_gold=tuple(unpublished),
        added=added,
        removed=tuple(i for i in current.ids if i not in candidate_ids),
        changed=changed,
        seconds=time.perf_counter() - started,
        new_details=new_contact_details(current_full, candidate, entries=added + changed),
    )


def _valid(corpus: Corpus, directory: ContactDirectory | None, what: str) -> tuple[Corpus, Corpus]:
    """``corpus`` validated as a corpus file is, and the same with the hotline entries of
    ``directory`` appended (what a service built with those contacts indexes)."""
    if not isinstance(corpus, Corpus):
        raise WalletFAQError(f"{what} must be a Corpus, got {type(corpus).__name__}")
    if not len(corpus):
        raise CorpusError(f"{what} has no entries; a published store keeps at least one")
    checked = Corpus.from_entries(corpus.entries, source=corpus.source)
    full, _ = corpus_with_contacts(checked, directory)
    return checked, full


def _rankings(
    before: FAQRetriever,
    after: FAQRetriever,
    gated: Sequence[LabelledQuery],
    *,
    cache: bool,
    progress: bool,
) -> tuple[list[QueryResult], list[QueryResult]]:
    """The gated queries ranked by both retrievers, as :meth:`FAQRetriever.ask` ranks them
    (cleaned, normalised, hotline entries gated by the wallet named), each query encoded once
    for both (they share the encoder)."""
    from walletfaq.retrieval.questions import clean_questions

    texts = [before.normalizer(t) for t in clean_questions([q.query for q in gated])]
    vectors = query_vectors(before.encoder, texts, cache=cache, progress=progress)
    return (
        _results(before, gated, before.search_vectors(vectors, _DEPTH, texts=texts)),
        _results(after, gated, after.search_vectors(vectors, _DEPTH, texts=texts)),
    )


def _results(
    retriever: FAQRetriever, gated: Sequence[LabelledQuery], rankings: Sequence[Sequence[Hit]]
) -> list[QueryResult]:
    """One :class:`QueryResult` per gated query, with its Recall@1 and MRR@10 (the
    definitions of :mod:`walletfaq.quality.evaluation.metrics`: a gold entry first; 1/rank of
    the first gold entry in the top 10). A gold entry missing from ``retriever``'s corpus is
    no gold there: a query left with none has no rank and scores 0."""
    categories = {e.id: e.category for e in retriever.corpus.entries}
    out = []
    for query, hits in zip(gated, rankings, strict=True):
        gold = tuple(g for g in query.gold if g in categories)
        ranked = tuple(h.id for h in hits)
        rank = next((i for i, h in enumerate(ranked, start=1) if h in gold), None)
        out.append(
            QueryResult(
                query.query,
                gold,
                query.style,
                categories[gold[0]] if gold else "gold removed",
                ranked,
                tuple(float(h.score) for h in hits),
                rank,
                {
                    "recall@1": 1.0 if rank == 1 else 0.0,
                    "mrr@10": 1.0 / rank if rank is not None and rank <= _DEPTH else 0.0,
                },
            )
        )
    return out
