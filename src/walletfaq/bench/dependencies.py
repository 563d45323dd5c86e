"""Up-front check of the optional packages the benchmark needs (the ``[bench]`` extra)."""

from __future__ import annotations

import importlib.util

from walletfaq.errors import WalletFAQError

BENCH_MODULES = ("jieba", "bm25s", "matplotlib")
"""Modules of the ``[bench]`` extra that :func:`walletfaq.bench.run_benchmark` imports."""


class MissingDependencyError(WalletFAQError):
    """An optional dependency is not installed; the message names the extra to install."""


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a None entry in sys.modules raises ValueError
        return False


def check_dependencies(modules: tuple[str, ...] = BENCH_MODULES, extra: str = "bench") -> None:
    """Raise :class:`MissingDependencyError` naming every module of ``modules`` that is not
    installed and the extra that provides it; return ``None`` when all are present."""
    missing = [name for name in modules if not _installed(name)]
    if missing:
        names = ", ".join(missing)
        raise MissingDependencyError(
            f"the benchmark needs {names} (not installed); "
            f'install it with: pip install "walletfaq[{extra}]"'
        )
