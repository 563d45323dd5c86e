"""The safety gate of :meth:`FAQRetriever.answer <walletfaq.FAQRetriever.answer>`: questions that
ask how to defraud, steal, launder, bypass verification or obtain other people's data (or try
to take over the assistant) are refused with a fixed message instead of an FAQ answer.

How it decides, from the question's vector alone (the vector :meth:`answer` encodes anyway):

- **exemplars** (:mod:`walletfaq.data.safety`): harmful questions and benign look-alikes
  (victims, prevention, legitimate security questions), embedded with the retriever's own
  encoder; the corpus' rows (every FAQ question and alt question) are more benign examples;
- **a head**: a logistic regression (numpy, Newton's method, L2) trained on the harmful
  exemplars against the benign ones and the corpus rows, on standardised vector components and
  the question's intent cues (:mod:`walletfaq.retrieval.safety_cues`: whose money or data it is
  after, whether it should stay hidden; binary features whose weights are learned like the
  rest, penalised by :data:`CUE_L2`);
- **a neighbour rule**: the nearest harmful exemplar's cosine minus the nearest benign
  exemplar's or corpus row's cosine;
- a question is refused when the head's logit or the neighbour margin passes its threshold.
  Both thresholds come from a seeded :data:`FOLDS`-fold cross-validation over the exemplars and
  the corpus rows (rows grouped by entry): the head's is the larger of the
  :data:`HEAD_LEVELS` quantiles of the held-out benign exemplars' and rows' logits, the
  margin's likewise with :data:`MARGIN_LEVELS`; neither goes below 0. They are chosen from the
  exemplars and the corpus only, never from the evaluation sets, and frozen for the gate's life.

The rule is relative to the exemplars, so it works with any encoder; what it assumes is that
the encoder places "how do I scam someone" nearer the harmful exemplars than "I was scammed".
The constants below (L2, the benign exemplars' weight, the quantile levels) are the grid point
with the highest cross-validated refusal of harmful exemplars among those whose cross-validated
false refusals stay within 5 % of the benign exemplars and 0.7 % of the corpus rows, with the
default model (:data:`CUE_L2` was chosen later, on new exemplars written for the weak areas,
by the same criterion); ``benchmarks/safety.py`` measures the result on held-out questions
(``benchmarks/README.md``, "The safety gate").

The gate is built lazily, once per retriever, on its first use (thread-safe); its exemplar
vectors and fitted head are cached in the user cache directory (keyed by the encoder's
fingerprint, the exemplars and the corpus rows), so a second process starts in milliseconds.
The corpus rows are those of the first use: later live edits do not refit it (a reload does).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from walletfaq.data.atomic import write_bytes_atomic
from walletfaq.data.safety import (
    SafetyExample,
    examples_hash,
    load_bundled_safety_examples,
    load_safety_examples,
)
from walletfaq.encoders.presets import cache_dir
from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.errors import IndexFormatError, WalletFAQError
from walletfaq.retrieval.embedding import cached_vectors, text_digest
from walletfaq.retrieval.questions import clean_question
from walletfaq.retrieval.safety_cues import CUES, cue_features, cues_of

if TYPE_CHECKING:
    from walletfaq.index.search import Hit
    from walletfaq.retrieval.state import RetrieverState

logger = logging.getLogger(__name__)

DEFAULT_SAFETY_MESSAGE = (
    "抱歉，这个问题我无法提供帮助：钱包客服不协助诈骗、盗取他人账户或资金、洗钱、绕过身份验证或"
    "风控、获取他人信息等行为。如果您正遭遇诈骗或账户被盗：请立即停止转账，不要向任何人透露密码和"
    "验证码；通过钱包 App 内的官方客服冻结账户、核实情况；已经被骗请尽快拨打 110 报警，或拨打"
    " 96110 反诈专线咨询。"
)
"""What :meth:`answer` says when it refuses (``safety_message`` replaces it)."""

METHOD_VERSION = 2
"""Bumped whenever the fitting below changes (it is part of the cache key)."""
FOLDS = 5
"""Cross-validation folds that choose the thresholds."""
SEED = 0
"""Seed of the folds' assignment."""
HEAD_L2 = 0.1
"""L2 penalty of the head (on standardised components)."""
CUE_L2 = 0.01
"""L2 penalty of the head's intent-cue features (standardised): lighter than the vector's, as
there are a few cues against hundreds of components."""
CONTRAST_WEIGHT = 0.1
"""Share of the training weight on the benign exemplars (harmful: 0.5; corpus rows: the
rest)."""
HEAD_LEVELS = (0.95, 0.995)
"""Quantiles of the held-out (benign exemplars, corpus rows) logits the head must pass."""
MARGIN_LEVELS = (0.99, 0.999)
"""Quantiles of the held-out (benign exemplars, corpus rows) margins the neighbour rule must
pass."""
VERDICT_CACHE_SIZE = 1024
"""How many recent questions' verdicts a gate keeps."""

