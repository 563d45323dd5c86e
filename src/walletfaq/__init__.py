"""walletfaq: semantic FAQ retrieval for digital-wallet customer service.

>>> from walletfaq import FAQRetriever
>>> r = FAQRetriever.from_corpus()              # bundled corpus + offline default model
>>> r.ask("充值了钱没到账咋办", k=3)[0].id        # doctest: +SKIP
'topup-not-received'

Public names are imported lazily, so ``import walletfaq`` stays fast; torch and
sentence-transformers load only when a model is first needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from walletfaq._version import __version__
from walletfaq.encoders.threads import apply_thread_defaults
from walletfaq.errors import (
    CorpusError,
    GapError,
    IndexConflictError,
    IndexFormatError,
    IndexMismatchError,
    IndexWriteError,
    ModelError,
    QueryError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    WalletFAQError,
)

apply_thread_defaults()  # before any OpenMP library loads: see walletfaq.encoders.threads

_LAZY = {
    "FAQRetriever": "walletfaq.retrieval.retriever",
    "HybridRetriever": "walletfaq.retrieval.hybrid",
    "Hit": "walletfaq.index.search",
    "Answer": "walletfaq.index.search",
    "evaluate": "walletfaq.quality.evaluation.runner",
    "compare": "walletfaq.quality.evaluation.runner",
    "load_queries": "walletfaq.data.queries",
    "EvalReport": "walletfaq.quality.evaluation.report",
    "QueryResult": "walletfaq.quality.evaluation.results",
    "OperatingPoint": "walletfaq.quality.evaluation.abstention",
    "paired_test": "walletfaq.quality.evaluation.stats",
    "diff_reports": "walletfaq.quality.evaluation.stats",
    "bundled_queries_path": "walletfaq.data.queries",
    "load_bundled_queries": "walletfaq.data.queries",
    "calibrate": "walletfaq.quality.calibration",
    "Calibration": "walletfaq.quality.calibration",
    "CalibrationWarning": "walletfaq.quality.calibration",
    "tune": "walletfaq.quality.tuning",
    "TuneResult": "walletfaq.quality.tuning",
    "TuningWarning": "walletfaq.quality.tuning",
    "PRESET_RULE": "walletfaq.quality.calibration",
    "calibrate_margin": "walletfaq.quality.clarify",
    "margin_curves": "walletfaq.quality.clarify",
    "AdaptedEncoder": "walletfaq.encoders.adapted",
    "FinetunedEncoder": "walletfaq.encoders.finetuned",
    "FAQEntry": "walletfaq.data.corpus",
    "Corpus": "walletfaq.data.corpus",
    "load_corpus": "walletfaq.data.corpus",
    "bundled_corpus_path": "walletfaq.data.corpus",
    "Contact": "walletfaq.data.contacts",
    "ContactDirectory": "walletfaq.data.contacts",
    "load_contacts": "walletfaq.data.contacts",
    "IndexSpec": "walletfaq.index.vector_index",
    "Encoder": "walletfaq.encoders.protocol",
    "SentenceTransformerEncoder": "walletfaq.encoders.sentence_transformer",
    "PresetEncoder": "walletfaq.encoders.presets",
    "PRESETS": "walletfaq.encoders.presets",
    "DEFAULT_MODEL": "walletfaq.encoders.presets",
    "doctor": "walletfaq.quality.doctor.checks",
    "DoctorReport": "walletfaq.quality.doctor.report",
    "Finding": "walletfaq.quality.doctor.report",
    "open_store": "walletfaq.store",
    "StoreFollower": "walletfaq.retrieval.replica",
    "ReplicaStatus": "walletfaq.retrieval.replica",
    "find_gaps": "walletfaq.quality.gaps",
    "apply_proposal": "walletfaq.quality.gaps",
    "GapReport": "walletfaq.quality.gaps",
    "GapCluster": "walletfaq.quality.gaps",
    "TrafficQuestion": "walletfaq.quality.gaps",
    "gaps": "walletfaq.quality.gaps.store_bridge",
    "gaps_from_store": "walletfaq.quality.gaps.store_bridge",
    "traffic_report": "walletfaq.quality.traffic_report",
    "TrafficReport": "walletfaq.quality.traffic_report",
    "check_gate": "walletfaq.quality.gate",
    "GateResult": "walletfaq.quality.gate_report",
    "QueryLog": "walletfaq.retrieval.traffic",
    "LoggedRetriever": "walletfaq.retrieval.traffic",
    "LoggedAnswer": "walletfaq.retrieval.traffic",
    "LoggedHits": "walletfaq.retrieval.traffic",
}

__all__ = [
    "CorpusError",
    "GapError",
    "IndexConflictError",
    "IndexFormatError",
    "IndexMismatchError",
    "IndexWriteError",
    "ModelError",
    "QueryError",
    "StoreConflictError",
    "StoreError",
    "StoreUnavailableError",
    "WalletFAQError",
    "__version__",
    *_LAZY,
]

if TYPE_CHECKING:
    from walletfaq.data.contacts import Contact, ContactDirectory, load_contacts
    from walletfaq.data.corpus import Corpus, FAQEntry, bundled_corpus_path, load_corpus
    from walletfaq.data.queries import bundled_queries_path, load_bundled_queries, load_queries
    from walletfaq.encoders.adapted import AdaptedEncoder
    from walletfaq.encoders.finetuned import FinetunedEncoder
    from walletfaq.encoders.presets import DEFAULT_MODEL, PRESETS, PresetEncoder
    from walletfaq.encoders.protocol import Encoder
    from walletfaq.encoders.sentence_transformer import SentenceTransformerEncoder
    from walletfaq.index.search import Answer, Hit
    from walletfaq.index.vector_index import IndexSpec
    from walletfaq.quality.calibration import (
        PRESET_RULE,
        Calibration,
        CalibrationWarning,
        calibrate,
    )
    from walletfaq.quality.clarify import calibrate_margin, margin_curves
    from walletfaq.quality.doctor.checks import doctor
    from walletfaq.quality.doctor.report import DoctorReport, Finding
    from walletfaq.quality.evaluation.abstention import OperatingPoint
    from walletfaq.quality.evaluation.report import EvalReport
    from walletfaq.quality.evaluation.results import QueryResult
    from walletfaq.quality.evaluation.runner import compare, evaluate
    from walletfaq.quality.evaluation.stats import diff_reports, paired_test
    from walletfaq.quality.gaps import (
        GapCluster,
        GapReport,
        TrafficQuestion,
        apply_proposal,
        find_gaps,
    )
    from walletfaq.quality.gaps.store_bridge import gaps, gaps_from_store
    from walletfaq.quality.gate import check_gate
    from walletfaq.quality.gate_report import GateResult
    from walletfaq.quality.traffic_report import TrafficReport, traffic_report
    from walletfaq.quality.tuning import TuneResult, TuningWarning, tune
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.replica import ReplicaStatus, StoreFollower
    from walletfaq.retrieval.retriever import FAQRetriever
    from walletfaq.retrieval.traffic import LoggedAnswer, LoggedHits, LoggedRetriever, QueryLog
    from walletfaq.store import open_store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'walletfaq' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
