"""Domain tuning: adapt a retriever to labelled questions of its own domain.

:func:`tune` is the entry point. It reads the labelled data
(:mod:`walletfaq.quality.tuning.data`: an evaluation JSONL file, a pair TSV/CSV file or
``(question, paraphrase)`` tuples, plus the corpus' own alt questions), holds out a seeded share
to measure before and after, and trains by one of two methods (settings:
:mod:`walletfaq.quality.tuning.settings`):

- ``method="adapter"`` learns a small map on top of the frozen encoder
  (:class:`~walletfaq.encoders.adapted.AdaptedEncoder`) on precomputed base vectors, in seconds
  (the split, the training loop and the metrics: :mod:`walletfaq.quality.tuning.adapter`);
- ``method="finetune"`` reads and splits the data the same way, then trains the encoder itself
  (:mod:`walletfaq.quality.tuning.finetune`).

A :class:`~walletfaq.HybridRetriever` is tuned encoder by encoder, then its channel weights are
fitted (:func:`_tune_hybrid`). The result is a
:class:`~walletfaq.quality.tuning.result.TuneResult`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from walletfaq.data.corpus import index_texts
from walletfaq.encoders.adapted import AdaptedEncoder
from walletfaq.errors import WalletFAQError
from walletfaq.quality.tuning.adapter import (
    _estimate_seconds,
    _holdout_metrics,
    _prepare,
    _train_adapter,
)
from walletfaq.quality.tuning.data import TuningSource, _encode_texts, load_tuning_data
from walletfaq.quality.tuning.recalibration import recalibrate as _recalibrate
from walletfaq.quality.tuning.result import (
    MIN_HOLDOUT_QUERIES,
    TuneResult,
    TuningWarning,
    _json_ready,
)
from walletfaq.quality.tuning.settings import AdapterSettings, FinetuneSettings, _method_settings

if TYPE_CHECKING:
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)


TuneMethod = Literal["adapter", "finetune"]
"""``"adapter"``: a linear map on frozen embeddings; ``"finetune"``: the encoder's transformer
layers trained with sentence-transformers' trainer (:mod:`walletfaq.quality.tuning.finetune`)."""


