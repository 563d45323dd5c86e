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

from .errors import (
    CorpusError,
    IndexFormatError,
    IndexMismatchError,
    IndexWriteError,
    ModelError,
    QueryError,
    WalletFAQError,
)

__version__ = "0.1.0"

_LAZY = {
    "FAQRetriever": "retriever",
    "HybridRetriever": "hybrid",
    "Hit": "search",
    "Answer": "search",
    "evaluate": "evaluation",
    "compare": "evaluation",
    "load_queries": "evaluation",
    "EvalReport": "evaluation",
    "QueryResult": "evaluation",
    "OperatingPoint": "evaluation",
    "paired_test": "evaluation",
    "diff_reports": "evaluation",
    "bundled_queries_path": "evaluation",
    "load_bundled_queries": "evaluation",
    "calibrate": "calibration",
    "Calibration": "calibration",
    "CalibrationWarning": "calibration",
    "tune": "tuning",
    "TuneResult": "tuning",
    "AdaptedEncoder": "adapter",
    "FinetunedEncoder": "finetune",
    "FAQEntry": "corpus",
    "Corpus": "corpus",
    "load_corpus": "corpus",
    "bundled_corpus_path": "corpus",
    "Contact": "contacts",
    "ContactDirectory": "contacts",
    "load_contacts": "contacts",
    "IndexSpec": "index",
    "Encoder": "encoders",
    "SentenceTransformerEncoder": "encoders",
    "PresetEncoder": "models",
    "PRESETS": "models",
    "DEFAULT_MODEL": "models",
    "doctor": "diagnosis",
    "DoctorReport": "diagnosis",
    "Finding": "diagnosis",
}

__all__ = [
    "CorpusError",
    "IndexFormatError",
    "IndexMismatchError",
    "IndexWriteError",
    "ModelError",
    "QueryError",
    "WalletFAQError",
    "__version__",
    *_LAZY,
]

if TYPE_CHECKING:
    from .adapter import AdaptedEncoder
    from .calibration import Calibration, CalibrationWarning, calibrate
    from .contacts import Contact, ContactDirectory, load_contacts
    from .corpus import Corpus, FAQEntry, bundled_corpus_path, load_corpus
    from .diagnosis import DoctorReport, Finding, doctor
    from .encoders import Encoder, SentenceTransformerEncoder
    from .evaluation import (
        EvalReport,
        OperatingPoint,
        QueryResult,
        bundled_queries_path,
        compare,
        diff_reports,
        evaluate,
        load_bundled_queries,
        load_queries,
        paired_test,
    )
    from .finetune import FinetunedEncoder
    from .hybrid import HybridRetriever
    from .index import IndexSpec
    from .models import DEFAULT_MODEL, PRESETS, PresetEncoder
    from .retriever import FAQRetriever
    from .search import Answer, Hit
    from .tuning import TuneResult, tune


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'walletfaq' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
