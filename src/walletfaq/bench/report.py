"""The latency report as Markdown: each section rendered by the module that measures it."""

from __future__ import annotations

from typing import Any

from walletfaq.bench import (
    cache_hit,
    cold_start,
    end_to_end,
    lexical,
    machine,
    scale,
    synthetic_search,
    threads,
    throughput,
)


def render_search(report: dict[str, Any]) -> list[str]:
    """Section 3: search at scale, on real questions (3a) and random vectors (3b)."""
    out = ["## 3. Search only, at scale", ""]
    return out + scale.render(report) + synthetic_search.render(report)


def to_markdown(report: dict[str, Any]) -> str:
    """The report (as returned by :func:`walletfaq.bench.run_benchmark`) as Markdown tables."""
    parts = [
        machine.render,
        end_to_end.render,
        cache_hit.render,
        render_search,
        threads.render,
        throughput.render,
        lexical.render,
        cold_start.render,
    ]
    out: list[str] = []
    for part in parts:
        out += part(report)
    return "\n".join(out)
