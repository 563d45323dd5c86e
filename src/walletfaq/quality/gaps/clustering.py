"""Clustering the vectors of missed questions with scikit-learn's HDBSCAN.

:func:`cluster_labels` is the one call of HDBSCAN; its defaults (:data:`DEFAULT_CLUSTERING`)
were chosen by ``benchmarks/gaps.py`` and the measurement behind each is in
:class:`Clustering`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from walletfaq.errors import GapError


@dataclass(frozen=True)
class Clustering:
    """HDBSCAN's settings for gap mining, each chosen by a measurement.

    Measured by ``benchmarks/gaps.py`` (``gaps_parameters.py``; results in
    ``benchmarks/results/gaps.json``, "parameters") with the default model (e5-small) on a
    development task that shares nothing with the planted traffic topics: 15 groups of 6
    texts (question and alt questions of one bundled entry each, 10 seeded samples) among the
    132 real misses of the bundled evaluation set as background. A group is "found" when one
    cluster holds at least half of it at purity >= 0.8 and no other cluster is mostly it.
    The default finds 45 % of the groups (mean purity 0.68, recall 0.57, 60 % of all points
    left as noise); e5-small separates paraphrase groups only modestly (within-group cosine
    p50 0.90, between groups p90 0.88 in the first sample), which bounds every setting.

    Attributes:
        min_cluster_size: the smallest group of phrasings reported as a gap. 3 found the most
            groups (45 %); 2 found 27 % (pairs everywhere: 16.7 clusters of background per
            task), 4 found 35 % and 5 25 % (small real groups fall into noise).
        min_samples: how many neighbours make a phrasing "core" (``None``: as
            ``min_cluster_size``). ``None`` found 45 % of the groups, 1 or 2 found 39 % (purity
            0.75, recall 0.63, noise 50 %: fewer points dropped, more groups split).
        epsilon: ``cluster_selection_epsilon``, in euclidean units between unit vectors.
            0.1 changed nothing; 0.35, large enough to merge clusters, found 35 % and crashed
            scikit-learn 1.9.1 with NumPy 2 on some tasks (scikit-learn issue 33219), as did
            any epsilon with ``metric="cosine"``. Merging afterwards would not help either:
            two clusters of one split group have less similar centroids (cosine p50 0.89) than
            clusters of different groups (p50 0.90).
        method: ``cluster_selection_method``: ``"leaf"`` (the finest clusters of the tree)
            found 45 %, ``"eom"`` (excess of mass) at best 38 % (it keeps big clusters that
            swallow several groups; with ``allow_single_cluster`` it returned one cluster of
            everything). A topic with six or more distinct phrasings can come out of
            ``"leaf"`` as two clusters.
        metric: ``"euclidean"`` on unit vectors (a monotone function of cosine distance) or
            ``"cosine"``. Cosine found one group more out of 150 (45.3 vs 44.7 %), within
            noise; euclidean is kept because scikit-learn runs it on a tree, while cosine
            computes all n² distances (10,000 misses: 800 MB).
        allow_single_cluster: whether all misses may come out as one cluster; no effect with
            ``"leaf"`` in the measurement (kept off).
    """

    min_cluster_size: int = 3
    min_samples: int | None = None
    epsilon: float = 0.0
    method: Literal["eom", "leaf"] = "leaf"
    metric: Literal["euclidean", "cosine"] = "euclidean"
    allow_single_cluster: bool = False

    def __post_init__(self) -> None:
        size = self.min_cluster_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise GapError(f"expected an int >= 2, got {size!r}", field="min_cluster_size")
        samples = self.min_samples
        if samples is not None and (
            isinstance(samples, bool) or not isinstance(samples, int) or samples < 1
        ):
            raise GapError(f"expected an int >= 1 or None, got {samples!r}", field="min_samples")
        epsilon = self.epsilon
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or not math.isfinite(epsilon)
            or epsilon < 0
        ):
            raise GapError(f"expected a finite number >= 0, got {epsilon!r}", field="epsilon")
        if self.method not in ("eom", "leaf"):
            raise GapError(f"expected 'eom' or 'leaf', got {self.method!r}", field="method")
        if self.metric not in ("euclidean", "cosine"):
            raise GapError(f"expected 'euclidean' or 'cosine', got {self.metric!r}", field="metric")

    @property
    def smallest_input(self) -> int:
        """The fewest misses that can form a cluster (fewer give an empty report)."""
        return max(self.min_cluster_size, self.min_samples or 1)


DEFAULT_CLUSTERING = Clustering()
"""The settings :func:`~walletfaq.quality.gaps.find_gaps` uses unless told otherwise."""


def cluster_labels(vectors: np.ndarray, settings: Clustering = DEFAULT_CLUSTERING) -> np.ndarray:
    """HDBSCAN's cluster label of each row of ``vectors`` (unit rows, shape ``(n, dim)``):
    ``-1`` for noise, else ``0..k-1``. Fewer than :attr:`Clustering.smallest_input` rows are
    all noise."""
    n = len(vectors)
    if n < settings.smallest_input:
        return np.full(n, -1, dtype=np.int64)
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN(
        min_cluster_size=settings.min_cluster_size,
        min_samples=settings.min_samples,
        cluster_selection_epsilon=float(settings.epsilon),
        cluster_selection_method=settings.method,
        metric=settings.metric,
        allow_single_cluster=settings.allow_single_cluster,
        copy=True,
    )
    try:
        fitted = model.fit(np.asarray(vectors, dtype=np.float64))
    except TypeError as error:
        if settings.epsilon == 0:
            raise
        raise GapError(  # scikit-learn issue 33219: epsilon > 0 crashes on tied distances
            f"HDBSCAN failed with epsilon={settings.epsilon} ({error}): scikit-learn's "
            "cluster_selection_epsilon crashes with NumPy 2 on some data (scikit-learn issue "
            "33219); use epsilon=0",
            field="epsilon",
        ) from None
    return np.asarray(fitted.labels_, dtype=np.int64)
