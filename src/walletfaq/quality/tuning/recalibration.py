"""After tuning: choose the tuned retriever's no-answer threshold again, by the presets' rule
(and its clarify margin at that threshold, by :data:`~walletfaq.quality.clarify.MARGIN_RULE`).

A tuned model spreads its scores differently from the base model: the base model's threshold,
kept as it is, can leave most questions unanswered (on the bundled set, an adapter tuned on 333
pairs would have answered 102 of 399 in-domain questions at the base's 0.913, the base 396;
recalibrated to 0.6069 it answers 378, with the same 5 of 55 out-of-domain ones and more of
them right: README, "Improve quality on your data").
:func:`recalibrate` evaluates the base and the tuned retriever on labelled queries that tuning
did not train on, and sets the tuned one's threshold by
:data:`~walletfaq.quality.calibration.PRESET_RULE`. Which queries
(:func:`calibration_queries`):

1. the bundled evaluation set, when the retriever's corpus has every entry it names (the
   bundled corpus): all of its queries except those in the training data;
2. otherwise, with evaluation-format data (a ``.jsonl`` of ``{"query", "gold"}``, labelled
   queries, a store's query log): its held-out queries and its out-of-domain queries
   (``gold: []``, never trained on);
3. otherwise (pairs on your own corpus say nothing about which entry answers a question)
   nothing: the threshold is kept and a :class:`TuningWarning` says how to calibrate it.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

from walletfaq.data.queries import LabelledQuery, load_bundled_queries
from walletfaq.errors import WalletFAQError
from walletfaq.quality.calibration import PRESET_RULE
from walletfaq.quality.clarify import calibrate_margin
from walletfaq.quality.tuning.data import TuningData
from walletfaq.quality.tuning.result import Recalibration, TuningWarning

if TYPE_CHECKING:
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)


def calibration_queries(
    retriever: FAQRetriever | HybridRetriever,
    data: TuningData,
    holdout_queries: tuple[str, ...],
) -> tuple[list[LabelledQuery], str] | None:
    """Labelled queries over ``retriever``'s corpus that tuning on ``data`` did not train on,
    and a line saying which (see the module docstring); ``None`` when there are none.

    ``holdout_queries`` are the held-out texts of the result (cleaned and normalised)."""
    from walletfaq.retrieval.questions import clean_question

    normalizer = _normalizer(retriever)

    def key(text: str) -> str:
        try:
            return str(normalizer(clean_question(text)))
        except WalletFAQError:
            return text

    held = set(holdout_queries)
    trained = {key(text) for text in data.texts} - held
    ids = set(retriever.corpus.ids)
    bundled = load_bundled_queries()
    if all(gold in ids for query in bundled for gold in query.gold):
        kept = [q for q in bundled if key(q.query) not in trained]
        if any(q.gold for q in kept):
            return kept, _described(
                f"the bundled evaluation set ({len(kept)} of its {len(bundled)} queries: "
                "those not in the training data",
                kept,
            )
    if data.kind == "queries" and data.labelled and held:
        labelled = data.labelled
        kept = [
            q
            for q in labelled
            if (q.gold and key(q.query) in held) or (not q.gold and key(q.query) not in trained)
        ]
        if any(q.gold for q in kept):
            return kept, _described(
                f"{data.source} (its {sum(bool(q.gold) for q in kept)} held-out queries and "
                f"its {sum(not q.gold for q in kept)} out-of-domain ones",
                kept,
            )
    return None


def recalibrate(
    base: FAQRetriever | HybridRetriever,
    tuned: FAQRetriever | HybridRetriever,
    data: TuningData,
    holdout_queries: tuple[str, ...],
) -> Recalibration | None:
    """Set ``tuned.threshold`` by :data:`~walletfaq.quality.calibration.PRESET_RULE` (and
    ``tuned.clarify_margin`` at it by :data:`~walletfaq.quality.clarify.MARGIN_RULE`) on
    queries tuning did not train on (:func:`calibration_queries`) and return what changed;
    ``None`` (threshold kept, :class:`TuningWarning` issued) when there are no such queries.

    Warns:
        CalibrationWarning: the queries are too few to trust the threshold (from
            :func:`~walletfaq.calibrate`).
        TuningWarning: no labelled queries to recalibrate on.
    """
    from walletfaq.quality.evaluation.runner import evaluate

    found = calibration_queries(base, data, holdout_queries)
    if found is None:
        warnings.warn(
            f"the threshold {tuned.threshold:.4f} of the tuned retriever was not recalibrated: "
            "there are no labelled queries over this corpus that tuning did not train on (pair "
            "data says nothing about which entry answers a question). A tuned model spreads "
            "its scores differently: calibrate it on labelled queries (`walletfaq calibrate "
            "--index DIR --queries FILE --write`, or walletfaq.calibrate) before relying on "
            "answer()",
            TuningWarning,
            stacklevel=4,  # tune's caller
        )
        return None
    queries, source = found
    logger.info("recalibrating the threshold on %s", source)
    before_report = evaluate(base, queries, desc="recalibrating: base")  # type: ignore[arg-type]
    tuned_report = evaluate(tuned, queries, desc="recalibrating: tuned")  # type: ignore[arg-type]
    calibration = PRESET_RULE.calibrate(tuned, tuned_report)  # type: ignore[arg-type]
    old = float(base.threshold)
    tuned.threshold = calibration.threshold
    margin = calibrate_margin(tuned, tuned_report, threshold=calibration.threshold)  # type: ignore[arg-type]
    old_margin = float(tuned.clarify_margin)
    tuned.clarify_margin = margin.margin
    assert before_report.abstention is not None
    result = Recalibration(
        source=source,
        rule=str(PRESET_RULE),
        threshold_before=old,
        threshold_after=calibration.threshold,
        before=before_report.abstention,
        after=tuned_report.at_threshold(calibration.threshold),
        kept=tuned_report.at_threshold(old),
        reached=calibration.reached,
        margin_before=old_margin,
        margin=margin,
    )
    logger.info("%s", result.summary())
    return result


def _normalizer(retriever: Any) -> Any:
    primary = getattr(retriever, "primary", retriever)
    return primary.normalizer


def _described(lead: str, queries: list[LabelledQuery]) -> str:
    in_domain = sum(bool(q.gold) for q in queries)
    return f"{lead}; {in_domain} in-domain, {len(queries) - in_domain} out-of-domain)"
