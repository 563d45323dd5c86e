"""Calibrating a saved index (``walletfaq calibrate``): its no-answer threshold by a
:class:`~walletfaq.quality.calibration.CalibrationRule`, then its clarify margin at that
threshold by a :class:`~walletfaq.quality.clarify.MarginRule`, both on one evaluation of the
labelled queries, and, when asked, both saved in the index directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from walletfaq.errors import WalletFAQError
from walletfaq.quality.calibration import (
    PRESET_RULE,
    Calibration,
    CalibrationQueries,
    CalibrationRule,
    OperatingPoint,
)
from walletfaq.quality.clarify import MARGIN_RULE, MarginCalibration, MarginRule, calibrate_margin
from walletfaq.quality.evaluation.report import EvalReport
from walletfaq.quality.evaluation.runner import evaluate

__all__ = ["IndexCalibration", "calibrate_index"]


@dataclass(frozen=True)
class IndexCalibration:
    """What :func:`calibrate_index` did to a saved index (``walletfaq calibrate``).

    Attributes:
        directory: the saved index.
        rule: the threshold rule applied.
        current: the index's threshold as it was, on the queries.
        calibration: the threshold the rule chose, and its trade-off curve.
        margin: the clarify margin chosen at that threshold, and its curves.
        current_margin: the index's clarify margin as it was.
        tuned: how the index was tuned (``None``: not tuned): its threshold should be
            chosen on queries it was not trained on.
        written: whether the chosen threshold and margin were saved in the directory.
    """

    directory: Path
    rule: CalibrationRule
    current: OperatingPoint
    calibration: Calibration
    margin: MarginCalibration
    current_margin: float
    tuned: str | None = None
    written: bool = False

    def summary(self) -> str:
        """The rules, the threshold and margin now and chosen (what each does), the margin
        table, and whether they were saved."""
        lines = []
        if self.tuned:
            lines.append(
                f"note: this index is tuned ({self.tuned}); calibrate it on queries it was not "
                "trained on, or the threshold will be set for questions it has already seen"
            )
        lines += [
            f"rule: {self.rule}",
            f"now:    {self.current.summary()}",
            f"chosen: {self.calibration.chosen.summary()}",
            f"clarify margin now {self.current_margin:.4f}; by {self.margin.rule}:",
            self.margin.table(every=2),
            self.margin.summary(),
        ]
        threshold, margin = self.calibration.threshold, self.margin.margin
        chosen = f"threshold {threshold:.4f} and clarify margin {margin:.4f}"
        if self.written:
            lines.append(f"saved {chosen} in {self.directory}")
        else:
            lines.append(f"{chosen} not saved: pass --write to save them")
        return "\n".join(lines)


def calibrate_index(
    directory: str | Path,
    queries: CalibrationQueries = None,
    rule: CalibrationRule | None = None,
    *,
    margin_rule: MarginRule | None = None,
    write: bool = False,
) -> IndexCalibration:
    """Choose the threshold of the saved index ``directory`` by ``rule`` (default
    :data:`~walletfaq.quality.calibration.PRESET_RULE`), then its clarify margin at that
    threshold by ``margin_rule`` (default :data:`~walletfaq.quality.clarify.MARGIN_RULE`), on
    ``queries`` (``None``: the bundled evaluation set, which fits only an index of the bundled
    corpus) and, with ``write``, save both there.

    Raises:
        IndexFormatError: ``directory`` is not a readable saved index.
        WalletFAQError: ``queries`` is ``None`` and the index is not of the bundled corpus.
    """
    from walletfaq.data.queries import load_bundled_queries
    from walletfaq.encoders.restore import describe_tuning
    from walletfaq.retrieval.retriever import FAQRetriever

    rule = PRESET_RULE if rule is None else rule
    retriever = FAQRetriever.load(directory)
    if queries is None:
        known = set(retriever.corpus.ids)
        if any(g not in known for q in load_bundled_queries() for g in q.gold):
            raise WalletFAQError(
                f"{directory} is not an index of the bundled corpus, so the bundled evaluation "
                "set does not fit it; pass --queries FILE: labelled queries for this corpus "
                '({"query", "gold"} lines, out-of-domain ones with "gold": [])'
            )
    report = queries if isinstance(queries, EvalReport) else evaluate(retriever, queries)
    calibration = rule.calibrate(retriever, report)
    margin = calibrate_margin(
        retriever,
        report,
        MARGIN_RULE if margin_rule is None else margin_rule,
        threshold=calibration.threshold,
    )
    assert report.abstention is not None
    current_margin = retriever.clarify_margin
    path = Path(directory)
    if write:
        retriever.threshold = calibration.threshold
        retriever.clarify_margin = margin.margin
        path = retriever.save(directory)
    return IndexCalibration(
        directory=path,
        rule=rule,
        current=report.abstention,
        calibration=calibration,
        margin=margin,
        current_margin=current_margin,
        tuned=describe_tuning(retriever.encoder),
        written=write,
    )
