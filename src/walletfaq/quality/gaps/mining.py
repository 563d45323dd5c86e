"""find_gaps: from logged questions to ranked gap clusters with proposals."""

from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from walletfaq._progress import progress_bar
from walletfaq.encoders.protocol import as_unit_rows
from walletfaq.errors import GapError, QueryError
from walletfaq.quality.gaps.clustering import DEFAULT_CLUSTERING, Clustering, cluster_labels
from walletfaq.quality.gaps.proposals import DEFAULT_BAR_DELTA, DEFAULT_MIN_SHARE, propose
from walletfaq.quality.gaps.report import MAX_REPRESENTATIVES, GapCluster, GapReport
from walletfaq.quality.gaps.traffic import MissReason, TrafficQuestion, miss_reason, read_traffic
from walletfaq.retrieval.questions import clean_question
from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)

DEFAULT_LOW_MARGIN = 0.01
"""An answered question whose second entry scored within this of the first is a miss.

Measured on the bundled evaluation set with e5-small (``benchmarks/gaps.py``): of 663
answered questions, 39 got a wrong entry; a margin below 0.01 catches 27 of them and 60 of
the 624 right ones (0.005: 16 and 27; 0.02: 35 and 160)."""

ENCODE_CHUNK = 256
"""Questions encoded per call (the progress bar advances by chunks)."""


