"""What the quality gate found (:class:`GateResult`, built by
:func:`~walletfaq.quality.gate.check_gate`): the metrics before and after, the queries that
broke, the entries lost, and why it refused; as text, a dict (JSON) and frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from walletfaq.data.queries import LabelledQuery
from walletfaq.quality.evaluation.results import QueryResult
from walletfaq.quality.gate_content import NewContactDetail

if TYPE_CHECKING:
    import pandas as pd

_SHOWN = 20  # broken queries and lost entries listed in the text form (all in to_dict)
_ID_CHARS = 40  # an id (at most 64 characters) longer than this is cut in one-line forms
MAX_HEADLINE_CHARS = 500
"""The longest :meth:`GateResult.headline` (ids are cut and counted to stay below it)."""


@dataclass(frozen=True)
class QueryChange:
    """One gate query, before (published) and after (candidate).

    Attributes:
        query: the question.
        gold: its gold entries in the published content.
        style: the query's style label.
        before_top, before_score: the first hit on the published content.
        after_top, after_score: the first hit on the candidate (``None``/``-inf``: no hit).
        after_rank: where the first gold entry ranks on the candidate (1-based; ``None``: not
            in the top 10, or removed).
        gold_removed: every gold entry of the query is gone from the candidate.
    """

    query: str
    gold: tuple[str, ...]
    style: str
    before_top: str | None
    before_score: float
    after_top: str | None
    after_score: float
    after_rank: int | None
    gold_removed: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "query": self.query,
            "gold": list(self.gold),
            "style": self.style,
            "before": {"id": self.before_top, "score": _finite(self.before_score)},
            "after": {
                "id": self.after_top,
                "score": _finite(self.after_score),
                "gold_rank": self.after_rank,
            },
            "gold_removed": self.gold_removed,
        }

    def describe(self) -> str:
        """One line: the query, its gold, and the first hit before and after."""
        if self.gold_removed:
            where = "its gold entry is removed"
        elif self.after_rank is None:
            where = "gold not in the top 10"
        else:
            where = f"gold at rank {self.after_rank}"
        return (
            f"{self.query!r} (gold {', '.join(self.gold)}): was {self.before_top} "
            f"[{self.before_score:.3f}], now {self.after_top} [{self.after_score:.3f}]; {where}"
        )


@dataclass(frozen=True)
class LostEntry:
    """An entry that answered gate queries on the published content and answers none on the
    candidate.

    Attributes:
        entry_id: the entry.
        removed: it is not in the candidate at all (else it was changed, or another entry
            now ranks first for its queries).
        queries: the gate queries it answered before, as they fare now.
    """

    entry_id: str
    removed: bool
    queries: tuple[QueryChange, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.entry_id,
            "removed": self.removed,
            "queries": [q.to_dict() for q in self.queries],
        }


@dataclass(frozen=True)
class GateResult:
    """The verdict of the quality gate on a candidate content.

    Attributes:
        passed: no gated metric fell by more than ``tolerance`` points and no entry was lost.
        reasons: why it refused, one sentence each (empty when it passed).
        tolerance: the largest fall that passes, in points.
        metrics_before, metrics_after: the gated metrics (0-1) over the gated queries, on the
            published content and on the candidate.
        broken: gated queries answered (gold entry first) before and not after.
        lost_entries: entries that answered at least one gated query before and none after.
        fixed: gated queries answered after and not before.
        n_queries: the gated queries (in domain, with a published gold entry).
        n_out_of_domain: gate queries with ``gold: []`` (not gated: nothing to rank).
        n_skipped: gate queries whose gold entries are all unpublished (not gated).
        unpublished_gold: those gold ids, sorted.
        added, removed, changed: the entry ids the candidate adds, removes and changes.
        model: the model both sides were embedded with.
        seconds: how long the gate took (building both retrievers included).
        new_details: contact details (phone numbers, web addresses, account numbers) that an
            added or changed entry gives and neither the published content nor the contacts
            directory does (:mod:`~walletfaq.quality.gate_content`); any refuses.
    """

    passed: bool
    reasons: tuple[str, ...]
    tolerance: float
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    broken: tuple[QueryChange, ...]
    lost_entries: tuple[LostEntry, ...]
    fixed: int
    n_queries: int
    n_out_of_domain: int
    n_skipped: int
    unpublished_gold: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    model: str
    seconds: float
    new_details: tuple[NewContactDetail, ...] = ()

    @classmethod
    def of(
        cls,
        gated: Sequence[LabelledQuery],
        before: Sequence[QueryResult],
        after: Sequence[QueryResult],
        *,
        metrics: Sequence[str],
        tolerance: float,
        model: str,
        n_out_of_domain: int,
        n_skipped: int,
        unpublished_gold: tuple[str, ...],
        added: tuple[str, ...],
        removed: tuple[str, ...],
        changed: tuple[str, ...],
        seconds: float,
        new_details: tuple[NewContactDetail, ...] = (),
    ) -> GateResult:
        """Judge ``after`` against ``before`` (one result per gated query, same order)."""
        n = len(gated)
        means_before = {m: sum(r.metrics[m] for r in before) / n for m in metrics}
        means_after = {m: sum(r.metrics[m] for r in after) / n for m in metrics}
        gone = set(removed)
        changes = [
            _query_change(query, b, a, gone)
            for query, b, a in zip(gated, before, after, strict=True)
        ]
        broken = tuple(
            c for c, b, a in zip(changes, before, after, strict=True) if b.rank == 1 and a.rank != 1
        )
        fixed = sum(1 for b, a in zip(before, after, strict=True) if a.rank == 1 and b.rank != 1)
        answered_before = _answered(before)
        answered_after = _answered(after)
        lost = tuple(
            LostEntry(
                entry_id,
                entry_id in gone,
                tuple(changes[i] for i in positions),
            )
            for entry_id, positions in answered_before.items()
            if entry_id not in answered_after
        )
        reasons = []
        for m in metrics:
            fall = _points(means_before[m] - means_after[m])
            if fall > tolerance:
                reasons.append(
                    f"{m} fell {fall:.2f} points ({means_before[m]:.4f} -> {means_after[m]:.4f}), "
                    f"more than the tolerance of {tolerance:g}"
                )
        if lost:
            ids = _listed([e.entry_id for e in lost], 3)
            one = len(lost) == 1
            reasons.append(
                f"{len(lost)} {'entry' if one else 'entries'} answered gate queries and "
                f"{'answers' if one else 'answer'} none any more: {ids}"
            )
        if new_details:
            shown = "; ".join(d.describe() for d in new_details[:3])
            more = f" and {len(new_details) - 3} more" if len(new_details) > 3 else ""
            reasons.append(
                f"{len(new_details)} contact detail(s) found in neither the published content "
                f"nor the contacts directory: {shown}{more}; a hotline, link or account must "
                "come from the contacts directory (add it there), or a person checks it and "
                "publishes with --force"
            )
        return cls(
            passed=not reasons,
            reasons=tuple(reasons),
            tolerance=tolerance,
            metrics_before=means_before,
            metrics_after=means_after,
            broken=broken,
            lost_entries=lost,
            fixed=fixed,
            n_queries=n,
            n_out_of_domain=n_out_of_domain,
            n_skipped=n_skipped,
            unpublished_gold=unpublished_gold,
            added=added,
            removed=removed,
            changed=changed,
            model=model,
            seconds=seconds,
            new_details=new_details,
        )

    @property
    def deltas(self) -> dict[str, float]:
        """After minus before, in points (negative: the candidate is worse)."""
        return {
            m: _points(self.metrics_after[m] - self.metrics_before[m]) for m in self.metrics_before
        }

    def headline(self) -> str:
        """One line for a revision's reason or a log: the verdict, the deltas, what broke."""
        deltas = ", ".join(f"{m} {d:+.2f}" for m, d in self.deltas.items())
        line = (
            f"quality gate {'passed' if self.passed else 'refused'}: {deltas} points on "
            f"{self.n_queries} queries (tolerance {self.tolerance:g}); "
            f"{len(self.broken)} broken, {len(self.lost_entries)} entries lost"
        )
        if self.lost_entries:
            line += f" ({_listed([e.entry_id for e in self.lost_entries], 3)})"
        return line

    def summary(self) -> str:
        """The readable report (``str(result)``): verdict, changes, metrics table, broken
        queries and lost entries (the first 20 of each; :meth:`to_dict` has them all)."""
        verdict = "PASSED" if self.passed else "REFUSED"
        not_gated = f"{self.n_out_of_domain} out of domain"
        if self.n_skipped:
            not_gated += (
                f", {self.n_skipped} whose gold entries are not published "
                f"({_listed(list(self.unpublished_gold), 5)})"
            )
        lines = [
            f"quality gate {verdict}: {self.n_queries} gate queries ({not_gated} not gated), "
            f"model {self.model}, {self.seconds:.1f} s",
            f"changes: {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed",
            f"{'metric':<10}{'before':>9}{'after':>9}{'delta':>9}  (points; a fall of more "
            f"than {self.tolerance:g} refuses)",
        ]
        for m, delta in self.deltas.items():
            lines.append(
                f"{m:<10}{self.metrics_before[m]:>9.4f}{self.metrics_after[m]:>9.4f}{delta:>+9.2f}"
            )
        lines.append(f"queries answered now and not before: {self.fixed}")
        lines.append(f"broken queries (answered before, not now): {len(self.broken)}")
        lines += [f"  {q.describe()}" for q in self.broken[:_SHOWN]]
        if len(self.broken) > _SHOWN:
            lines.append(f"  ... and {len(self.broken) - _SHOWN} more")
        lines.append(
            f"lost entries (answered gate queries, answer none now): {len(self.lost_entries)}"
        )
        for lost in self.lost_entries[:_SHOWN]:
            how = "removed" if lost.removed else "still there"
            lines.append(f"  {lost.entry_id} ({how}), answered {len(lost.queries)} gate queries")
        if len(self.lost_entries) > _SHOWN:
            lines.append(f"  ... and {len(self.lost_entries) - _SHOWN} more")
        if self.new_details:
            lines.append(f"new contact details: {len(self.new_details)}")
            lines += [f"  {d.describe()}" for d in self.new_details[:_SHOWN]]
        lines += [f"refused: {reason}" for reason in self.reasons]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``walletfaq publish --json`` prints it under ``"gate"``)."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "tolerance": self.tolerance,
            "metrics": {
                m: {
                    "before": self.metrics_before[m],
                    "after": self.metrics_after[m],
                    "delta": delta,
                }
                for m, delta in self.deltas.items()
            },
            "queries": {
                "gated": self.n_queries,
                "out_of_domain": self.n_out_of_domain,
                "skipped": self.n_skipped,
                "unpublished_gold": list(self.unpublished_gold),
                "fixed": self.fixed,
            },
            "broken_queries": [q.to_dict() for q in self.broken],
            "lost_entries": [e.to_dict() for e in self.lost_entries],
            "changes": {
                "added": list(self.added),
                "removed": list(self.removed),
                "changed": list(self.changed),
            },
            "new_contact_details": [d.to_dict() for d in self.new_details],
            "model": self.model,
            "seconds": round(self.seconds, 3),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per gated metric: ``metric``, ``before``, ``after``, ``delta`` (points),
        ``tolerance`` and ``ok`` (needs pandas, the ``eval`` extra)."""
        import pandas as pd

        rows = [
            {
                "metric": m,
                "before": self.metrics_before[m],
                "after": self.metrics_after[m],
                "delta": delta,
                "tolerance": self.tolerance,
                "ok": -delta <= self.tolerance,
            }
            for m, delta in self.deltas.items()
        ]
        return pd.DataFrame(rows, columns=["metric", "before", "after", "delta", "tolerance", "ok"])

    def broken_frame(self) -> pd.DataFrame:
        """One row per broken query: query, gold, before/after top id and score, the gold's
        rank now, gold_removed, and the lost entry it belonged to (if any)."""
        import pandas as pd

        owners: dict[str, str] = {}
        for lost in self.lost_entries:
            for q in lost.queries:
                owners.setdefault(q.query, lost.entry_id)
        rows = [
            {
                "query": q.query,
                "gold": list(q.gold),
                "before_top": q.before_top,
                "before_score": q.before_score,
                "after_top": q.after_top,
                "after_score": q.after_score,
                "after_rank": q.after_rank,
                "gold_removed": q.gold_removed,
                "lost_entry": owners.get(q.query),
            }
            for q in self.broken
        ]
        return pd.DataFrame(
            rows,
            columns=[
                "query",
                "gold",
                "before_top",
                "before_score",
                "after_top",
                "after_score",
                "after_rank",
                "gold_removed",
                "lost_entry",
            ],
        )


def _query_change(
    query: LabelledQuery, before: QueryResult, after: QueryResult, gone: set[str]
) -> QueryChange:
    return QueryChange(
        query=query.query,
        gold=query.gold,
        style=query.style,
        before_top=before.top_id,
        before_score=before.top_score,
        after_top=after.top_id,
        after_score=after.top_score,
        after_rank=after.rank,
        gold_removed=all(g in gone for g in query.gold),
    )


def _answered(results: Sequence[QueryResult]) -> dict[str, list[int]]:
    """Entry id -> positions of the queries it answers (it is a gold entry ranked first)."""
    out: dict[str, list[int]] = {}
    for position, result in enumerate(results):
        if result.rank == 1 and result.top_id is not None:
            out.setdefault(result.top_id, []).append(position)
    return out


def _points(value: float) -> float:
    """A 0-1 difference in points, rounded past float noise (so 0.5 points is 0.5)."""
    return round(value * 100, 9)


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


def _listed(ids: list[str], limit: int) -> str:
    """The first ``limit`` ids, each cut to 40 characters, and how many more: short enough
    for one line (a revision's reason carries :meth:`GateResult.headline`)."""
    shown = ", ".join(i if len(i) <= _ID_CHARS else i[: _ID_CHARS - 1] + "…" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