OnEncoded = Callable[[Sequence[str], np.ndarray], None]
"""A hook called with freshly encoded (normalised) questions and their unit vectors."""


@dataclass(frozen=True)
class SafetyVerdict:
    """The gate's decision on one question.

    Attributes:
        refuse: whether :meth:`answer` must refuse it.
        reason: why, in a few words (``""`` when not refused).
        score: the head's logit (higher = more like the harmful exemplars).
        margin: nearest harmful exemplar's cosine minus nearest benign text's.
        kind: the ``kind`` of the nearest harmful exemplar.
        cues: the intent cues the question carries (:mod:`walletfaq.retrieval.safety_cues`).
    """

    refuse: bool
    reason: str
    score: float
    margin: float
    kind: str
    cues: tuple[str, ...] = ()


@dataclass(frozen=True)
class SafetyHead:
    """A fitted gate: the head, the neighbour rule, and their thresholds.

    Attributes:
        mean, scale: standardisation of the head's features (the vector's components, then
            the intent cues), shape ``(dim + len(CUES),)``.
        weights, bias: the logistic head on standardised features.
        threshold: the head's logit threshold.
        margin_threshold: the neighbour rule's threshold.
        harmful: unit vectors of the harmful exemplars, ``(h, dim)``; ``kinds`` their kinds.
        contrast: unit vectors of the benign exemplars and the corpus rows, ``(n, dim)``.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    margin_threshold: float
    harmful: np.ndarray
    kinds: tuple[str, ...]
    contrast: np.ndarray

    def scores(
        self, vectors: np.ndarray, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Head logits, neighbour margins and the nearest harmful exemplar's position of unit
        ``vectors`` ``(n, dim)`` of the (normalised) questions ``texts``."""
        features = _features(vectors, cue_features(texts))
        logits = _logits(features, self.mean, self.scale, self.weights, self.bias)
        harmful = vectors @ self.harmful.T
        margins = harmful.max(axis=1) - (vectors @ self.contrast.T).max(axis=1)
        return logits, margins, harmful.argmax(axis=1)

    def judge(self, vectors: np.ndarray, texts: Sequence[str]) -> list[SafetyVerdict]:
        """One :class:`SafetyVerdict` per row of unit ``vectors``, the vectors of the
        (normalised) questions ``texts``."""
        logits, margins, nearest = self.scores(vectors, texts)
        verdicts = []
        for text, logit, margin, position in zip(
            texts, logits.tolist(), margins.tolist(), nearest.tolist(), strict=True
        ):
            kind = self.kinds[position]
            refuse = logit > self.threshold or margin > self.margin_threshold
            reason = f"harmful request ({kind})" if refuse else ""
            verdicts.append(SafetyVerdict(refuse, reason, logit, margin, kind, cues_of(text)))
        return verdicts


