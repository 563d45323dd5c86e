"""Adapter training: learn the map of an :class:`~walletfaq.encoders.adapted.AdaptedEncoder`
on frozen base vectors.

A seeded share (``holdout``) of the labelled data is held out, never trained on nor used for
early stopping, and measured before and after tuning:

- evaluation data: the held-out queries are ranked against the corpus entries (each entry
  scored by its best row, as :meth:`FAQRetriever.ask` does); MRR@10 and recall@1.
- pair data: paraphrase clusters (connected components of the positive pairs) are split, so
  no held-out sentence or paraphrase of one is trained on. For every held-out positive pair,
  its ``sentence1`` is ranked against every other sentence of the held-out clusters (label-0
  partners included, as distractors); gold = the members of its own cluster. MRR@10, R@1.

:func:`_prepare` builds that split and the training examples (:class:`_Problem`; fine-tuning
reuses it, :mod:`walletfaq.quality.tuning.rows`), :func:`retrieval_metrics` measures.

Training (:func:`_train_adapter`) is in-batch InfoNCE (each anchor against every positive of the
batch plus its hard negative, paraphrases of the same cluster masked out), optionally
symmetric, with an L2 pull of the map towards the identity and early stopping on a validation
slice carved from the training part. It works on precomputed base vectors, so it takes seconds;
the corpus is not re-encoded (the new index rows are the old ones transformed).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from walletfaq.encoders.adapted import ApplyTo
from walletfaq.errors import WalletFAQError
from walletfaq.quality.tuning.data import TuningData, _components, _split_groups
from walletfaq.quality.tuning.settings import AdapterSettings

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- metrics


def retrieval_metrics(
    queries: np.ndarray,
    rows: np.ndarray,
    row_item: np.ndarray,
    gold: Sequence[set[int]],
    exclude: Sequence[int] | None = None,
    k: int = 10,
) -> dict[str, float]:
    """MRR@k and recall@1 of ranking items (each scored by its best row) for each query.

    Args:
        queries: ``(n, d)`` unit query vectors.
        rows: ``(m, d)`` unit candidate rows.
        row_item: ``(m,)`` item of each row.
        gold: the gold items of each query.
        exclude: an item to leave out of each query's ranking (the query itself), or ``-1``.
        k: MRR cutoff.

    Returns:
        ``{"mrr@10": ..., "recall@1": ..., "queries": n}`` (``mrr@{k}``).
    """
    n_items = int(row_item.max()) + 1 if len(row_item) else 0
    reciprocal, first = [], []
    for start in range(0, len(queries), 512):
        scores = queries[start : start + 512] @ rows.T
        per_item = _max_per_item(scores, row_item, n_items)
        for offset in range(scores.shape[0]):
            i = start + offset
            item_scores = per_item[offset]
            if exclude is not None and exclude[i] >= 0:
                item_scores[exclude[i]] = -np.inf
            golds = np.fromiter(gold[i], dtype=np.int64)
            best_gold = item_scores[golds].max()
            rank = 1 + int((item_scores > best_gold).sum())
            reciprocal.append(1.0 / rank if rank <= k else 0.0)
            first.append(1.0 if rank == 1 else 0.0)
    return {
        f"mrr@{k}": float(np.mean(reciprocal)) if reciprocal else math.nan,
        "recall@1": float(np.mean(first)) if first else math.nan,
        "queries": float(len(reciprocal)),
    }


def _max_per_item(scores: np.ndarray, row_item: np.ndarray, n_items: int) -> np.ndarray:
    order = np.argsort(row_item, kind="stable")
    sorted_items = row_item[order]
    starts = np.flatnonzero(np.r_[True, sorted_items[1:] != sorted_items[:-1]])
    reduced = np.maximum.reduceat(scores[:, order], starts, axis=1)
    out = np.full((scores.shape[0], n_items), -np.inf, dtype=np.float32)
    out[:, sorted_items[starts]] = reduced
    return out


# --------------------------------------------------------------------------- problem


@dataclass
class _Problem:
    """Everything training and measuring need, as arrays over one matrix of base vectors.

    ``vectors`` holds the encoded data texts, then the corpus rows. Each example is an
    (anchor, positive, negative or -1) triple of row positions in ``vectors`` with a group:
    two examples of one group are paraphrases, never each other's negatives.
    """

    vectors: np.ndarray
    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    group: np.ndarray
    validation: np.ndarray  # bool per example
    holdout_queries: np.ndarray  # positions in vectors
    holdout_rows: np.ndarray  # positions in vectors: the candidates
    holdout_item: np.ndarray  # item of each candidate row
    holdout_gold: list[set[int]]
    holdout_exclude: list[int] | None
    candidates_are_corpus: bool
    data_examples: int


def _prepare(
    data: TuningData,
    text_vectors: np.ndarray,
    corpus_rows: np.ndarray,
    row_entry: np.ndarray,
    entry_ids: Sequence[str],
    settings: AdapterSettings,
    holdout: float,
    rng: np.random.Generator,
) -> _Problem:
    n_texts = len(data.texts)
    vectors = np.vstack([text_vectors, corpus_rows]).astype(np.float32)
    entry_group_base = n_texts  # groups of corpus entries live after the text components
    anchors: list[int] = []
    positives: list[int] = []
    negatives: list[int] = []
    groups: list[int] = []
    held: set[int] = set()  # text positions that are held out

    if data.kind == "pairs":
        component = _components(n_texts, data.positives)
        pair_component = np.asarray([component[a] for a, _ in data.positives])
        held_components = set(_split_groups(pair_component, holdout, rng).tolist())
        held = {t for t in range(n_texts) if component[t] in held_components}
        negative_of: dict[int, list[int]] = {}
        if settings.hard_negatives:
            for a, b in data.negatives:
                if a in held or b in held:
                    continue  # never train on a held-out sentence
                negative_of.setdefault(a, []).append(b)
                negative_of.setdefault(b, []).append(a)
        for a, b in data.positives:
            if a in held:
                continue
            for x, y in ((a, b), (b, a)) if not settings.symmetric else ((a, b),):
                anchors.append(x)
                positives.append(y)
                options = negative_of.get(x, [])
                negatives.append(options[int(rng.integers(len(options)))] if options else -1)
                groups.append(int(component[x]))
        _report_negatives(data, settings.hard_negatives, held, set(anchors))
        queries = sorted({a for a, _ in data.positives if a in held})
        candidates = sorted(held)
        item = {text: i for i, text in enumerate(candidates)}
        holdout_gold = [
            {item[t] for t in candidates if component[t] == component[q] and t != q}
            for q in queries
        ]
        holdout_rows = np.asarray(candidates, dtype=np.int64)
        holdout_item = np.arange(len(candidates), dtype=np.int64)
        holdout_exclude: list[int] | None = [item[q] for q in queries]
        candidates_are_corpus = False
    else:
        position = {entry_id: i for i, entry_id in enumerate(entry_ids)}
        text_of = np.asarray([q for q, _ in data.positives])
        held_texts = set(_split_groups(text_of, holdout, rng).tolist())
        held = held_texts
        first_row: dict[int, list[int]] = {}
        for row, entry in enumerate(row_entry):
            first_row.setdefault(int(entry), []).append(row)
        queries = []
        holdout_gold = []
        for (query, _), gold in zip(data.positives, data.gold, strict=True):
            entries = [position[g] for g in gold]
            if query in held:
                queries.append(query)
                holdout_gold.append(set(entries))
                continue
            for entry in entries:
                for row in first_row[entry]:
                    anchors.append(query)
                    positives.append(n_texts + row)
                    negatives.append(-1)
                    groups.append(entry_group_base + entry)
        holdout_rows = n_texts + np.arange(len(corpus_rows), dtype=np.int64)
        holdout_item = np.asarray(row_entry, dtype=np.int64)
        holdout_exclude = None
        candidates_are_corpus = True
    data_examples = len(anchors)

    if settings.use_corpus_alts:
        for entry in np.unique(row_entry):
            rows = np.flatnonzero(row_entry == entry)
            for i, first in enumerate(rows):
                for second in rows[i + 1 :]:
                    anchors.append(n_texts + int(first))
                    positives.append(n_texts + int(second))
                    negatives.append(-1)
                    groups.append(entry_group_base + int(entry))

    anchor = np.asarray(anchors, dtype=np.int64)
    group = np.asarray(groups, dtype=np.int64)
    negative = np.asarray(negatives, dtype=np.int64)
    if settings.mined_negatives and len(anchor):
        negative = _mine_negatives(vectors, anchor, np.asarray(positives), group, negative)
    validation = np.zeros(len(anchor), dtype=bool)
    if settings.validation > 0 and len(np.unique(group)) > 2:
        picked = set(_split_groups(group, settings.validation, rng).tolist())
        validation = np.asarray([g in picked for g in group], dtype=bool)
    if not len(anchor) or validation.all():
        raise WalletFAQError(
            "no training pair is left after holding out the evaluation split; give more "
            "labelled data or a smaller holdout"
        )
    return _Problem(
        vectors=vectors,
        anchor=anchor,
        positive=np.asarray(positives, dtype=np.int64),
        negative=negative,
        group=group,
        validation=validation,
        holdout_queries=np.asarray(queries, dtype=np.int64),
        holdout_rows=holdout_rows,
        holdout_item=holdout_item,
        holdout_gold=holdout_gold,
        holdout_exclude=holdout_exclude,
        candidates_are_corpus=candidates_are_corpus,
        data_examples=data_examples,
    )


def _report_negatives(
    data: TuningData, hard_negatives: bool, held: set[int], anchors: set[int]
) -> None:
    """Say what became of the label-0 pairs: none is dropped without a line saying why."""
    if not data.negatives:
        return
    total = len(data.negatives)
    if not hard_negatives:
        logger.info(
            "%d label-0 pair(s) of %s not used as hard negatives (hard_negatives=False, the "
            "adapter's default: they measured no gain; pass hard_negatives=True to use them)",
            total,
            data.source,
        )
        return
    held_out = sum(1 for a, b in data.negatives if a in held or b in held)
    unpaired = sum(
        1
        for a, b in data.negatives
        if not (a in held or b in held) and a not in anchors and b not in anchors
    )
    used = total - held_out - unpaired
    if held_out or unpaired:
        logger.info(
            "label-0 pairs of %s: %d used as hard negatives, %d not: %d touch a held-out "
            "sentence (never trained on), %d have no sentence with a label-1 paraphrase (a hard "
            "negative is used against a sentence that has one)",
            data.source,
            used,
            total - used,
            held_out,
            unpaired,
        )


def _mine_negatives(
    vectors: np.ndarray,
    anchor: np.ndarray,
    positive: np.ndarray,
    group: np.ndarray,
    negative: np.ndarray,
) -> np.ndarray:
    """For anchors without a labelled negative: the most similar positive of another group
    (base vectors), from the training examples themselves."""
    out = negative.copy()
    pool = np.unique(positive)
    pool_group = np.full(len(pool), -1, dtype=np.int64)
    lookup = {int(p): i for i, p in enumerate(pool)}
    for p, g in zip(positive, group, strict=True):
        pool_group[lookup[int(p)]] = g
    pool_vectors = vectors[pool]
    for start in range(0, len(anchor), 1024):
        scores = vectors[anchor[start : start + 1024]] @ pool_vectors.T
        same = pool_group[None, :] == group[start : start + 1024, None]
        scores[same] = -np.inf
        best = pool[np.argmax(scores, axis=1)]
        chunk = out[start : start + 1024]
        chunk[chunk < 0] = best[chunk < 0]
    return out


# --------------------------------------------------------------------------- training


def _holdout_metrics(
    problem: _Problem, weight: np.ndarray | None, bias: np.ndarray | None, apply_to: ApplyTo
) -> dict[str, float]:
    if not len(problem.holdout_queries):
        return {}
    queries = problem.vectors[problem.holdout_queries]
    rows = problem.vectors[problem.holdout_rows]
    if weight is not None:
        queries = _apply(queries, weight, bias)
        if apply_to == "both":
            rows = _apply(rows, weight, bias)
    return retrieval_metrics(
        queries, rows, problem.holdout_item, problem.holdout_gold, problem.holdout_exclude
    )


def _apply(vectors: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    mapped = vectors @ weight.T
    if bias is not None:
        mapped = mapped + bias
    norms = np.linalg.norm(mapped, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (mapped / norms).astype(np.float32)


def _validation_metric(
    problem: _Problem, weight: np.ndarray, bias: np.ndarray | None, apply_to: ApplyTo
) -> float:
    """MRR@10 of the validation anchors ranking the validation positives (gold = own group)."""
    chosen = np.flatnonzero(problem.validation)
    if not len(chosen):
        return math.nan
    pool, first = np.unique(problem.positive[chosen], return_index=True)
    pool_group = problem.group[chosen][first]
    anchors, anchor_first = np.unique(problem.anchor[chosen], return_index=True)
    anchor_group = problem.group[chosen][anchor_first]
    queries = _apply(problem.vectors[anchors], weight, bias)
    rows = problem.vectors[pool]
    if apply_to == "both":
        rows = _apply(rows, weight, bias)
    item = np.arange(len(pool), dtype=np.int64)
    gold = [set(np.flatnonzero(pool_group == g).tolist()) for g in anchor_group]
    exclude = [int(np.searchsorted(pool, a)) if a in set(pool.tolist()) else -1 for a in anchors]
    keep = [i for i, g in enumerate(gold) if g - {exclude[i]}]
    if not keep:
        return math.nan
    return retrieval_metrics(
        queries[keep], rows, item, [gold[i] for i in keep], [exclude[i] for i in keep]
    )["mrr@10"]


def _train_adapter(
    problem: _Problem, settings: AdapterSettings, seed: int, progress: bool
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Train the map; returns ``(weight, bias, log)``. Only training examples (not the
    validation slice, never the holdout) contribute gradients."""
    from walletfaq._progress import progress_bar

    rng = np.random.default_rng(seed + 1)
    dim = problem.vectors.shape[1]
    train = np.flatnonzero(~problem.validation)
    eye = np.eye(dim, dtype=np.float32)
    params: dict[str, np.ndarray] = {}
    if settings.rank is None:
        params["full"] = eye.copy()
    else:
        init = np.random.default_rng(seed)
        params["left"] = np.zeros((dim, settings.rank), dtype=np.float32)
        params["right"] = (init.standard_normal((settings.rank, dim)) / math.sqrt(dim)).astype(
            np.float32
        )
    if settings.bias:
        params["bias"] = np.zeros(dim, dtype=np.float32)
    optimizer = _Adam(lr=settings.lr)
    batches_per_epoch = max(1, math.ceil(len(train) / settings.batch_size))

    def weight() -> np.ndarray:
        if settings.rank is None:
            return params["full"]
        return eye + params["left"] @ params["right"]

    def step(batch: np.ndarray) -> float:
        loss, grads = adapter_loss_and_gradients(params, problem, batch, settings, weight(), eye)
        optimizer.step(params, grads)
        return loss

    def snapshot() -> tuple[np.ndarray, np.ndarray | None]:
        b = params["bias"].copy() if settings.bias else None
        return weight().astype(np.float32).copy(), b

    best_w, best_b = snapshot()
    best_score = _validation_metric(problem, best_w, best_b, settings.apply_to)
    start_score = best_score
    best_epoch = 0
    history: list[dict[str, float]] = []
    bar = progress_bar(
        range(1, settings.epochs + 1), desc="tuning", unit="epoch", disable=not progress
    )
    stale = 0
    stopped_early = False
    epochs_run = 0
    started = time.perf_counter()
    for epoch in bar:
        order = rng.permutation(train)
        losses = [
            step(order[i * settings.batch_size : (i + 1) * settings.batch_size])
            for i in range(batches_per_epoch)
            if len(order[i * settings.batch_size : (i + 1) * settings.batch_size]) > 1
        ]
        epochs_run = epoch
        w, b = snapshot()
        score = _validation_metric(problem, w, b, settings.apply_to)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_mrr@10": score})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{score:.3f}")
        if epoch == 1 and settings.epochs > 1:  # measured, so it holds on a busy machine too
            took = time.perf_counter() - started
            logger.info(
                "first epoch took %.1f s: at most %.0f s more for the other %d epochs (early "
                "stopping usually ends sooner)",
                took,
                took * (settings.epochs - 1),
                settings.epochs - 1,
            )
        if math.isnan(score) or settings.patience == 0:
            best_w, best_b, best_epoch = w, b, epoch
            continue
        if score > best_score:
            best_w, best_b, best_score, best_epoch, stale = w, b, score, epoch, 0
        else:
            stale += 1
            if stale >= settings.patience:  # the bar ends short: say why, on it and in the log
                stopped_early = True
                note = (
                    f"stopped early at epoch {epoch} of {settings.epochs}: no better validation"
                    f" MRR@10 for {settings.patience} epochs; kept epoch {best_epoch} "
                    f"({best_score:.3f})"
                )
                bar.set_postfix_str(note)  # before the break, which closes the bar
                logger.info("tuning %s", note)
                break
    bar.close()
    log = {
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "validation_mrr@10_start": start_score,
        "validation_mrr@10_best": best_score,
        "stopped_early": stopped_early,
        "history": history,
    }
    return best_w, best_b, log


