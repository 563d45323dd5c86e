"""Gap mining: from the questions the FAQ missed to proposed FAQ changes.

>>> report = find_gaps(retriever, logged_questions)        # doctest: +SKIP
>>> report.to_frame()                                      # doctest: +SKIP
>>> entry = apply_proposal(retriever, report.clusters[0])  # doctest: +SKIP
>>> retriever.update(entry)                   # the caller writes it  # doctest: +SKIP

- :mod:`~walletfaq.quality.gaps.traffic`: :class:`TrafficQuestion` (one logged question, the
  input), which of them are misses.
- :mod:`~walletfaq.quality.gaps.clustering`: HDBSCAN and why its settings.
- :mod:`~walletfaq.quality.gaps.mining`: :func:`find_gaps`.
- :mod:`~walletfaq.quality.gaps.report`: :class:`GapReport`, :class:`GapCluster`, the
  proposals :class:`AddAlts` and :class:`NewEntry`.
- :mod:`~walletfaq.quality.gaps.proposals`: the proposal rule and :func:`apply_proposal`.

Mining reads a small input type of its own, so it does not depend on where the log is kept:
the store of record turns its rows into :class:`TrafficQuestion` objects.
"""

from walletfaq.quality.gaps.clustering import DEFAULT_CLUSTERING, Clustering
from walletfaq.quality.gaps.mining import (
    DEFAULT_LOW_MARGIN,
    cluster_id,
    encode_questions,
    find_gaps,
)
from walletfaq.quality.gaps.proposals import DEFAULT_BAR_DELTA, DEFAULT_MIN_SHARE, apply_proposal
from walletfaq.quality.gaps.report import AddAlts, GapCluster, GapReport, NewEntry, Proposal
from walletfaq.quality.gaps.traffic import MissReason, TrafficQuestion, miss_reason

__all__ = [
    "DEFAULT_BAR_DELTA",
    "DEFAULT_CLUSTERING",
    "DEFAULT_LOW_MARGIN",
    "DEFAULT_MIN_SHARE",
    "AddAlts",
    "Clustering",
    "GapCluster",
    "GapReport",
    "MissReason",
    "NewEntry",
    "Proposal",
    "TrafficQuestion",
    "apply_proposal",
    "cluster_id",
    "encode_questions",
    "find_gaps",
    "miss_reason",
]
