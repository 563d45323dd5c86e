"""Corpus doctor: what in an FAQ corpus hurts retrieval, ranked by severity.

:func:`doctor` examines a retriever's own index rows and returns a :class:`DoctorReport` of
:class:`Finding` objects, worst first: questions shared by two entries, texts closer to another
entry than to their own, near-duplicate entries, confused categories, too few or redundant alt
questions, repeated texts. Gaps are measured in units of the corpus' own paraphrase distance.

- :mod:`~walletfaq.quality.doctor.checks`: :func:`doctor` and the individual checks, with
  their thresholds (the kinds of finding are described there).
- :mod:`~walletfaq.quality.doctor.report`: :class:`Finding`, :class:`DoctorReport` and the
  severity labels.
- :mod:`~walletfaq.quality.doctor.neighbours`: the index rows and their leave-one-out
  neighbours, the similarities the checks read.
"""

from walletfaq.quality.doctor.checks import (
    CATEGORY_CONFUSION_RATE,
    CATEGORY_MIN_TEXTS,
    MAX_LISTED_TEXTS,
    MIN_ALT_QUESTIONS,
    MISPLACED_GAP_SLOPE,
    MISPLACED_MAX_SEVERITY,
    NEAR_DUPLICATE_CENTROID_RATIO,
    NEAR_DUPLICATE_SHARE,
    REDUNDANT_RATIO,
    doctor,
)
from walletfaq.quality.doctor.report import (
    HIGH_SEVERITY,
    MEDIUM_SEVERITY,
    DoctorReport,
    Finding,
    FindingKind,
    SeverityLabel,
)

__all__ = [
    "CATEGORY_CONFUSION_RATE",
    "CATEGORY_MIN_TEXTS",
    "HIGH_SEVERITY",
    "MAX_LISTED_TEXTS",
    "MEDIUM_SEVERITY",
    "MIN_ALT_QUESTIONS",
    "MISPLACED_GAP_SLOPE",
    "MISPLACED_MAX_SEVERITY",
    "NEAR_DUPLICATE_CENTROID_RATIO",
    "NEAR_DUPLICATE_SHARE",
    "REDUNDANT_RATIO",
    "DoctorReport",
    "Finding",
    "FindingKind",
    "SeverityLabel",
    "doctor",
]
