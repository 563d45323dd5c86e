"""What :func:`~walletfaq.quality.evaluation.runner.compare` returns: a pandas frame that
prints as a readable table.

The frame has one row per system and, per metric ``m``, the columns ``m``, ``m low``,
``m high`` and ``m p``, then ``n``: too wide for pandas' own text form, which cuts it to
``[2 rows x 25 columns]``. ``print(frame)`` therefore prints :func:`comparison_summary`: one
line per metric, one column per system, ``mean [low, high]`` and the p-value. Everything else
is the pandas frame as usual (``frame.round(3).T``, ``frame["recall@1"]``; derived frames are
plain ``DataFrame`` objects). It needs pandas (the ``eval`` extra).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def comparison_summary(frame: pd.DataFrame) -> str:
    """The comparison ``frame`` as text: a header saying what the figures are, then one line
    per metric with ``mean [low, high]`` per system and, for the others than the baseline,
    ``p`` (paired randomisation test against it)."""
    attrs = frame.attrs
    metrics: Sequence[str] = attrs.get("metrics") or [
        c for c in frame.columns if c != "n" and not c.endswith((" low", " high", " p"))
    ]
    baseline = attrs.get("baseline", frame.index[0] if len(frame) else "")
    level = attrs.get("confidence", 0.95)
    counts = sorted({int(n) for n in frame["n"]}) if "n" in frame else []
    queries = " / ".join(str(n) for n in counts) or "?"
    lines = [
        f"compare: {queries} in-domain queries; mean [{level:.0%} bootstrap interval], "
        f"p = paired randomisation test against {baseline!r}"
    ]
    names = [str(name) for name in frame.index]
    cells = {
        metric: [_cell(frame, name, metric, name == baseline) for name in frame.index]
        for metric in metrics
    }
    widths = [
        max(len(names[i]), *(len(cells[m][i]) for m in metrics)) if metrics else len(names[i])
        for i in range(len(names))
    ]
    label = max([len("metric"), *(len(m) for m in metrics)])
    header = "  ".join(f"{n:<{w}}" for n, w in zip(names, widths, strict=True))
    lines.append(f"{'metric':<{label}}  {header}".rstrip())
    for metric in metrics:
        row = "  ".join(f"{c:<{w}}" for c, w in zip(cells[metric], widths, strict=True))
        lines.append(f"{metric:<{label}}  {row}".rstrip())
    return "\n".join(lines)


def _cell(frame: pd.DataFrame, name: Any, metric: str, is_baseline: bool) -> str:
    row = frame.loc[name]
    text = f"{row[metric]:.3f}"
    if f"{metric} low" in frame.columns and f"{metric} high" in frame.columns:
        text += f" [{row[f'{metric} low']:.3f}, {row[f'{metric} high']:.3f}]"
    p = row.get(f"{metric} p", math.nan)
    if not is_baseline and isinstance(p, float) and math.isfinite(p):
        text += f" p={p:.3f}"
    return text


@functools.cache
def comparison_frame_class() -> type:
    """The frame class :func:`compare` returns (made on first use: pandas is optional)."""
    import pandas as pd

    class ComparisonFrame(pd.DataFrame):  # type: ignore[misc]
        """A :func:`compare` result: a pandas frame whose ``print`` is
        :func:`comparison_summary` (``summary()`` returns the same text)."""

        @property
        def _constructor(self) -> type:
            return pd.DataFrame  # what is derived from it is a plain frame

        def summary(self) -> str:
            """The comparison as readable text (:func:`comparison_summary`)."""
            return comparison_summary(self)

        def __str__(self) -> str:
            return comparison_summary(self)

    return ComparisonFrame
