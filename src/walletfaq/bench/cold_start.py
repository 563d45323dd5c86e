"""Section 7: cold start, the wall time of fresh processes (interpreter, ``import walletfaq``,
a CLI answer, ``import sentence_transformers``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from walletfaq.bench.common import table

COLD_QUESTION = "充值不到账怎么办"
"""The question the CLI answers in the cold-start measurement."""


def _median_wall(cmd: list[str], repeats: int, env: dict[str, str]) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {done.stderr[-2000:]}")
    return {"median_s": float(np.median(times)), "runs_s": times}


def measure(quick: bool) -> dict[str, Any]:
    """Median wall time of each command over 5 runs (2 in quick mode)."""
    python = sys.executable
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    reps = 2 if quick else 5
    ask_cmd = [python, "-m", "walletfaq", "ask", COLD_QUESTION, "--json"]
    subprocess.run(ask_cmd, env=env, capture_output=True, check=True)  # warm the index cache
    empty = _median_wall([python, "-c", "pass"], reps, env)
    imp = _median_wall([python, "-c", "import walletfaq"], reps, env)
    cli = _median_wall(ask_cmd, reps, env)
    st = _median_wall([python, "-c", "import sentence_transformers"], 1 if quick else 3, env)
    return {
        "python_startup_s": empty,
        "import_walletfaq_s": imp,
        "import_walletfaq_net_ms": (imp["median_s"] - empty["median_s"]) * 1e3,
        "cli_ask_json_s": cli,
        "import_sentence_transformers_s": st,
        "cli_vs_import_st_ratio": cli["median_s"] / st["median_s"],
    }


def render(report: dict[str, Any]) -> list[str]:
    """Section 7 as Markdown."""
    cs = report["cold_start"]
    return [
        "## 7. Cold start (fresh processes, wall time)",
        "",
        table(
            ["command", "median s"],
            [
                ["python -c pass", cs["python_startup_s"]["median_s"]],
                ["python -c 'import walletfaq'", cs["import_walletfaq_s"]["median_s"]],
                [
                    f"python -m walletfaq ask '{COLD_QUESTION}' --json (index cached)",
                    cs["cli_ask_json_s"]["median_s"],
                ],
                [
                    "python -c 'import sentence_transformers'",
                    cs["import_sentence_transformers_s"]["median_s"],
                ],
            ],
        ),
        "",
        f"`import walletfaq` net of interpreter start: "
        f"{cs['import_walletfaq_net_ms']:.0f} ms. CLI answer / import sentence-transformers "
        f"= {cs['cli_vs_import_st_ratio']:.2f}.",
        "",
    ]
