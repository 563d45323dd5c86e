"""How one labelled query fared (:class:`QueryResult`), and what the statistics read of a set of
them (:class:`PerQueryResults`): the rows every evaluation module builds on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class QueryResult:
    """How one labelled query fared.

    Attributes:
        ranked: entry ids in the order the retriever returned them.
        scores: their scores, same order.
        rank: 1-based position of the first gold entry in ``ranked`` (``None``: not found, or
            an out-of-domain query).
        metrics: this query's value of every metric of the report (empty for an out-of-domain
            query, which has nothing to rank).
    """

    query: str
    gold: tuple[str, ...]
    style: str
    category: str
    ranked: tuple[str, ...]
    scores: tuple[float, ...]
    rank: int | None
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False, repr=False)

    @property
    def top_id(self) -> str | None:
        """The first-ranked entry id."""
        return self.ranked[0] if self.ranked else None

    @property
    def top_score(self) -> float:
        """Score of the first-ranked entry."""
        return self.scores[0] if self.scores else float("-inf")

    @property
    def in_domain(self) -> bool:
        """True when some entry answers the query."""
        return bool(self.gold)


class PerQueryResults(Protocol):
    """What comparisons of two systems read of each (an
    :class:`~walletfaq.quality.evaluation.report.EvalReport` is one)."""

    @property
    def results(self) -> Sequence[QueryResult]:
        """One row per query, in query-set order."""
        ...

    def per_query(self, metric: str) -> np.ndarray:
        """The value of ``metric`` for each in-domain query, in order."""
        ...