def find_gaps(
    retriever: FAQRetriever,
    questions: Iterable[TrafficQuestion | Mapping[str, object]],
    *,
    since: datetime | None = None,
    min_cluster_size: int | None = None,
    low_margin: float = DEFAULT_LOW_MARGIN,
    bar_delta: float = DEFAULT_BAR_DELTA,
    min_share: float = DEFAULT_MIN_SHARE,
    clustering: Clustering = DEFAULT_CLUSTERING,
) -> GapReport:
    """Cluster the misses among logged ``questions`` and propose an FAQ change for each cluster.

    1. Misses (:func:`~walletfaq.quality.gaps.traffic.miss_reason`): handed off, feedback
       "not helpful", a clarify question, or answered with a margin below ``low_margin``.
       Refused questions are never misses (counted in :attr:`GapReport.refused`).
    2. Each distinct phrasing among the misses (the text as ``ask()`` encodes it: cleaned,
       normalised) is encoded once with ``retriever.encoder.encode_queries`` (unit rows) and
       the phrasings are clustered with HDBSCAN
       (:class:`~walletfaq.quality.gaps.clustering.Clustering`: why each parameter). Density
       is judged on phrasings, not on traffic: a question asked ten times is one point (else
       repeats form clusters of their own and split a topic; measured in
       ``benchmarks/gaps.py``); a phrasing left out as noise but asked at least
       ``min_cluster_size`` times is a cluster of its own. The misses are put in a canonical
       order first, so the result does not depend on the input order.
    3. For each cluster: the centroid (mean of its phrasings' unit rows, normalised), the
       members ordered by their phrasing's closeness to it, the entry nearest the centroid
       (``retriever.search_vectors``) and its score, and each member's own best entry now;
       then the proposal (:func:`~walletfaq.quality.gaps.proposals.propose`): add alt
       questions to the nearest entry when the centroid scores at least
       ``retriever.threshold - bar_delta`` and more than ``min_share`` of the members have it
       as their own best hit, else a new entry.
    4. Clusters are ranked by size (traffic: every logged miss counts), ties by the most
       recent member, then by id.

    Fewer misses than ``min_cluster_size`` give an empty report (all misses counted as
    noise). HDBSCAN judges density from the misses themselves: it needs contrast (several
    topics, scattered questions); one lone group among scattered misses, or a handful of
    misses, often comes out as noise.

    Args:
        retriever: the retriever whose traffic was logged (its encoder, normaliser, corpus and
            threshold are used as they are now).
        questions: logged questions (:class:`TrafficQuestion` or mappings with its fields).
        since: only questions asked at or after this time (each then needs ``asked_at``).
        min_cluster_size: the smallest cluster reported (``None``: that of ``clustering``,
            3 by default).
        low_margin: the margin below which an answered question is a miss (0 turns that rule
            off); the default was measured on the bundled evaluation set with e5-small.
        bar_delta: how far below the threshold a centroid may score and still belong to its
            nearest entry (negative: above it). Centroids score higher than single questions:
            the default, measured with e5-small (``benchmarks/gaps.py``), puts the bar 0.045
            above the threshold.
        min_share: the share of members whose own best hit is the nearest entry must exceed
            it (default 0: at least one). A majority (0.5) proposed far fewer right add_alts
            in the measurement: missed paraphrases of a covered question mostly hit other
            entries one by one.
        clustering: HDBSCAN's settings (default :data:`DEFAULT_CLUSTERING`).

    Raises:
        GapError: a logged question is invalid (the message gives its position and field),
            or a parameter is out of range.
    """
    if not isinstance(retriever, FAQRetriever):
        raise GapError(
            f"expected a FAQRetriever, got {type(retriever).__name__} (for a HybridRetriever "
            "pass its .primary)",
            field="retriever",
        )
    settings = _settings(clustering, min_cluster_size)
    low_margin = _finite(low_margin, "low_margin", minimum=0.0)
    bar_delta = _finite(bar_delta, "bar_delta")
    min_share = _finite(min_share, "min_share", minimum=0.0)
    if min_share >= 1:
        raise GapError(f"expected a share in [0, 1), got {min_share!r}", field="min_share")
    logged = read_traffic(questions, since)
    refused = sum(1 for q in logged if q.decision == "refuse")
    misses: list[tuple[TrafficQuestion, MissReason]] = []
    for item in logged:
        reason = miss_reason(item, low_margin)
        if reason is not None:
            misses.append((item, reason))
    misses.sort(key=lambda pair: _canonical(pair[0]))
    empty = GapReport(
        (), noise=len(misses), misses=len(misses), considered=len(logged), refused=refused
    )
    if len(misses) < settings.min_cluster_size:
        return empty
    texts = [_query_text(retriever, item.question, i) for i, (item, _) in enumerate(misses)]
    distinct = list(dict.fromkeys(texts))  # HDBSCAN sees each phrasing once
    row_of = {text: row for row, text in enumerate(distinct)}
    members_of: dict[int, list[int]] = defaultdict(list)
    for position, text in enumerate(texts):
        members_of[row_of[text]].append(position)
    vectors = _encode(retriever, distinct)
    labels = cluster_labels(vectors, settings)
    repeated = [
        [row]
        for row in range(len(distinct))
        if labels[row] < 0 and len(members_of[row]) >= settings.min_cluster_size
    ]
    own_best = [
        hits[0].id if hits else "" for hits in retriever.search_vectors(vectors, 1, texts=distinct)
    ]
    clusters = [
        _cluster(
            retriever,
            [[misses[i] for i in members_of[row]] for row in rows],
            vectors[rows],
            [distinct[row] for row in rows],
            [own_best[row] for row in rows],
            bar_delta,
            min_share,
        )
        for rows in [*_groups(labels), *repeated]
    ]
    clusters.sort(key=_rank)
    clustered = sum(c.size for c in clusters)
    logger.info(
        "gap mining: %d logged, %d misses, %d clusters, %d noise",
        len(logged),
        len(misses),
        len(clusters),
        len(misses) - clustered,
    )
    return GapReport(
        tuple(clusters),
        noise=len(misses) - clustered,
        misses=len(misses),
        considered=len(logged),
        refused=refused,
    )


def _settings(clustering: Clustering, min_cluster_size: int | None) -> Clustering:
    if not isinstance(clustering, Clustering):
        raise GapError(
            f"expected a Clustering, got {type(clustering).__name__}", field="clustering"
        )
    if min_cluster_size is None:
        return clustering
    return replace(clustering, min_cluster_size=min_cluster_size)


