"""Every Python snippet of README.md runs as written, pasted into a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_the_readme_has_python_snippets() -> None:
    assert len(python_blocks()) >= 3


@pytest.mark.parametrize("number", range(len(python_blocks())))
def test_readme_snippet_runs_as_written(number: int, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "WALLETFAQ_CACHE_DIR"}
    env["HF_HUB_OFFLINE"] = "1"
    env["MPLBACKEND"] = "Agg"
    done = subprocess.run(
        [sys.executable, "-c", python_blocks()[number]],
        cwd=tmp_path,  # not the repository: files the snippet needs, it must create or bundle
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
