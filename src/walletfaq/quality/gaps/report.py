"""What gap mining returns: clusters of missed questions, each with a proposal.

:class:`GapReport` holds :class:`GapCluster` objects, ranked by traffic; each carries an
:class:`AddAlts` or :class:`NewEntry` proposal. ``to_dict`` / ``to_json`` give the shape that
``walletfaq gaps --json`` prints, ``to_frame`` one DataFrame row per cluster.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from walletfaq.quality.gaps.traffic import MISS_REASONS, MissReason, TrafficQuestion

if TYPE_CHECKING:
    import pandas as pd

MAX_REPRESENTATIVES = 5
"""How many representative questions a cluster shows."""


@dataclass(frozen=True)
class AddAlts:
    """Proposal: add ``questions`` as alt questions of the existing entry ``entry_id``.

    ``questions`` are the cluster's most central questions that the entry does not have yet
    (empty when it has them all: then the misses come from entries too close to each other,
    a case for editing the neighbour, not for more alt questions).
    """

    entry_id: str
    questions: tuple[str, ...]
    kind: Literal["add_alts"] = "add_alts"

    def to_dict(self) -> dict[str, object]:
        """``{"kind": "add_alts", "entry_id", "questions"}``."""
        return {"kind": self.kind, "entry_id": self.entry_id, "questions": list(self.questions)}


@dataclass(frozen=True)
class NewEntry:
    """Proposal: a new entry is needed. ``suggested_question`` is the cluster's most central
    question; ``questions`` the other distinct member questions (most central first), to become
    its alt questions. The answer is for a person to write."""

    suggested_question: str
    questions: tuple[str, ...]
    kind: Literal["new_entry"] = "new_entry"

    def to_dict(self) -> dict[str, object]:
        """``{"kind": "new_entry", "suggested_question", "questions"}``."""
        return {
            "kind": self.kind,
            "suggested_question": self.suggested_question,
            "questions": list(self.questions),
        }


Proposal = AddAlts | NewEntry


@dataclass(frozen=True)
class GapCluster:
    """A group of missed questions about one thing.

    Attributes:
        id: a short hash of the sorted member questions: the same members give the same id in
            every run, whatever the input order (use it to accept or reject the proposal).
        members: the logged questions of the cluster, most central first.
        representatives: up to :data:`MAX_REPRESENTATIVES` distinct member questions nearest
            the cluster's centroid, most central first.
        nearest_entry: the entry whose best row is nearest the centroid.
        score: the centroid's cosine similarity to that row.
        proposal: :class:`AddAlts` when the cluster belongs to ``nearest_entry``, else
            :class:`NewEntry`.
        top_entry_share: the share of members whose own best entry (searched now) is
            ``nearest_entry``.
        reasons: why each member is a miss (:data:`~walletfaq.quality.gaps.traffic.MissReason`),
            aligned with ``members``.
    """

    id: str
    members: tuple[TrafficQuestion, ...]
    representatives: tuple[str, ...]
    nearest_entry: str
    score: float
    proposal: Proposal
    top_entry_share: float
    reasons: tuple[MissReason, ...] = field(default=())

    @property
    def size(self) -> int:
        """How many logged misses the cluster holds (its traffic)."""
        return len(self.members)

    @property
    def questions(self) -> tuple[str, ...]:
        """Every member question (one per logged miss, repeats included), most central first."""
        return tuple(member.question for member in self.members)

    @property
    def last_asked(self) -> datetime | None:
        """When a member was last asked (``None`` if no member has a time)."""
        times = [m.asked_at for m in self.members if m.asked_at is not None]
        return max(times) if times else None

    def reason_counts(self) -> dict[str, int]:
        """How many members are misses for each reason (``"handoff"``, ...)."""
        counts: Counter[str] = Counter(self.reasons)
        return {reason: counts.get(reason, 0) for reason in MISS_REASONS}

    def to_dict(self) -> dict[str, object]:
        """``{"id", "size", "questions", "nearest_entry", "score", "proposal"}``."""
        return {
            "id": self.id,
            "size": self.size,
            "questions": list(self.questions),
            "nearest_entry": self.nearest_entry,
            "score": round(self.score, 6),
            "proposal": self.proposal.to_dict(),
        }


@dataclass(frozen=True)
class GapReport:
    """The result of :func:`~walletfaq.quality.gaps.find_gaps`.

    Attributes:
        clusters: the gaps, largest first (ties: most recently asked first, then by id).
        noise: misses that joined no cluster.
        misses: all misses considered (``sum of sizes + noise``).
        considered: logged questions read (after ``since``).
        refused: refused questions left out (a refusal is never a gap).
    """

    clusters: tuple[GapCluster, ...]
    noise: int
    misses: int
    considered: int
    refused: int

    def __len__(self) -> int:
        return len(self.clusters)

    def __getitem__(self, cluster_id: str) -> GapCluster:
        """The cluster with this id (``KeyError`` if none)."""
        for cluster in self.clusters:
            if cluster.id == cluster_id:
                return cluster
        raise KeyError(cluster_id)

    def to_dict(self) -> dict[str, object]:
        """``{"clusters": [{"id", "size", "questions", "nearest_entry", "score", "proposal"}]}``:
        what ``walletfaq gaps --json`` prints."""
        return {"clusters": [cluster.to_dict() for cluster in self.clusters]}

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text (UTF-8 characters kept)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_frame(self) -> pd.DataFrame:
        """One row per cluster, in rank order: ``id``, ``size``, ``kind``, ``nearest_entry``,
        ``score``, ``top_entry_share``, ``distinct_questions``, ``representatives`` (joined by
        " | "), ``last_asked``, and the count of each miss reason."""
        import pandas as pd

        rows = []
        for cluster in self.clusters:
            rows.append(
                {
                    "id": cluster.id,
                    "size": cluster.size,
                    "kind": cluster.proposal.kind,
                    "nearest_entry": cluster.nearest_entry,
                    "score": cluster.score,
                    "top_entry_share": cluster.top_entry_share,
                    "distinct_questions": len(Counter(cluster.questions)),
                    "representatives": " | ".join(cluster.representatives),
                    "last_asked": cluster.last_asked,
                    **cluster.reason_counts(),
                }
            )
        columns = [
            "id",
            "size",
            "kind",
            "nearest_entry",
            "score",
            "top_entry_share",
            "distinct_questions",
            "representatives",
            "last_asked",
            *MISS_REASONS,
        ]
        return pd.DataFrame(rows, columns=columns)
