"""What :func:`~walletfaq.quality.tuning.runner.tune` returns (:class:`TuneResult`, with its
:class:`Recalibration`), the :class:`TuningWarning` it may issue, and :func:`_json_ready`, which
makes the training record stored with a tuned encoder JSON-ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.quality.evaluation.abstention import OperatingPoint

if TYPE_CHECKING:
    from walletfaq.quality.clarify import MarginCalibration
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever


MIN_HOLDOUT_QUERIES = 50
"""Below this many held-out queries the before/after figures mean little (with 50 queries a
recall@1 near 0.8 has a 95 % interval of about 0.67-0.89; with 10, 0.49-0.94): :func:`tune`
warns and sets :attr:`TuneResult.holdout_too_small`."""


class TuningWarning(UserWarning):
    """A tuning result to read with care: too few held-out queries to measure it, or a
    threshold that could not be recalibrated."""


@dataclass(frozen=True)
class Recalibration:
    """The tuned retriever's threshold, chosen again (:func:`recalibrate`).

    Attributes:
        source: which labelled queries it was chosen on (none of them trained on).
        rule: the rule applied (:data:`~walletfaq.quality.calibration.PRESET_RULE`).
        threshold_before: the base retriever's threshold (what the tuned one had).
        threshold_after: the threshold chosen for the tuned retriever.
        before: the base retriever on those queries, at its threshold.
        after: the tuned retriever, at the new threshold.
        kept: the tuned retriever at the base threshold (what keeping it would have done).
        reached: whether a threshold met the rule (else the best precision was taken).
        margin_before: the clarify margin the tuned retriever had (the base's).
        margin: the clarify margin chosen at the new threshold, and its curves (``None``:
            not chosen again).
    """

    source: str
    rule: str
    threshold_before: float
    threshold_after: float
    before: OperatingPoint
    after: OperatingPoint
    kept: OperatingPoint
    reached: bool
    margin_before: float = 0.0
    margin: MarginCalibration | None = field(default=None, repr=False)

    def summary(self) -> str:
        """The threshold change and what it does, before and after, in a few lines."""

        def line(name: str, point: OperatingPoint) -> str:
            accepted = point.n_out_of_domain - point.ood_abstained
            ood = (
                f"out-of-domain accepted {accepted}/{point.n_out_of_domain}"
                if point.n_out_of_domain
                else "no out-of-domain query"
            )
            return (
                f"  {name:<34} coverage {point.in_domain_answered}/{point.n_in_domain} = "
                f"{point.coverage:.3f}, {ood}, precision {point.precision:.3f}"
            )

        status = "" if self.reached else " (rule NOT reached: best precision taken)"
        return "\n".join(
            [
                f"threshold {self.threshold_before:.4f} → {self.threshold_after:.4f}{status}, "
                f"recalibrated by the presets' rule ({self.rule}) on {self.source}",
                line(f"before (base at {self.threshold_before:.4f})", self.before),
                line(f"after (tuned at {self.threshold_after:.4f})", self.after),
                line(f"tuned at the old {self.threshold_before:.4f}", self.kept),
            ]
            + (
                [
                    f"clarify margin {self.margin_before:.4f} → {self.margin.margin:.4f} "
                    f"({self.margin.rule}): {self.margin.chosen.summary()}"
                ]
                if self.margin is not None
                else []
            )
        )


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
        seconds: wall time of the whole call (encoding and recalibration included).
        method: ``"adapter"`` or ``"finetune"``.
        settings: the settings used (JSON-ready), plus ``epochs_run`` and ``best_epoch``
            (adapter) or ``steps`` and ``prompts`` (finetune); for a hybrid also
            ``weights`` and ``weights_fitted``.
        holdout_queries: the held-out query texts, cleaned and normalised as the retriever
            reads questions (never trained on: evaluate on these, not on the rest).
        recalibration: how the tuned retriever's threshold was chosen again, on which
            queries, and what it does before and after (``None``: not recalibrated, see
            :func:`~walletfaq.quality.tuning.runner.tune`).
        holdout_too_small: fewer than :data:`MIN_HOLDOUT_QUERIES` held-out queries: ``before``
            and ``after`` are too noisy to tell a gain from luck (a :class:`TuningWarning`
            said so).
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
    recalibration: Recalibration | None = None
    holdout_too_small: bool = False

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
        if self.holdout_too_small:
            lines.append(
                f"  (only {self.holdout_size} held-out queries, fewer than "
                f"{MIN_HOLDOUT_QUERIES}: too few to tell a gain from luck)"
            )
        if self.recalibration is not None:
            lines.append(self.recalibration.summary())
        else:
            lines.append(
                f"threshold {self.retriever.threshold:.4f} kept (not recalibrated): calibrate "
                "it on labelled queries before relying on answer()"
            )
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
