"""What :func:`~walletfaq.quality.tuning.runner.tune` returns (:class:`TuneResult`), and
:func:`_json_ready`, which makes the training record stored with a tuned encoder JSON-ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever


@dataclass
class TuneResult:
    """What :func:`~walletfaq.quality.tuning.runner.tune` returns.

    Attributes:
        retriever: a new retriever over the same corpus whose encoder is the
            :class:`~walletfaq.encoders.adapted.AdaptedEncoder` or
            :class:`~walletfaq.encoders.finetuned.FinetunedEncoder` (the original is untouched);
            for a :class:`~walletfaq.HybridRetriever`, a new hybrid whose encoders are tuned
            (and whose weights are fitted, see :func:`~walletfaq.quality.tuning.runner.tune`).
        before: metrics of the original retriever on the held-out split
            (``{"mrr@10", "recall@1", "queries"}``; empty when ``holdout == 0``).
        after: the same metrics for the tuned retriever.
        train_size: training pairs (corpus alt pairs included), before the validation slice.
        holdout_size: held-out queries measured.
        seconds: wall time of the whole call (encoding included).
        method: ``"adapter"`` or ``"finetune"``.
        settings: the settings used (JSON-ready), plus ``epochs_run`` and ``best_epoch``
            (adapter) or ``steps`` and ``prompts`` (finetune); for a hybrid also
            ``weights`` and ``weights_fitted``.
        holdout_queries: the held-out query texts, cleaned and normalised as the retriever
            reads questions (never trained on: evaluate on these, not on the rest).
    """

    retriever: FAQRetriever | HybridRetriever
    before: dict[str, float]
    after: dict[str, float]
    train_size: int
    holdout_size: int
    seconds: float
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    holdout_queries: tuple[str, ...] = ()

    @property
    def encoder(self) -> Any:
        """The tuned encoder of :attr:`retriever`
        (:class:`~walletfaq.encoders.adapted.AdaptedEncoder` or
        :class:`~walletfaq.encoders.finetuned.FinetunedEncoder`)."""
        return self.retriever.encoder  # type: ignore[return-value]

    def summary(self) -> str:
        """One line per metric, before → after."""
        lines = [
            f"tuned with {self.method} on {self.train_size} pairs in {self.seconds:.1f} s; "
            f"held out: {self.holdout_size} queries"
        ]
        for key in ("mrr@10", "recall@1"):
            if key in self.before:
                lines.append(f"  {key:9s} {self.before[key]:.4f} → {self.after[key]:.4f}")
        return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_ready(value.item())
    return value