def tune(
    retriever: FAQRetriever | HybridRetriever,
    data: TuningSource,
    *,
    method: TuneMethod = "adapter",
    holdout: float = 0.2,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    recalibrate: bool = True,
    **settings: Any,
) -> TuneResult:
    """Adapt ``retriever`` to labelled questions of its domain; returns a new retriever.

    Args:
        retriever: the retriever to adapt (left unchanged). A
            :class:`~walletfaq.HybridRetriever`'s encoders are tuned, each with its own
            adapter on the same data, split and seed (with ``"finetune"``, only the primary
            is fine-tuned: the others keep their vectors); BM25 stays as it is. With
            evaluation-format data its channel
            weights are then fitted (:meth:`~walletfaq.HybridRetriever.fit_weights`) on the
            training queries, and ``before``/``after`` are the hybrid's metrics on the
            held-out queries. Pair data says nothing about which entry answers a question,
            so with pairs the weights are kept and ``before``/``after`` are the primary's.
        data: an evaluation JSONL file (``{"query", "gold"}``), a pair TSV/CSV file
            (``sentence1, sentence2, label``), a list of ``(question, paraphrase)`` tuples,
            labelled queries (``store.labelled_queries(since)``) or the store of record itself
            (its query log: feedback naming an entry, or "helpful" on an answer, labels a
            question; see :mod:`walletfaq.quality.tuning.data`). The corpus' alt questions
            are added as training pairs unless ``use_corpus_alts=False``.
        method: ``"adapter"`` (a linear map on frozen embeddings, trained in seconds; keeps
            the torch-free question path) or ``"finetune"`` (the model's transformer layers
            trained with sentence-transformers' trainer: minutes to tens of minutes on CPU,
            needs ``sentence-transformers[train]``, and questions then go through torch; see
            :mod:`walletfaq.quality.tuning.finetune`). An adapter can be tuned on a fine-tuned
            retriever.
        holdout: share of the labelled data held out (seeded split by paraphrase cluster or
            query) and measured before/after; never trained on. ``0`` = no measurement. The
            split depends only on the data, ``holdout`` and ``seed``, so both methods with the
            same ones hold out the same rows.
        epochs: training epochs; ``None`` = the method's default (adapter: at most 40, early
            stopping on a validation slice of the training part may stop sooner; finetune: 1).
        seed: seeds the split, the initialisation and the batch order.
        progress: show progress bars.
        recalibrate: choose the tuned retriever's no-answer threshold again, by the presets'
            rule, on labelled queries tuning did not train on (the bundled evaluation set
            without the training queries when the corpus is the bundled one, else the
            held-out and out-of-domain queries of evaluation-format data; see
            :mod:`walletfaq.quality.tuning.recalibration`). The base model's threshold does
            not fit a tuned model. ``False`` keeps it.
        **settings: any field of :class:`AdapterSettings` (``rank``, ``apply_to``, ``lr``...)
            or, for ``"finetune"``, of :class:`FinetuneSettings` (``batch_size``, ``lr``,
            ``hard_negatives``, ``max_steps``...).

    Returns:
        A :class:`TuneResult`: the new retriever, held-out metrics before and after, sizes,
        time and settings, the threshold recalibration (before/after coverage and
        out-of-domain acceptance) and whether the held-out split was too small to mean much.

    Warns:
        TuningWarning: fewer than :data:`~walletfaq.quality.tuning.result.MIN_HOLDOUT_QUERIES`
            held-out queries, or no labelled queries to recalibrate the threshold on.
        CalibrationWarning: the queries the threshold was recalibrated on are few.

    Raises:
        CorpusError: unreadable or malformed data (file, line and field named).
        WalletFAQError: an unknown method or setting, a bad ``holdout``, or too little data.
    """
    started = time.perf_counter()
    if hasattr(data, "labelled_queries"):  # a store: read its log once, warn once
        data = load_tuning_data(data, retriever.corpus.ids)
    result = _tune(retriever, data, method, holdout, epochs, seed, progress, settings)
    finished = _finish(retriever, data, result, holdout, recalibrate)
    return replace(finished, seconds=time.perf_counter() - started)


def _finish(
    retriever: FAQRetriever | HybridRetriever,
    data: TuningSource,
    result: TuneResult,
    holdout: float,
    recalibrate: bool,
) -> TuneResult:
    """Say when the held-out split is too small, and recalibrate the threshold."""
    too_small = holdout > 0 and result.holdout_size < MIN_HOLDOUT_QUERIES
    if too_small:
        warnings.warn(
            f"only {result.holdout_size} held-out queries measure before/after (fewer than "
            f"{MIN_HOLDOUT_QUERIES}): the difference is mostly luck; give more labelled data "
            "or a larger holdout",
            TuningWarning,
            stacklevel=3,
        )
    recalibration = None
    if recalibrate:
        tuning = load_tuning_data(data, retriever.corpus.ids)
        recalibration = _recalibrate(retriever, result.retriever, tuning, result.holdout_queries)
    return replace(result, recalibration=recalibration, holdout_too_small=too_small)