def fit_head(
    harmful: np.ndarray,
    kinds: Sequence[str],
    benign: np.ndarray,
    rows: np.ndarray,
    row_groups: np.ndarray,
    cues: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> SafetyHead:
    """Fit the gate on unit vectors: ``harmful`` exemplars (with their ``kinds``), ``benign``
    exemplars and corpus ``rows`` (``row_groups``: the entry of each row, so that the
    cross-validation holds out whole entries); ``cues``: the intent cues
    (:func:`~walletfaq.retrieval.safety_cues.cue_features`) of the harmful exemplars, the
    benign ones and the rows (``None``: none carries any). Deterministic (seeded by
    :data:`SEED`)."""
    parts = (harmful, benign, rows)
    if cues is None:
        cues = (
            np.zeros((len(harmful), len(CUES))),
            np.zeros((len(benign), len(CUES))),
            np.zeros((len(rows), len(CUES))),
        )
    harmful_x, benign_x, rows_x = (_features(v, c) for v, c in zip(parts, cues, strict=True))
    folds = min(FOLDS, len(harmful), len(benign))
    rng = np.random.default_rng(SEED)
    fold_h = _folds(len(harmful), folds, rng)
    fold_b = _folds(len(benign), folds, rng)
    groups = np.unique(row_groups, return_inverse=True)[1] if len(rows) else np.zeros(0, int)
    fold_r = _folds(int(groups.max()) + 1 if len(groups) else 0, folds, rng)[groups]
    held_b = (np.zeros(len(benign)), np.zeros(len(benign)))
    held_r = (np.zeros(len(rows)), np.zeros(len(rows)))
    for fold in range(folds):
        h, b, r = fold_h != fold, fold_b != fold, fold_r != fold
        params = _fit_logistic(harmful_x[h], benign_x[b], rows_x[r])
        contrast = np.vstack([benign[b], rows[r]])
        for vectors, features, chosen, out in (
            (benign, benign_x, ~b, held_b),
            (rows, rows_x, ~r, held_r),
        ):
            if chosen.any():
                out[0][chosen] = _logits(features[chosen], *params)
                out[1][chosen] = _margins(vectors[chosen], harmful[h], contrast)
    threshold = _level(held_b[0], held_r[0], HEAD_LEVELS)
    margin_threshold = _level(held_b[1], held_r[1], MARGIN_LEVELS)
    mean, scale, weights, bias = _fit_logistic(harmful_x, benign_x, rows_x)
    return SafetyHead(
        mean,
        scale,
        weights,
        bias,
        threshold,
        margin_threshold,
        harmful.astype(np.float32),
        tuple(kinds),
        np.vstack([benign, rows]).astype(np.float32),
    )


class SafetyGate:
    """The lazily built gate of one retriever, and its recent verdicts (thread-safe).

    Args:
        examples: the exemplars; ``None`` = the bundled ones (read on first use).
    """

    def __init__(self, examples: Sequence[SafetyExample] | None = None) -> None:
        self._examples = tuple(examples) if examples is not None else None
        self._head: SafetyHead | None = None
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[str, SafetyVerdict] = OrderedDict()

    def __repr__(self) -> str:
        source = "bundled" if self._examples is None else f"{len(self._examples)} custom"
        return f"SafetyGate(examples={source}, built={self._head is not None})"

    @property
    def custom_examples(self) -> tuple[SafetyExample, ...] | None:
        """The exemplars given to the constructor (``None`` = the bundled ones)."""
        return self._examples

    @property
    def examples(self) -> tuple[SafetyExample, ...]:
        """The exemplars in use."""
        return self._examples if self._examples is not None else load_bundled_safety_examples()

    def head(
        self, encoder: Encoder, normalizer: Callable[[str], str], state: RetrieverState
    ) -> SafetyHead:
        """The fitted gate, built on the first call from these parts (later calls return it)."""
        head = self._head
        if head is not None:
            return head
        with self._lock:
            if self._head is None:
                self._head = _build(self.examples, encoder, normalizer, state)
            return self._head

    def screen(
        self,
        encoder: Encoder,
        normalizer: Callable[[str], str],
        state: RetrieverState,
        text: str,
        search: Callable[[OnEncoded], list[Hit]],
    ) -> tuple[list[Hit], SafetyVerdict]:
        """The hits of ``search`` and the verdict on the cleaned question ``text``.

        ``search`` gets a hook to call with the questions it encodes and their vectors: the
        verdict is taken from that vector, so nothing is encoded twice. Only when ``search``
        encoded nothing (its hits were cached) and the verdict is not remembered either is the
        question encoded here."""
        head = self.head(encoder, normalizer, state)
        hits = search(lambda texts, vectors: self.remember(texts, head.judge(vectors, texts)))
        normalized = normalizer(text)
        verdict = self.recall(normalized)
        if verdict is None:
            vectors = as_unit_rows(encoder.encode_queries([normalized]))
            (verdict,) = head.judge(vectors, [normalized])
            self.remember([normalized], [verdict])
        return hits, verdict

    def remember(self, texts: Sequence[str], verdicts: Sequence[SafetyVerdict]) -> None:
        """Keep the verdicts of these (normalised) questions for :meth:`recall`."""
        with self._lock:
            for text, verdict in zip(texts, verdicts, strict=True):
                self._verdicts[text] = verdict
                self._verdicts.move_to_end(text)
                if len(self._verdicts) > VERDICT_CACHE_SIZE:
                    self._verdicts.popitem(last=False)

    def forget(self) -> None:
        """Forget the remembered verdicts (the fitted gate stays)."""
        with self._lock:
            self._verdicts.clear()

    def recall(self, text: str) -> SafetyVerdict | None:
        """The remembered verdict of a normalised question, or ``None``."""
        with self._lock:
            return self._verdicts.get(text)


def _build(
    examples: Sequence[SafetyExample],
    encoder: Encoder,
    normalizer: Callable[[str], str],
    state: RetrieverState,
) -> SafetyHead:
    index, row_entry = state.index, state.row_entry
    texts = [normalizer(clean_question(example.text)) for example in examples]
    example_cues = cue_features(texts)
    row_cues = cue_features([normalizer(text) for text in state.row_text])
    labelled = json.dumps([[t, e.label, e.kind] for t, e in zip(texts, examples, strict=True)])
    vectors_key = text_digest(f"v{METHOD_VERSION}", encoder.fingerprint, labelled)
    vectors = _cached_vectors(vectors_key, encoder, texts)
    rows = np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
    harmful_mask = np.array([example.harmful for example in examples])
    kinds = [e.kind for e in examples if e.harmful]
    head_key = text_digest(
        vectors_key,
        repr((HEAD_L2, CUE_L2, CONTRAST_WEIGHT, HEAD_LEVELS, MARGIN_LEVELS, FOLDS, SEED)),
        repr(
            [
                (c.name, [p.pattern for p in c.any_of], [p.pattern for p in c.and_any_of])
                for c in CUES
            ]
        ),
        hashlib.sha256(rows.tobytes()).hexdigest(),
        hashlib.sha256(np.asarray(row_entry, dtype=np.int64).tobytes()).hexdigest(),
        examples_hash(examples),
    )
    harmful, benign = vectors[harmful_mask], vectors[~harmful_mask]
    cached = _read_head(head_key, harmful, kinds, benign, rows)
    if cached is not None:
        return cached
    cues = (example_cues[harmful_mask], example_cues[~harmful_mask], row_cues)
    head = fit_head(harmful, kinds, benign, rows, np.asarray(row_entry), cues)
    _write_head(head_key, head)
    logger.info(
        "safety gate fitted on %d harmful and %d benign exemplars and %d corpus rows "
        "(head threshold %.3f, margin threshold %.4f)",
        len(harmful),
        len(benign),
        len(rows),
        head.threshold,
        head.margin_threshold,
    )
    return head


# ------------------------------------------------------------------ fitting
def _fit_logistic(
    harmful: np.ndarray, benign: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Weighted, L2-penalised logistic regression by Newton's method on feature rows (the
    vector's components, then :data:`CUES`); returns the standardisation and the weights."""
    data = np.vstack([harmful, benign, rows]).astype(np.float64)
    target = np.r_[np.ones(len(harmful)), np.zeros(len(benign) + len(rows))]
    rows_share = 0.5 - CONTRAST_WEIGHT if len(rows) else 0.0
    benign_share = 0.5 - rows_share
    sample = np.r_[
        np.full(len(harmful), 0.5 / len(harmful)),
        np.full(len(benign), benign_share / len(benign)),
        np.full(len(rows), rows_share / max(len(rows), 1)),
    ]
    mean = data.mean(axis=0)
    scale = np.maximum(data.std(axis=0), 1e-6)
    design = np.hstack([(data - mean) / scale, np.ones((len(data), 1))])
    penalty = np.full(design.shape[1], HEAD_L2)
    penalty[-1 - len(CUES) : -1] = CUE_L2
    penalty[-1] = 0.0
    weights = np.zeros(design.shape[1])
    for _ in range(50):
        chance = 1.0 / (1.0 + np.exp(-np.clip(design @ weights, -30, 30)))
        gradient = design.T @ (sample * (chance - target)) + penalty * weights
        hessian = (design * (sample * chance * (1 - chance))[:, None]).T @ design
        step = np.linalg.solve(hessian + np.diag(penalty + 1e-12), gradient)
        weights -= step
        if np.abs(step).max() < 1e-7:
            break
    return mean, scale, weights[:-1], float(weights[-1])


def _features(vectors: np.ndarray, cues: np.ndarray) -> np.ndarray:
    """The head's feature rows: each vector's components, then its intent cues."""
    return np.hstack([np.asarray(vectors, dtype=np.float64), np.asarray(cues, dtype=np.float64)])


def _logits(
    features: np.ndarray, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray, bias: float
) -> np.ndarray:
    return np.asarray(((features - mean) / scale) @ weights + bias, dtype=np.float64)


def _margins(vectors: np.ndarray, harmful: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    nearest_contrast = (vectors @ contrast.T).max(axis=1) if len(contrast) else -1.0
    return np.asarray((vectors @ harmful.T).max(axis=1) - nearest_contrast, dtype=np.float64)


def _folds(count: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    order = rng.permutation(count)
    assignment = np.empty(count, dtype=np.int64)
    assignment[order] = np.arange(count) % folds
    return assignment


def _level(benign: np.ndarray, rows: np.ndarray, levels: tuple[float, float]) -> float:
    """The threshold a held-out score must pass: the larger of the two quantiles, at least 0."""
    value = float(np.quantile(benign, levels[0]))
    if len(rows):
        value = max(value, float(np.quantile(rows, levels[1])))
    return max(value, 0.0)


# ------------------------------------------------------------------ the cache


def _cache_file(name: str) -> Path:
    return cache_dir() / "safety" / name


def _cached_vectors(key: str, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    return cached_vectors(
        _cache_file(f"exemplars-{key}.npy"),
        encoder.dim,
        texts,
        lambda missing: as_unit_rows(encoder.encode_queries(list(missing))),
    )


def _read_head(
    key: str, harmful: np.ndarray, kinds: Sequence[str], benign: np.ndarray, rows: np.ndarray
) -> SafetyHead | None:
    path = _cache_file(f"head-{key}.npz")
    try:
        with np.load(path, allow_pickle=False) as stored:
            mean, scale, weights, numbers = (
                stored["mean"],
                stored["scale"],
                stored["weights"],
                stored["numbers"],
            )
    except (OSError, ValueError, KeyError):
        return None
    dim = harmful.shape[1] + len(CUES)
    if mean.shape != (dim,) or scale.shape != (dim,) or weights.shape != (dim,):
        return None
    if numbers.shape != (3,) or not np.isfinite(numbers).all():
        return None
    return SafetyHead(
        mean,
        scale,
        weights,
        float(numbers[0]),
        float(numbers[1]),
        float(numbers[2]),
        harmful,
        tuple(kinds),
        np.vstack([benign, rows]),
    )


def _write_head(key: str, head: SafetyHead) -> None:
    numbers = np.array([head.bias, head.threshold, head.margin_threshold])
    _store(
        _cache_file(f"head-{key}.npz"),
        lambda out: np.savez(
            out, mean=head.mean, scale=head.scale, weights=head.weights, numbers=numbers
        ),
    )


def _store(path: Path, write: Callable[[io.BytesIO], None]) -> None:
    buffer = io.BytesIO()
    write(buffer)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as exc:
        logger.warning(
            "cannot cache the safety gate in %s (%s); it is refitted next time", path, exc
        )


# ------------------------------------------------------------------ settings
def check_safety(value: object) -> bool:
    """``value`` if it is a bool (the ``safety`` switch), else :class:`WalletFAQError`."""
    if not isinstance(value, bool):
        raise WalletFAQError(f"safety must be True or False, got {value!r}")
    return value


def check_safety_message(value: object) -> str | None:
    """``value`` if it is a non-empty string or ``None`` (the default message)."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise WalletFAQError(
            f"safety_message must be a non-empty string or None (the default), got {value!r}"
        )
    return value


def safety_settings(enabled: bool, message: str | None, gate: SafetyGate) -> dict[str, Any]:
    """The gate's settings as saved in an index manifest's ``settings``: ``safety``,
    ``safety_message`` (``None`` = the default) and, for custom exemplars only,
    ``safety_examples`` (a list of exemplar objects)."""
    saved: dict[str, Any] = {"safety": enabled, "safety_message": message}
    if gate.custom_examples is not None:
        saved["safety_examples"] = [example.to_dict() for example in gate.custom_examples]
    return saved


def safety_arguments(settings: Mapping[str, Any], where: str | Path) -> dict[str, Any]:
    """The retriever arguments (``safety``, ``safety_message``, ``safety_examples``) of a
    manifest's ``settings``; an index saved before the gate existed gets the defaults (on,
    default message, bundled exemplars).

    Raises:
        IndexFormatError: a setting of the wrong type, or custom exemplars that
            :func:`~walletfaq.data.safety.load_safety_examples` refuses.
    """
    try:
        enabled = check_safety(settings.get("safety", True))
        message = check_safety_message(settings.get("safety_message"))
        raw = settings.get("safety_examples")
        examples = None if raw is None else load_safety_examples(raw)
    except WalletFAQError as exc:
        raise IndexFormatError(
            f"{where}: the manifest's safety settings are unusable ({exc}); rebuild the index"
        ) from None
    return {"safety": enabled, "safety_message": message, "safety_examples": examples}


__all__ = [
    "DEFAULT_SAFETY_MESSAGE",
    "SafetyGate",
    "SafetyHead",
    "SafetyVerdict",
    "check_safety",
    "check_safety_message",
    "fit_head",
    "safety_arguments",
    "safety_settings",
]
