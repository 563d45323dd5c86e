"""What the doctor reports: one :class:`Finding` per problem, all of them in a
:class:`DoctorReport`, worst first, each labelled ``"high"``, ``"medium"`` or ``"low"`` by its
severity (:data:`HIGH_SEVERITY`, :data:`MEDIUM_SEVERITY`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    import pandas as pd

FindingKind = Literal[
    "shared-question",
    "misplaced-question",
    "near-duplicate",
    "category-confusion",
    "too-few-questions",
    "redundant-questions",
    "repeated-question",
    "confusable-ids",
]

SeverityLabel = Literal["high", "medium", "low"]

HIGH_SEVERITY = 0.7
"""Findings with ``severity`` at least this are labelled ``"high"``: fix them first."""

MEDIUM_SEVERITY = 0.4
"""Findings with ``severity`` at least this (and below :data:`HIGH_SEVERITY`) are ``"medium"``;
the rest are ``"low"``."""


@dataclass(frozen=True)
class Finding:
    """One problem found in a corpus.

    Attributes:
        kind: what is wrong (see :mod:`walletfaq.quality.doctor.checks`).
        severity: 0-1, higher is worse; comparable across kinds.
        label: ``"high"``, ``"medium"`` or ``"low"`` (:data:`HIGH_SEVERITY`,
            :data:`MEDIUM_SEVERITY`).
        entry_ids: the entries involved, the one to edit first.
        texts: the texts involved (for ``misplaced-question``: the text, then the other entry's
            text it is closest to).
        similarity: the cosine that makes it a problem (``None`` where none applies): for a
            misplaced text, its cosine to the other entry; for near-duplicates the centroid
            cosine; for redundant questions their mean pairwise cosine.
        advice: what to do, in one or two sentences.
        category: the category concerned, or ``"source → target"`` for category confusion.
    """

    kind: FindingKind
    severity: float
    label: SeverityLabel
    entry_ids: tuple[str, ...]
    texts: tuple[str, ...]
    similarity: float | None
    advice: str
    category: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "severity": round(self.severity, 4),
            "label": self.label,
            "entry_ids": list(self.entry_ids),
            "texts": list(self.texts),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "category": self.category,
            "advice": self.advice,
        }


@dataclass(frozen=True)
class DoctorReport:
    """Findings of :func:`doctor`, worst first.

    Attributes:
        findings: sorted by decreasing severity (then kind, then entry ids).
        model: name of the encoder whose vectors were examined.
        source: where the corpus came from.
        n_entries: entries examined.
        n_texts: question and alt-question texts examined.
        paraphrase_distance: the unit gaps are measured in (see
            :mod:`walletfaq.quality.doctor.checks`).
    """

    findings: tuple[Finding, ...]
    model: str
    source: str
    n_entries: int
    n_texts: int
    paraphrase_distance: float
    counts: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", dict(Counter(f.label for f in self.findings)))

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def of_kind(self, kind: FindingKind) -> tuple[Finding, ...]:
        """The findings of one kind, worst first."""
        return tuple(f for f in self.findings if f.kind == kind)

    def at_least(self, label: SeverityLabel) -> tuple[Finding, ...]:
        """The findings labelled ``label`` or worse, worst first."""
        floor = {"high": HIGH_SEVERITY, "medium": MEDIUM_SEVERITY, "low": 0.0}[label]
        return tuple(f for f in self.findings if f.severity >= floor)

    def summary(self, limit: int = 15) -> str:
        """A readable summary: counts per kind and label, then the ``limit`` worst findings."""
        lines = [
            f"doctor: {self.n_entries} entries, {self.n_texts} texts, model {self.model} "
            f"(paraphrase distance {self.paraphrase_distance:.4f}); {len(self.findings)} "
            f"findings: {self.counts.get('high', 0)} high, {self.counts.get('medium', 0)} "
            f"medium, {self.counts.get('low', 0)} low"
        ]
        per_kind: dict[str, Counter[str]] = defaultdict(Counter)
        for finding in self.findings:
            per_kind[finding.kind][finding.label] += 1
        for kind, labels in sorted(per_kind.items(), key=lambda item: -sum(item[1].values())):
            detail = ", ".join(f"{labels[x]} {x}" for x in ("high", "medium", "low") if labels[x])
            lines.append(f"  {kind}: {sum(labels.values())} ({detail})")
        shown = self.findings[:limit]
        if shown:
            lines.append(f"worst {len(shown)}:")
        for finding in shown:
            similarity = "" if finding.similarity is None else f" cos {finding.similarity:.3f}"
            lines.append(
                f"[{finding.label} {finding.severity:.2f}] {finding.kind}: "
                f"{', '.join(finding.entry_ids)}{similarity}"
            )
            lines.append(f"    {finding.advice}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: the report's figures and every finding, worst first."""
        return {
            "model": self.model,
            "source": self.source,
            "n_entries": self.n_entries,
            "n_texts": self.n_texts,
            "paraphrase_distance": round(self.paraphrase_distance, 6),
            "counts": {label: self.counts.get(label, 0) for label in ("high", "medium", "low")},
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per finding, worst first (needs pandas: the ``eval`` extra)."""
        try:
            import pandas as pd
        except ImportError:
            raise WalletFAQError(
                "DoctorReport.to_frame needs pandas; install it with pip install 'walletfaq[eval]'"
            ) from None
        columns = list(Finding.__dataclass_fields__)
        return pd.DataFrame([f.to_dict() for f in self.findings], columns=columns)


def _severity(value: float) -> tuple[float, SeverityLabel]:
    value = float(min(1.0, max(0.0, value)))
    label: SeverityLabel = (
        "high" if value >= HIGH_SEVERITY else "medium" if value >= MEDIUM_SEVERITY else "low"
    )
    return value, label
