"""Training: :func:`tune` adapts a retriever to labelled questions of its own domain.

``walletfaq.quality.tuning`` is the documented path (``walletfaq.tune`` and
``walletfaq.TuneResult`` are the same objects). One module per idea:

- :mod:`~walletfaq.quality.tuning.runner`: :func:`tune`, the entry point (argument checks, the
  adapter path, the hybrid path, the hand-over to fine-tuning);
- :mod:`~walletfaq.quality.tuning.data`: :class:`TuningData` and :func:`load_tuning_data`
  (evaluation JSONL, pair TSV/CSV, ``(question, paraphrase)`` tuples, labelled queries, or a
  store's query log: :func:`store_tuning_data`), the split by paraphrase cluster, embedding
  the data with the base encoder;
- :mod:`~walletfaq.quality.tuning.settings`: :class:`AdapterSettings`,
  :class:`FinetuneSettings` and their checks;
- :mod:`~walletfaq.quality.tuning.adapter`: the adapter's held-out split and training examples,
  its training loop (in-batch InfoNCE on frozen base vectors, early stopping) and
  :func:`retrieval_metrics`;
- :mod:`~walletfaq.quality.tuning.rows` and :mod:`~walletfaq.quality.tuning.finetune`: full
  fine-tuning with sentence-transformers' trainer (the same split as training rows of texts,
  then the training itself);
- :mod:`~walletfaq.quality.tuning.recalibration`: the tuned retriever's threshold, chosen
  again by the presets' rule on queries tuning did not train on;
- :mod:`~walletfaq.quality.tuning.result`: :class:`TuneResult`, :class:`Recalibration`,
  :class:`TuningWarning`.

Importing the package loads neither torch nor the training extras (``datasets``,
``accelerate``): training imports them when it runs, and :mod:`~walletfaq.quality.tuning.finetune`
is imported only when ``method="finetune"`` runs.
"""

from walletfaq.quality.tuning.adapter import retrieval_metrics
from walletfaq.quality.tuning.data import (
    TuningData,
    TuningSource,
    load_tuning_data,
    store_tuning_data,
)
from walletfaq.quality.tuning.result import (
    MIN_HOLDOUT_QUERIES,
    Recalibration,
    TuneResult,
    TuningWarning,
)
from walletfaq.quality.tuning.rows import TrainingRows, training_rows
from walletfaq.quality.tuning.runner import TuneMethod, tune
from walletfaq.quality.tuning.settings import AdapterSettings, FinetuneSettings

__all__ = [
    "MIN_HOLDOUT_QUERIES",
    "AdapterSettings",
    "FinetuneSettings",
    "Recalibration",
    "TrainingRows",
    "TuneMethod",
    "TuneResult",
    "TuningData",
    "TuningSource",
    "TuningWarning",
    "load_tuning_data",
    "retrieval_metrics",
    "store_tuning_data",
    "training_rows",
    "tune",
]