def _finite(value: float, name: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GapError(f"expected a finite number, got {value!r}", field=name)
    if minimum is not None and value < minimum:
        raise GapError(f"expected a number >= {minimum}, got {value!r}", field=name)
    return float(value)


def _canonical(item: TrafficQuestion) -> tuple[str, str, str, str]:
    """A total order of logged questions that ignores the input order."""
    when = item.asked_at.isoformat() if item.asked_at is not None else ""
    return (item.question, when, item.request_id or "", item.decision)


def encode_questions(retriever: FAQRetriever, questions: Sequence[str]) -> np.ndarray:
    """Unit query vectors of ``questions`` (shape ``(n, dim)``), as ``retriever.ask`` encodes
    them: cleaned, normalised, ``encoder.encode_queries``; each distinct text encoded once.

    Raises:
        GapError: a question is not usable text (the message gives its position).
    """
    texts = [_query_text(retriever, question, i) for i, question in enumerate(questions)]
    return _encode(retriever, texts)


def _query_text(retriever: FAQRetriever, question: str, position: int) -> str:
    try:
        return retriever.normalizer(clean_question(question))
    except QueryError as error:
        raise GapError(str(error), position=position, field="question") from None


def _encode(retriever: FAQRetriever, texts: Sequence[str]) -> np.ndarray:
    """Unit query vectors of normalised ``texts``, each distinct text encoded once."""
    if not texts:
        return np.zeros((0, retriever.encoder.dim), dtype=np.float32)
    distinct = list(dict.fromkeys(texts))
    rows = []
    bar = progress_bar(
        total=len(distinct),
        desc="encoding misses",
        unit="q",
        disable=len(distinct) <= 4 * ENCODE_CHUNK,
        leave=False,
    )
    with bar:
        for start in range(0, len(distinct), ENCODE_CHUNK):
            chunk = distinct[start : start + ENCODE_CHUNK]
            rows.append(as_unit_rows(retriever.encoder.encode_queries(chunk)))
            bar.update(len(chunk))
    by_text = dict(zip(distinct, np.concatenate(rows), strict=True))
    return as_unit_rows(np.stack([by_text[text] for text in texts]))


def _groups(labels: np.ndarray) -> list[list[int]]:
    """Row positions of each cluster label (noise, ``-1``, left out)."""
    return [
        np.flatnonzero(labels == label).tolist()
        for label in sorted(set(labels.tolist()))
        if label >= 0
    ]


def cluster_id(questions: Iterable[str]) -> str:
    """The id of a cluster with these member questions: the first 12 hex digits of the
    SHA-256 of the sorted questions joined by newlines (independent of order)."""
    joined = "\n".join(sorted(questions))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:12]


def _cluster(
    retriever: FAQRetriever,
    members: list[list[tuple[TrafficQuestion, MissReason]]],
    vectors: np.ndarray,
    texts: list[str],
    own_best: list[str],
    bar_delta: float,
    min_share: float,
) -> GapCluster:
    """The cluster of the distinct phrasings ``texts`` (rows of ``vectors``), each asked by
    the logged misses ``members[i]``, whose own best entries are ``own_best[i]``."""
    centroid = as_unit_rows(vectors.mean(axis=0))
    closeness = vectors @ centroid[0]
    order = sorted(range(len(texts)), key=lambda i: (-round(float(closeness[i]), 6), texts[i]))
    ordered = [member for i in order for member in members[i]]
    questions = [item.question for item, _ in ordered]
    (hits,) = retriever.search_vectors(centroid, 1, texts=[texts[order[0]]])
    nearest, score = (hits[0].id, float(hits[0].score)) if hits else ("", 0.0)
    hitting = sum(len(members[i]) for i, best in enumerate(own_best) if best == nearest)
    share = hitting / len(ordered)
    representatives = tuple(dict.fromkeys(q.strip() for q in questions))[:MAX_REPRESENTATIVES]
    return GapCluster(
        id=cluster_id(questions),
        members=tuple(item for item, _ in ordered),
        representatives=representatives,
        nearest_entry=nearest,
        score=score,
        proposal=propose(retriever, questions, nearest, score, share, bar_delta, min_share),
        top_entry_share=share,
        reasons=tuple(reason for _, reason in ordered),
    )


def _rank(cluster: GapCluster) -> tuple[int, float, str]:
    last = cluster.last_asked
    recency = -last.timestamp() if last is not None else math.inf
    return (-cluster.size, recency, cluster.id)
