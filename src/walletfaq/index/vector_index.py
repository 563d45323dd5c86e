"""FAISS vector indexes over unit-norm embeddings (inner product = cosine similarity).

``flat`` is exact (``IndexFlatIP``) and the default; ``hnsw`` (``IndexHNSWFlat``) is
approximate and meant for large corpora; ``auto`` picks flat below
:data:`AUTO_HNSW_THRESHOLD` vectors and HNSW above. :func:`brute_force_search` is the plain
numpy reference the FAISS results are tested against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    import faiss

IndexKind = Literal["flat", "hnsw", "auto"]

AUTO_HNSW_THRESHOLD = 10_000
"""With ``kind="auto"``, corpora with at least this many vectors get an HNSW index.

Chosen by measurement on real question embeddings (benchmarks/README.md, "search at scale"):
exact search passes 1 ms per question (10 % of encoding one) at 6,000–15,000 vectors on 2
cores, while HNSW stays at 0.2–0.4 ms with recall@10 ≥ 0.987 up to 200,000 vectors."""


HNSW_LIMITS = {"hnsw_m": 256, "ef_construction": 4_096, "ef_search": 4_096}
"""The largest HNSW settings accepted (a graph degree past 256 or a beam past 4,096 only costs
memory and time: recall is ≥ 0.985 at the defaults, 32/200/64)."""


@dataclass(frozen=True)
class IndexSpec:
    """How to build the vector index.

    Args:
        kind: ``"flat"`` (exact), ``"hnsw"`` (approximate) or ``"auto"``.
        hnsw_m: HNSW graph degree (more = better recall, more memory).
        ef_construction: HNSW build-time beam width.
        ef_search: HNSW query-time beam width (more = better recall, slower). 64 is the
            smallest width with recall@10 ≥ 0.985 at every size measured on real questions
            (0.987–0.995 up to 200,000 vectors, 0.2–0.4 ms); keep it ≥ 40, the rows ``ask``
            fetches.
    """

    kind: IndexKind = "flat"
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 64

    def __post_init__(self) -> None:
        if self.kind not in ("flat", "hnsw", "auto"):
            raise WalletFAQError(f"index kind must be 'flat', 'hnsw' or 'auto', got {self.kind!r}")
        for name, most in HNSW_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise WalletFAQError(
                    f"IndexSpec.{name} must be an int from 1 to {most:,}, got {value!r}"
                )

    def resolved(self, n_vectors: int) -> IndexSpec:
        """This spec with ``auto`` replaced by the kind chosen for ``n_vectors`` vectors."""
        if self.kind != "auto":
            return self
        kind: IndexKind = "hnsw" if n_vectors >= AUTO_HNSW_THRESHOLD else "flat"
        return IndexSpec(kind, self.hnsw_m, self.ef_construction, self.ef_search)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (stored in the index manifest)."""
        return asdict(self)


def build_index(vectors: np.ndarray, spec: IndexSpec = IndexSpec()) -> faiss.Index:
    """Build a FAISS inner-product index over ``vectors`` of shape ``(n, dim)``, float32."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise WalletFAQError(f"expected a non-empty (n, dim) array, got shape {vectors.shape}")
    dim = vectors.shape[1]
    spec = spec.resolved(vectors.shape[0])
    index: faiss.Index
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        hnsw = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = spec.ef_construction
        hnsw.hnsw.efSearch = spec.ef_search
        index = hnsw
    index.add(vectors)
    return index


def set_ef_search(index: faiss.Index, ef_search: int) -> None:
    """Set an HNSW index's query-time beam width (``efSearch``)."""
    import faiss

    faiss.ParameterSpace().set_index_parameter(index, "efSearch", ef_search)


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows per query: ``(scores, rows)``, both ``(n_queries, k)``, best first.

    ``k`` is capped at the index size; missing results (HNSW) have row ``-1``.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    k = min(k, index.ntotal)
    scores, rows = index.search(queries, k)
    return scores, rows


def brute_force_search(
    vectors: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by inner product in plain numpy: the reference for :func:`search`."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    scores = queries @ np.asarray(vectors, dtype=np.float32).T
    k = min(k, scores.shape[1])
    rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, rows, axis=1), rows


def set_search_threads(count: int) -> None:
    """Set FAISS's OpenMP thread count (1 is fastest for single queries on small indexes)."""
    import faiss

    faiss.omp_set_num_threads(count)