def _tune(
    retriever: FAQRetriever | HybridRetriever,
    data: TuningSource,
    method: TuneMethod,
    holdout: float,
    epochs: int | None,
    seed: int,
    progress: bool,
    settings: dict[str, Any],
) -> TuneResult:
    """:func:`tune` without its last step (:func:`_finish`)."""
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever

    started = time.perf_counter()
    if isinstance(retriever, HybridRetriever):
        return _tune_hybrid(
            retriever,
            data,
            method=method,
            holdout=holdout,
            epochs=epochs,
            seed=seed,
            progress=progress,
            settings=settings,
            started=started,
        )
    if not isinstance(retriever, FAQRetriever):
        raise WalletFAQError(
            f"tune needs a FAQRetriever or HybridRetriever to adapt (e.g. "
            f"FAQRetriever.from_corpus(...)), got {type(retriever).__name__}"
        )
    if method not in ("adapter", "finetune"):
        raise WalletFAQError(f"method must be 'adapter' or 'finetune', got {method!r}")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise WalletFAQError(f"holdout must be a number in [0, 1), got {holdout!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WalletFAQError(f"seed must be an int ≥ 0, got {seed!r}")
    if method == "finetune":
        return _finetune(retriever, data, holdout, epochs, seed, progress, settings, started)
    options = _method_settings(AdapterSettings, "adapter", epochs, settings)
    rng = np.random.default_rng(seed)

    from walletfaq.index.vector_index import build_index
    from walletfaq.retrieval.retriever import clean_question

    corpus = retriever.corpus
    tuning = load_tuning_data(data, corpus.ids)
    texts = [retriever.normalizer(clean_question(text)) for text in tuning.texts]
    _, owners = index_texts(corpus.entries, retriever.index_answers)
    row_entry = np.asarray(owners, dtype=np.int64)
    base_rows = retriever.index.reconstruct_n(0, retriever.index.ntotal)
    logger.info(
        "tuning %s on %s: %d texts to embed, then at most %d epochs",
        retriever.encoder.name,
        tuning.source,
        len(texts),
        options.epochs,
    )
    text_vectors = _encode_texts(retriever.encoder, texts, progress)
    problem = _prepare(
        tuning, text_vectors, base_rows, row_entry, corpus.ids, options, holdout, rng
    )
    n_train = int((~problem.validation).sum())
    if n_train < 2:
        raise WalletFAQError(
            f"only {n_train} training pair(s) after the holdout and validation split; the "
            "adapter learns from in-batch negatives and needs at least 2: give more labelled "
            "data, a smaller holdout or validation, or keep use_corpus_alts=True"
        )
    logger.info(
        "training on %d pairs (%d from the data, %d corpus alt pairs; %d set apart for "
        "early stopping); %d held-out queries; the training loop alone: about %.0f s at most "
        "on an idle machine",
        n_train,
        problem.data_examples,
        len(problem.anchor) - problem.data_examples,
        int(problem.validation.sum()),
        len(problem.holdout_queries),
        _estimate_seconds(n_train, problem.vectors.shape[1], options),
    )
    before = _holdout_metrics(problem, None, None, options.apply_to)
    weight, bias, log = _train_adapter(problem, options, seed, progress)
    after = _holdout_metrics(problem, weight, bias, options.apply_to)
    seconds = time.perf_counter() - started
    summary = {
        **asdict(options),
        "seed": seed,
        "holdout": holdout,
        "epochs_run": log["epochs_run"],
        "best_epoch": log["best_epoch"],
    }
    info = {
        "method": "adapter",
        "settings": summary,
        "data": {
            **tuning.summary(),
            "train_pairs": n_train,
            "validation_pairs": int(problem.validation.sum()),
            "corpus_alt_pairs": len(problem.anchor) - problem.data_examples,
            "holdout_queries": len(problem.holdout_queries),
        },
        "metrics": {
            "before": before,
            "after": after,
            **{k: v for k, v in log.items() if k != "history"},
        },
        "seconds": round(seconds, 3),
    }
    encoder = AdaptedEncoder(
        retriever.encoder, weight, bias, apply_to=options.apply_to, info=_json_ready(info)
    )
    index = build_index(encoder.corpus_rows(base_rows), retriever.index_spec)
    tuned = retriever._derived(encoder, index)
    logger.info(
        "tuned in %.1f s: held-out MRR@10 %s → %s",
        seconds,
        f"{before.get('mrr@10', math.nan):.4f}",
        f"{after.get('mrr@10', math.nan):.4f}",
    )
    return TuneResult(
        retriever=tuned,
        before=before,
        after=after,
        train_size=len(problem.anchor),
        holdout_size=len(problem.holdout_queries),
        seconds=seconds,
        method="adapter",
        settings=summary,
        holdout_queries=tuple(texts[i] for i in problem.holdout_queries),
    )


# --------------------------------------------------------------------------- hybrid


def _tune_hybrid(
    hybrid: HybridRetriever,
    data: TuningSource,
    *,
    method: TuneMethod,
    holdout: float,
    epochs: int | None,
    seed: int,
    progress: bool,
    settings: dict[str, Any],
    started: float,
) -> TuneResult:
    """``tune`` of a :class:`~walletfaq.HybridRetriever`: tune its encoders (adapter: every
    one; finetune: the primary), then fit the weights on the training queries of
    evaluation-format data (see :func:`tune`)."""
    from walletfaq.quality.evaluation.runner import evaluate
    from walletfaq.retrieval.retriever import clean_question

    def tune_member(member: FAQRetriever) -> TuneResult:
        return _tune(member, data, method, holdout, epochs, seed, progress, settings)

    primary = hybrid.primary
    result = tune_member(primary)
    # per-encoder maps: every encoder gets its own adapter, on the same data, split and seed
    members = [
        result.retriever,
        *(tune_member(m).retriever if method == "adapter" else m for m in hybrid.members[1:]),
    ]
    tuned = hybrid.with_members(members)  # type: ignore[arg-type]  # members are FAQRetrievers
    before, after = result.before, result.after
    fitted = False
    labelled = load_tuning_data(data, hybrid.corpus.ids)
    if labelled.kind == "queries":
        held = set(result.holdout_queries)
        train: list[dict[str, Any]] = []
        test: list[dict[str, Any]] = []
        for (query, _), gold in zip(labelled.positives, labelled.gold, strict=True):
            text = labelled.texts[query]
            is_held = primary.normalizer(clean_question(text)) in held
            (test if is_held else train).append({"query": text, "gold": list(gold)})
        if train:
            tuned.fit_weights(train)
            fitted = True
        if test:
            before = _report_metrics(evaluate(hybrid, test))  # type: ignore[arg-type]
            after = _report_metrics(evaluate(tuned, test))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    logger.info(
        "tuned the hybrid's encoders%s in %.1f s: held-out MRR@10 %s → %s",
        " and fitted its weights " + str(tuned.weights) if fitted else "",
        seconds,
        f"{before.get('mrr@10', math.nan):.4f}",
        f"{after.get('mrr@10', math.nan):.4f}",
    )
    return TuneResult(
        retriever=tuned,
        before=before,
        after=after,
        train_size=result.train_size,
        holdout_size=result.holdout_size,
        seconds=seconds,
        method=result.method,
        settings={
            **result.settings,
            "members_tuned": [m.encoder.name for m in hybrid.members]
            if method == "adapter"
            else [primary.encoder.name],
            "weights": dict(tuned.weights),
            "weights_fitted": fitted,
        },
        holdout_queries=result.holdout_queries,
    )


def _report_metrics(report: Any) -> dict[str, float]:
    """``{"mrr@10", "recall@1", "queries"}`` of an :class:`~walletfaq.EvalReport`, the shape
    of :attr:`TuneResult.before`."""
    return {
        "mrr@10": float(report.metrics["mrr@10"]),
        "recall@1": float(report.metrics["recall@1"]),
        "queries": float(len(report.results)),
    }


# --------------------------------------------------------------------------- finetune


def _finetune(
    retriever: FAQRetriever,
    data: TuningSource,
    holdout: float,
    epochs: int | None,
    seed: int,
    progress: bool,
    settings: dict[str, Any],
    started: float,
) -> TuneResult:
    """``method="finetune"``: validate the settings and the training extras before reading
    anything, then hand over to :func:`walletfaq.quality.tuning.finetune.finetune`."""
    from walletfaq.encoders.finetuned import base_model
    from walletfaq.quality.tuning.finetune import check_training_available, finetune

    options = _method_settings(FinetuneSettings, "finetune", epochs, settings)
    check_training_available()
    base_model(retriever.encoder)
    tuning = load_tuning_data(data, retriever.corpus.ids)
    return finetune(
        retriever, tuning, options, holdout=holdout, seed=seed, progress=progress, started=started
    )
