"""The settings :meth:`FAQRetriever.answer <walletfaq.FAQRetriever.answer>` decides with:
the no-answer threshold, the clarify margin and message, and the safety gate's switch and
message. Each is checked on every assignment (constructor, attribute, loaded manifest) and
saved with the index."""

from __future__ import annotations

from walletfaq.encoders.presets import default_clarify_margin, default_threshold
from walletfaq.errors import WalletFAQError
from walletfaq.index.search import DEFAULT_CLARIFY_MESSAGE, fallback_problem
from walletfaq.retrieval.questions import check_clarify_margin, check_threshold
from walletfaq.retrieval.safety import (
    DEFAULT_SAFETY_MESSAGE,
    check_safety,
    check_safety_message,
)

Cutoffs = tuple[float, float]
"""The threshold and the clarify margin one answer decides with."""


class AnswerSettings:
    """The checked answering settings of a retriever (a base of
    :class:`~walletfaq.FAQRetriever`; its constructor sets each through these properties)."""

    _threshold: float
    _clarify_margin: float
    _clarify_message: str | None
    _safety: bool
    _safety_message: str | None

    def _model_defaults(
        self, model: str, threshold: float | None = None, clarify_margin: float | None = None
    ) -> None:
        """Set ``threshold`` and ``clarify_margin``; each one ``None`` is the calibrated
        default of the preset ``model`` (:mod:`walletfaq.encoders.presets`; 0 for others)."""
        self.threshold = default_threshold(model) if threshold is None else threshold
        margin = default_clarify_margin(model) if clarify_margin is None else clarify_margin
        self.clarify_margin = margin

    def _cutoffs(self, threshold: float | None, clarify_margin: float | None) -> Cutoffs:
        """The threshold and clarify margin of one answer: those given (checked), else the
        settings.

        Raises:
            QueryError: a threshold not in [-1, 1] or a clarify margin not in [0, 2].
        """
        return (
            self.threshold if threshold is None else check_threshold(threshold),
            self.clarify_margin if clarify_margin is None else check_clarify_margin(clarify_margin),
        )

    @property
    def threshold(self) -> float:
        """Minimum top score for :meth:`answer` to answer (a cosine similarity, ≤ 1)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = check_threshold(value)

    @property
    def clarify_margin(self) -> float:
        """How close (in score) a second entry above the threshold must come to the top one
        for :meth:`answer` to ask the user to choose (``decision="clarify"``): it clarifies
        when ``top1 - top2 < clarify_margin``. A number in [0, 2]; 0 never clarifies."""
        return self._clarify_margin

    @clarify_margin.setter
    def clarify_margin(self, value: float) -> None:
        self._clarify_margin = check_clarify_margin(value)

    @property
    def clarify_message(self) -> str:
        """What :meth:`answer` says before the options when it asks the user to choose (set
        ``None`` for the default)."""
        return self._clarify_message or DEFAULT_CLARIFY_MESSAGE

    @clarify_message.setter
    def clarify_message(self, value: str | None) -> None:
        problem = fallback_problem(value, "clarify_message")
        if problem is not None:
            raise WalletFAQError(problem)
        self._clarify_message = value

    @property
    def safety(self) -> bool:
        """Whether :meth:`answer` refuses harmful requests (``False`` turns the gate off)."""
        return self._safety

    @safety.setter
    def safety(self, value: bool) -> None:
        self._safety = check_safety(value)

    @property
    def safety_message(self) -> str:
        """What :meth:`answer` says when it refuses (set ``None`` for the default)."""
        return self._safety_message or DEFAULT_SAFETY_MESSAGE

    @safety_message.setter
    def safety_message(self, value: str | None) -> None:
        self._safety_message = check_safety_message(value)


__all__ = ["AnswerSettings", "Cutoffs"]
