"""Score fusion for :class:`~walletfaq.retrieval.hybrid.HybridRetriever`: per-question
z-scores summed with channel weights, the default weights, and the weight grid search."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from walletfaq.errors import WalletFAQError

LEXICAL_CHANNEL = "bm25"

DEFAULT_WEIGHTS: dict[str, float] = {LEXICAL_CHANNEL: 0.2, "use-m3": 0.7}
"""Weight of a channel relative to the primary encoder's 1.0 when none is given
(benchmarks/README.md, "Hybrid and ensemble"); other encoders default to 1.0."""

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
"""Weights tried for each non-primary channel by :meth:`HybridRetriever.fit_weights`."""


def fuse(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted sum of per-question z-scores: each channel's ``(questions, entries)``
    scores minus their row mean, over their row standard deviation (a constant row, e.g. a
    question sharing no word with any text, contributes 0)."""
    total: np.ndarray | None = None
    for channel, values in scores.items():
        weight = weights.get(channel, 0.0)
        if weight == 0.0:
            continue
        values = values.astype(np.float64)
        spread = values.std(axis=1, keepdims=True)
        z = np.divide(
            values - values.mean(axis=1, keepdims=True),
            spread,
            out=np.zeros_like(values),
            where=spread > 1e-12,
        )
        total = weight * z if total is None else total + weight * z
    if total is None:
        raise WalletFAQError("no channel has a weight above 0")
    return total


def is_weight(value: object) -> bool:
    """A finite number ≥ 0 (Python or numpy; ``True``/``False`` are not numbers here)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
        and bool(value >= 0)
    )


def checked_grid(grid: object) -> tuple[float, ...]:
    """``fit_weights``' grid as floats: a non-empty list of finite numbers ≥ 0."""
    values = tuple(grid) if isinstance(grid, Iterable) and not isinstance(grid, str) else None
    if not values or not all(is_weight(v) for v in values):
        raise WalletFAQError(
            f"grid must be a non-empty list of finite weights ≥ 0 to try, got {grid!r}"
        )
    return tuple(float(v) + 0.0 for v in values)


def mrr_at(fused: np.ndarray, gold: np.ndarray, depth: int) -> float:
    """MRR@``depth`` of fused ``(questions, entries)`` scores against a boolean ``gold`` mask of
    the same shape."""
    order = np.argsort(-fused, axis=1, kind="stable")[:, :depth]
    hit = np.take_along_axis(gold, order, axis=1)
    first = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
    return float(np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0).mean())


def best_rows(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For each question and entry, the row with the highest score within the entry."""
    n_rows = rows.shape[1]
    owner = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n_rows)))
    best = np.zeros((rows.shape[0], len(starts)), dtype=np.int64)
    for i in range(rows.shape[0]):
        order = np.lexsort((-rows[i], owner))  # by entry, best row first
        best[i] = order[starts]
    return best


def best_weights(
    scores: Mapping[str, np.ndarray],
    gold: np.ndarray,
    channels: Sequence[str],
    grid: Sequence[float],
    depth: int,
    *,
    fallback: Mapping[str, float],
) -> tuple[float, dict[str, float]]:
    """The MRR@``depth`` and the weights of the best combination of ``grid`` values for every
    channel but the first (the primary, fixed at 1.0); ``fallback`` when none scores above 0.
    Ties keep the first combination tried."""
    others = channels[1:]
    best: tuple[float, dict[str, float]] = (-1.0, dict(fallback))
    for combo in itertools.product(grid, repeat=len(others)):
        weights = {channels[0]: 1.0, **dict(zip(others, combo, strict=True))}
        value = mrr_at(fuse(scores, weights), gold, depth)
        if value > best[0] + 1e-12:
            best = (value, weights)
    return best
