"""The one gate every question passes: validation, cleaning and length limit; ``k``,
threshold and clarify margin checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from walletfaq.data.normalize import clean_text, lone_surrogate
from walletfaq.errors import QueryError
from walletfaq.index.search import in_score_range, margin_problem

MAX_QUESTION_CHARS = 2000
"""Questions longer than this are cut before encoding (the model truncates to its own limit
anyway; this bounds the work done on pasted walls of text)."""


def clean_question(question: object, position: int | None = None) -> str:
    """Validate a user question and return it cleaned (:func:`~walletfaq.data.normalize.clean_text`)
    and cut to :data:`MAX_QUESTION_CHARS`; the one gate every question passes.

    Raises:
        QueryError: not a string, not valid Unicode (lone surrogates, e.g. from undecodable
            bytes), or nothing left once control and invisible characters are removed.
    """
    label = "the question" if position is None else f"question {position}"
    if not isinstance(question, str):
        raise QueryError(f"{label} must be a string, got {type(question).__name__}")
    bad = lone_surrogate(question)
    if bad is not None:
        raise QueryError(
            f"{label} is not valid Unicode text (lone surrogate U+{ord(question[bad]):04X} at "
            f"character {bad}); decode the input as UTF-8 before asking"
        )
    text = clean_text(question[: 4 * MAX_QUESTION_CHARS])
    if not text:
        raise QueryError(
            f"{label} is empty or whitespace only (control and invisible characters do not "
            "count); pass the user's question text"
        )
    return text[:MAX_QUESTION_CHARS]


def clean_questions(questions: object) -> list[str]:
    """:func:`clean_question` for each of a list of questions (``ask_batch``'s argument).

    Raises:
        QueryError: ``questions`` is a string or not a list/tuple, or one question is
            unusable (the message gives its position).
    """
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence):
        if isinstance(questions, str):
            raise QueryError(
                "ask_batch expects a list of questions, got a single string; use ask() for "
                "one question"
            )
        raise QueryError(
            f"ask_batch expects a list of question strings, got {type(questions).__name__}"
        )
    return [clean_question(q, position) for position, q in enumerate(questions)]


def check_threshold(value: object) -> float:
    """``value`` as a float if it is a finite number in [-1, 1] (scores are cosines, so a
    threshold outside that range would answer everything or nothing).

    Raises:
        QueryError: a bool, a non-number, NaN, an infinity, or a number outside [-1, 1]
            (:func:`~walletfaq.index.search.in_score_range`).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not math.isfinite(float(value))
    ):
        raise QueryError(f"threshold must be a finite number (a cosine score), got {value!r}")
    if not in_score_range(float(value)):
        raise QueryError(f"threshold must be a cosine score, from -1 to 1, got {value!r}")
    return float(value)


def check_clarify_margin(value: object) -> float:
    """``value`` as a float if it is a clarify margin: a finite number from 0 (never clarify)
    to 2 (:func:`~walletfaq.index.search.margin_problem`).

    Raises:
        QueryError: a bool, a non-number, NaN, an infinity, or a number outside [0, 2].
    """
    problem = margin_problem(value)
    if problem is not None:
        raise QueryError(problem)
    return float(value)  # type: ignore[arg-type]


def check_k(k: object) -> None:
    """Refuse a ``k`` that is not a positive int (bools included) with :class:`QueryError`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a positive int, got {k!r}")


def check_vectors(vectors: object, dim: int, texts: Sequence[str] | None) -> np.ndarray:
    """``vectors`` as a float32 ``(n, dim)`` array (one row for a single vector), checked
    finite, with one question of ``texts`` (when given) per row.

    Raises:
        QueryError: not numeric, the wrong shape, NaN or infinite values, or ``texts`` of
            another length.
    """
    try:
        array = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    except (TypeError, ValueError) as exc:
        raise QueryError(f"vectors must be a numeric (n, dim) array ({exc})") from None
    if array.ndim != 2 or array.shape[1] != dim or not np.isfinite(array).all():
        raise QueryError(
            f"vectors must be a finite array of shape (n, {dim}), got shape {array.shape}"
        )
    if texts is not None and len(texts) != len(array):
        raise QueryError(f"texts must give one question per vector row ({len(array)})")
    return array
