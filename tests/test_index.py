"""FAISS search agrees with a plain numpy brute-force search."""

from __future__ import annotations

import numpy as np
import pytest

from walletfaq import IndexSpec, WalletFAQError
from walletfaq.index.vector_index import brute_force_search, build_index, search


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_returns_exactly_the_brute_force_top_k() -> None:
    vectors, queries = unit_rows(500, 32, 0), unit_rows(20, 32, 1)
    scores, rows = search(build_index(vectors, IndexSpec("flat")), queries, 10)
    ref_scores, ref_rows = brute_force_search(vectors, queries, 10)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


def test_hnsw_index_finds_nearly_all_exact_neighbours() -> None:
    vectors, queries = unit_rows(2000, 32, 2), unit_rows(50, 32, 3)
    _, rows = search(build_index(vectors, IndexSpec("hnsw")), queries, 10)
    _, ref_rows = brute_force_search(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, ref_rows, strict=True)])
    assert recall >= 0.95


def test_k_larger_than_the_index_is_capped() -> None:
    vectors = unit_rows(3, 8, 4)
    scores, rows = search(build_index(vectors), vectors[:1], 10)
    assert rows.shape == (1, 3) and rows[0, 0] == 0
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_auto_picks_flat_for_small_and_hnsw_for_large_corpora() -> None:
    assert IndexSpec("auto").resolved(100).kind == "flat"
    assert IndexSpec("auto").resolved(1_000_000).kind == "hnsw"


def test_bad_index_settings_are_rejected_with_the_value() -> None:
    with pytest.raises(WalletFAQError, match="'ivf'"):
        IndexSpec("ivf")  # type: ignore[arg-type]
    with pytest.raises(WalletFAQError, match="hnsw_m must be an int from 1 to 256, got 0"):
        IndexSpec("hnsw", hnsw_m=0)


def test_empty_vectors_cannot_be_indexed() -> None:
    with pytest.raises(WalletFAQError, match="non-empty"):
        build_index(np.zeros((0, 8), dtype=np.float32))
