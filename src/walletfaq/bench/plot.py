"""The ``latency_vs_size.png`` figure: search p50 latency against corpus size."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_latency_vs_size(
    search: dict[str, Any], path: Path, scale: dict[str, Any] | None = None
) -> None:
    """Draw the synthetic-vector rows of ``search`` (flat, HNSW, numpy p50 against size)
    and, when ``scale`` has rows, HNSW on real question embeddings; save a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(n) for n in search)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for method, label in (
        ("flat", "FAISS flat (exact)"),
        ("hnsw", "FAISS HNSW M=32, random vectors"),
        ("numpy", "numpy brute force"),
    ):
        ax.plot(sizes, [search[str(n)][method]["p50_us"] for n in sizes], marker="o", label=label)
    rows = (scale or {}).get("rows") or {}
    if rows:
        real = sorted(int(n) for n in rows)
        ef = (scale or {})["default_ef_search"]
        ax.plot(
            real,
            [rows[str(n)]["hnsw"][str(ef)]["p50_us"] for n in real],
            marker="s",
            linestyle="--",
            label=f"FAISS HNSW M=32 ef={ef}, real questions",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (vectors, 384-d)")
    ax.set_ylabel("search p50 latency, batch 1, k=10 (µs)")
    ax.set_title("Search-only latency vs corpus size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
