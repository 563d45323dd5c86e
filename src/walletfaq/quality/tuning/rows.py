"""Fine-tuning's training rows: the held-out split of the tuning data, as texts.

:func:`training_rows` splits the data with the adapter's own split
(:func:`~walletfaq.quality.tuning.adapter._prepare`, seeded the same way, so both methods hold
out the same clusters or queries) and lists each training row as texts (anchor, positive, hard
negative or ``None``), plus the corpus' question ↔ alt-question pairs; :class:`TrainingRows`
also carries what measuring the held-out part needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from walletfaq.errors import WalletFAQError
from walletfaq.quality.tuning.adapter import _prepare
from walletfaq.quality.tuning.data import TuningData
from walletfaq.quality.tuning.settings import AdapterSettings, FinetuneSettings


@dataclass(frozen=True)
class TrainingRows:
    """The split, as texts.

    Attributes:
        anchors, positives: one training row each (user-question side, FAQ-row side).
        negatives: the row's hard negative, or ``None``.
        data_rows: how many rows come from the labelled data (the rest: corpus alt pairs).
        holdout_queries: held-out query texts, measured before/after.
        holdout_candidates: the texts they are ranked against (held-out pair sentences), or
            empty when the candidates are the corpus rows (evaluation-format data).
        holdout_item, holdout_gold, holdout_exclude: as for
            :func:`~walletfaq.quality.tuning.adapter.retrieval_metrics`.
    """

    anchors: tuple[str, ...]
    positives: tuple[str, ...]
    negatives: tuple[str | None, ...]
    data_rows: int
    holdout_queries: tuple[str, ...]
    holdout_candidates: tuple[str, ...]
    holdout_item: np.ndarray
    holdout_gold: list[set[int]]
    holdout_exclude: list[int] | None


def training_rows(
    data: TuningData,
    texts: Sequence[str],
    row_texts: Sequence[str],
    row_entry: np.ndarray,
    entry_ids: Sequence[str],
    settings: FinetuneSettings,
    holdout: float,
    rng: np.random.Generator,
    vectors: np.ndarray | None = None,
) -> TrainingRows:
    """Split ``data`` (held-out share ``holdout``, seeded by ``rng`` exactly as the adapter's
    split, so an adapter trained later with the same seed holds out the same clusters) and
    list the training rows as texts.

    Args:
        data: the labelled data.
        texts: ``data.texts`` after cleaning and normalising (what the model will see).
        row_texts: the corpus' index texts; ``row_entry`` their entry positions.
        entry_ids: the corpus entry ids (gold labels of evaluation data).
        vectors: base vectors of ``texts`` then ``row_texts`` (needed only for
            ``mined_negatives``).
    """
    split = AdapterSettings(
        hard_negatives=settings.hard_negatives,
        mined_negatives=settings.mined_negatives,
        symmetric=True,
        use_corpus_alts=False,
        validation=0.0,
    )
    n_texts = len(texts)
    if vectors is None:
        if settings.mined_negatives:
            raise WalletFAQError(
                "mined_negatives needs the base vectors of the texts and rows (vectors=...)"
            )
        vectors = np.zeros((n_texts + len(row_texts), 1), dtype=np.float32)
    problem = _prepare(
        data, vectors[:n_texts], vectors[n_texts:], row_entry, entry_ids, split, holdout, rng
    )
    everything = [*texts, *row_texts]
    anchors = [everything[i] for i in problem.anchor]
    positives = [everything[i] for i in problem.positive]
    negatives: list[str | None] = [everything[i] if i >= 0 else None for i in problem.negative]
    data_rows = len(anchors)
    held_queries = tuple(everything[i] for i in problem.holdout_queries)
    if problem.candidates_are_corpus:
        candidates: tuple[str, ...] = ()
    else:
        candidates = tuple(everything[i] for i in problem.holdout_rows)
    held = set(held_queries) | set(candidates)
    if settings.use_corpus_alts:
        for entry in np.unique(row_entry):
            rows = np.flatnonzero(row_entry == entry)
            question = row_texts[int(rows[0])]
            for row in rows[1:]:  # question ↔ each alt: the shared anchor keeps them apart
                if question in held or row_texts[int(row)] in held:
                    continue  # a corpus text that is also a held-out sentence stays unseen
                anchors.append(question)
                positives.append(row_texts[int(row)])
                negatives.append(None)
    keep = [i for i, (a, p) in enumerate(zip(anchors, positives, strict=True)) if a != p]
    return TrainingRows(
        anchors=tuple(anchors[i] for i in keep),
        positives=tuple(positives[i] for i in keep),
        negatives=tuple(negatives[i] for i in keep),
        data_rows=sum(1 for i in keep if i < data_rows),
        holdout_queries=held_queries,
        holdout_candidates=candidates,
        holdout_item=problem.holdout_item,
        holdout_gold=problem.holdout_gold,
        holdout_exclude=problem.holdout_exclude,
    )
