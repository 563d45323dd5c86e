"""walletfaq's latency benchmark, one module per section (not imported by ``walletfaq``).

=======================  ==================================================================
module                   measures
=======================  ==================================================================
``end_to_end``           1. ``ask()`` at batch 1 vs its parts and vs sentence-transformers
``cache_hit``            2. a repeated question served by the cache
``scale``                3a. search at scale on real question embeddings (flat, SQ8, HNSW)
``synthetic_search``     3b. search on random unit vectors (worst case), flat/HNSW/numpy
``threads``              4. FAISS/torch thread settings, encoder ``OMP_NUM_THREADS``
``throughput``           5. ``ask_batch`` throughput, index build time, peak memory
``lexical``              6. BM25 (jieba) baseline vs the dense retriever
``cold_start``           7. fresh-process wall times
=======================  ==================================================================

``machine`` describes the machine, ``questions`` loads and embeds the real questions,
``report`` renders the Markdown (each section by its own module's ``render``), ``plot`` draws
the figure, ``runner`` runs everything in a safe order, ``dependencies`` checks the ``[bench]``
extra up front.

    python benchmarks/latency.py [--quick]      # or: walletfaq bench [--quick] [--out DIR]
    python benchmarks/scale.py                  # section 3a alone, up to 1M vectors

Every timing uses :func:`time.perf_counter`, after warm-up; variants compared with each other
are interleaved query by query (rotating their order) so that background load hits them alike.
Long loops stop early once a time budget is spent; the number of samples taken is reported.
"""

from __future__ import annotations

from walletfaq.bench.dependencies import MissingDependencyError, check_dependencies
from walletfaq.bench.report import to_markdown
from walletfaq.bench.runner import default_out_dir, run_benchmark, write_report
from walletfaq.bench.synthetic_search import QUICK_SIZES

__all__ = [
    "QUICK_SIZES",
    "MissingDependencyError",
    "check_dependencies",
    "default_out_dir",
    "run_benchmark",
    "to_markdown",
    "write_report",
]