def adapter_loss_and_gradients(
    params: dict[str, np.ndarray],
    problem: _Problem,
    batch: np.ndarray,
    settings: AdapterSettings,
    weight: np.ndarray,
    eye: np.ndarray,
) -> tuple[float, dict[str, np.ndarray]]:
    """The adapter's training loss on one batch and its gradient for every parameter (numpy;
    checked against torch autograd by the tests).

    The map is ``y = unit(x @ W.T + b)`` (``W = I + left @ right`` with a rank). Anchors are
    mapped; positives and negatives too with ``apply_to="both"``. The loss is in-batch
    softmax cross-entropy of ``a·p / temperature`` (pairs of the same paraphrase group, other
    than the diagonal, masked out; an anchor's label-0 partner as an extra column), averaged
    with the same over the columns when ``symmetric``, plus ``identity_decay · |W - I|²``.
    """
    vectors = problem.vectors
    both = settings.apply_to == "both"
    bias = params.get("bias")
    tau = settings.temperature

    def mapped(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = x @ weight.T
        if bias is not None:
            y = y + bias
        norm = np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        return y / norm, norm

    xa = vectors[problem.anchor[batch]]
    a, norm_a = mapped(xa)
    xp = vectors[problem.positive[batch]]
    p, norm_p = mapped(xp) if both else (xp, None)
    groups = problem.group[batch]
    same = groups[:, None] == groups[None, :]
    np.fill_diagonal(same, False)
    logits = (a @ p.T) / tau
    logits[same] = -np.inf
    neg_index = problem.negative[batch]
    has_neg = neg_index >= 0
    xn = vectors[neg_index[has_neg]]
    n, norm_n = mapped(xn) if both and len(xn) else (xn, None)
    full = np.concatenate([logits, (a @ n.T) / tau], axis=1) if len(xn) else logits
    loss, g_full = _cross_entropy_on_diagonal(full)
    g_logits, g_neg = g_full[:, : len(batch)], g_full[:, len(batch) :]
    if settings.symmetric:
        loss_t, g_t = _cross_entropy_on_diagonal(logits.T)
        loss = 0.5 * (loss + loss_t)
        g_logits = 0.5 * (g_logits + g_t.T)
        g_neg = 0.5 * g_neg
    g_a = (g_logits @ p + (g_neg @ n if len(xn) else 0.0)) / tau
    g_w = np.zeros_like(weight)
    g_b = np.zeros(weight.shape[0], dtype=np.float32)
    pieces: list[tuple[np.ndarray, np.ndarray, Any, np.ndarray]] = [(g_a, a, norm_a, xa)]
    if both:
        pieces.append(((g_logits.T @ a) / tau, p, norm_p, xp))
        if len(xn):
            pieces.append(((g_neg.T @ a) / tau, n, norm_n, xn))
    for g_out, out, norm, x in pieces:
        g_y = (g_out - out * np.sum(out * g_out, axis=1, keepdims=True)) / norm
        g_w += g_y.T @ x
        g_b += g_y.sum(axis=0)
    if settings.identity_decay > 0:
        loss += settings.identity_decay * float(((weight - eye) ** 2).sum())
        g_w += 2 * settings.identity_decay * (weight - eye)
    grads: dict[str, np.ndarray] = {}
    if "full" in params:
        grads["full"] = g_w
    else:
        grads["left"] = g_w @ params["right"].T
        grads["right"] = params["left"].T @ g_w
    if bias is not None:
        grads["bias"] = g_b
    return float(loss), {name: value.astype(np.float32) for name, value in grads.items()}


def _cross_entropy_on_diagonal(logits: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of each row against its diagonal column, and its gradient
    with respect to ``logits`` (``-inf`` entries take no probability)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probability = exp / exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(logits))
    loss = -float(np.mean(np.log(probability[rows, rows])))
    grad = probability
    grad[rows, rows] -= 1.0
    return loss, grad / len(logits)


@dataclass
class _Adam:
    """Adam (torch's ``AdamW`` with ``weight_decay=0``: betas 0.9/0.999, eps 1e-8)."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    steps: int = 0
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads``."""
        self.steps += 1
        for name, grad in grads.items():
            first, second = self.moments.get(name, (np.zeros_like(grad), np.zeros_like(grad)))
            first = self.beta1 * first + (1 - self.beta1) * grad
            second = self.beta2 * second + (1 - self.beta2) * grad * grad
            self.moments[name] = (first, second)
            corrected_first = first / (1 - self.beta1**self.steps)
            corrected_second = second / (1 - self.beta2**self.steps)
            params[name] -= (
                self.lr * corrected_first / (np.sqrt(corrected_second) + self.eps)
            ).astype(np.float32)


def _estimate_seconds(pairs: int, dim: int, settings: AdapterSettings) -> float:
    """Rough upper bound of the training loop alone (not embedding the data, measuring or
    recalibrating) on an idle machine: ≈ 25 µs per pair and epoch at dim 384 (scales with
    dim²); a busy machine takes several times longer, which the first epoch's measured time
    (logged) shows."""
    return settings.epochs * pairs * 25e-6 * (dim / 384) ** 2 + 1.0
