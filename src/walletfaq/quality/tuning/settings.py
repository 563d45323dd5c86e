"""Settings of the two tuning methods, and their checks.

:class:`AdapterSettings` (``method="adapter"``) and :class:`FinetuneSettings`
(``method="finetune"``) are frozen dataclasses whose ``checked()`` validates every field with
:func:`is_int`, :func:`is_number` and :func:`first_non_bool`; :func:`_method_settings` builds one
from the keyword arguments of :func:`~walletfaq.quality.tuning.runner.tune`, refusing unknown
names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from walletfaq.encoders.adapted import APPLY_TO, ApplyTo
from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    from walletfaq.encoders.finetuned import TensorDType


# --------------------------------------------------------------------------- adapter


@dataclass(frozen=True)
class AdapterSettings:
    """How the adapter is trained. Defaults are the recipe measured best
    (benchmarks/README.md, "Domain tuning").

    Attributes:
        rank: ``None`` = a full ``dim × dim`` map initialised at the identity; an int = the
            residual low-rank map ``W = I + A B`` of that rank (``A`` starts at zero).
        bias: learn a bias vector too.
        apply_to: ``"both"`` (questions and FAQ texts) or ``"queries"``.
        epochs: maximum passes over the training pairs.
        patience: stop after this many epochs without a better validation MRR@10 (the best
            epoch's weights are kept); ``0`` = no early stopping, train every epoch.
        batch_size: pairs per batch (in-batch negatives).
        lr: AdamW learning rate.
        temperature: InfoNCE temperature.
        identity_decay: weight of ``||W - I||²`` in the loss (keeps the map near the base).
        symmetric: also the loss of positives against anchors.
        hard_negatives: use the label-0 pairs of a pair file as extra negatives (measured no
            gain on BQ, off by default).
        mined_negatives: add, for each anchor, the most similar training text of another
            cluster as an extra negative (mined once with the base vectors).
        use_corpus_alts: train on question ↔ alt-question pairs of the corpus entries.
        validation: share of the training clusters set apart for early stopping.
    """

    rank: int | None = None
    bias: bool = False
    apply_to: ApplyTo = "both"
    epochs: int = 40
    patience: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    temperature: float = 0.05
    identity_decay: float = 0.0
    symmetric: bool = True
    hard_negatives: bool = False
    mined_negatives: bool = False
    use_corpus_alts: bool = True
    validation: float = 0.1

    def checked(self) -> AdapterSettings:
        """Return ``self`` after validating every field (raises :class:`WalletFAQError`)."""

        def bad(name: str, expected: str) -> WalletFAQError:
            return WalletFAQError(
                f"tune setting {name}={getattr(self, name)!r} is invalid; expected {expected}"
            )

        if self.rank is not None and (not is_int(self.rank) or self.rank < 1):
            raise bad("rank", "None or a positive int")
        if self.apply_to not in APPLY_TO:
            raise bad("apply_to", f"one of {list(APPLY_TO)}")
        if not is_int(self.epochs) or self.epochs < 1:
            raise bad("epochs", "a positive int")
        if not is_int(self.batch_size) or self.batch_size < 2:
            raise bad("batch_size", "an int ≥ 2 (each pair's negatives are the batch's others)")
        if not is_int(self.patience) or self.patience < 0:
            raise bad("patience", "an int ≥ 0")
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if not is_number(value) or not value > 0:
                raise bad(name, "a positive number")
        if not is_number(self.identity_decay) or not self.identity_decay >= 0:
            raise bad("identity_decay", "a finite number ≥ 0")
        if not is_number(self.validation) or not 0 <= self.validation < 0.5:
            raise bad("validation", "a number in [0, 0.5)")
        not_bool = first_non_bool(
            self, ("bias", "symmetric", "hard_negatives", "mined_negatives", "use_corpus_alts")
        )
        if not_bool is not None:
            raise bad(not_bool, "True or False")
        return self


# --------------------------------------------------------------------------- finetune


@dataclass(frozen=True)
class FinetuneSettings:
    """How the model is fine-tuned. Defaults are the recipe measured in benchmarks/README.md
    ("Domain tuning").

    Attributes:
        epochs: passes over the training rows.
        batch_size: rows per batch (each row's positive is a negative for the others), ≥ 2.
        lr: AdamW peak learning rate (linear warm-up then linear decay).
        warmup: share of the steps spent warming up, in ``[0, 1)``.
        weight_decay: AdamW weight decay.
        scale: inverse temperature of the loss (20 = τ 0.05).
        symmetric: also rank anchors for each positive (``doc_to_query``); same cost.
        hard_negatives: add the label-0 partner of an anchor (pair files) as its hard negative.
        mined_negatives: give every data row without one a mined hard negative: the most similar
            training text of another paraphrase cluster under the base model (costs encoding
            the data once more, and a third text per row in training).
        use_corpus_alts: train on question ↔ alt-question pairs of the corpus entries.
        freeze_embeddings: keep the ``nn.Embedding`` tables fixed (shared with the base, not
            saved). ``False`` trains and saves the whole model (≈ 4× the size, slower).
        max_seq_length: truncate training texts to this many tokens (``None``: the model's own
            limit; encoding always uses the model's limit). FAQ questions are short; 64 covers
            them.
        max_steps: stop after this many optimiser steps (``None``: all epochs); for smoke tests.
        dtype: how the trained tensors are stored: ``"float16"`` (half the size; the model is
            rounded to it after training) or ``"float32"``.
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = 5e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    scale: float = 20.0
    symmetric: bool = True
    hard_negatives: bool = True
    mined_negatives: bool = False
    use_corpus_alts: bool = True
    freeze_embeddings: bool = True
    max_seq_length: int | None = 64
    max_steps: int | None = None
    dtype: TensorDType = "float16"

    def checked(self) -> FinetuneSettings:
        """Return ``self`` after validating every field (raises :class:`WalletFAQError`)."""

        def bad(name: str, expected: str) -> WalletFAQError:
            return WalletFAQError(
                f"tune(method='finetune') setting {name}={getattr(self, name)!r} is invalid; "
                f"expected {expected}"
            )

        if not is_int(self.epochs) or self.epochs < 1:
            raise bad("epochs", "a positive int (1-3 is usual for fine-tuning)")
        if not is_int(self.batch_size) or self.batch_size < 2:
            raise bad("batch_size", "an int ≥ 2 (in-batch negatives need company; 32-128 usual)")
        if not is_number(self.lr) or not 0 < self.lr < 1:
            raise bad("lr", "a number in (0, 1), e.g. 5e-5")
        if not is_number(self.warmup) or not 0 <= self.warmup < 1:
            raise bad("warmup", "a share of the steps in [0, 1)")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "a number ≥ 0")
        if not is_number(self.scale) or self.scale <= 0:
            raise bad("scale", "a positive number (20 = temperature 0.05)")
        not_bool = first_non_bool(
            self,
            (
                "symmetric",
                "hard_negatives",
                "mined_negatives",
                "use_corpus_alts",
                "freeze_embeddings",
            ),
        )
        if not_bool is not None:
            raise bad(not_bool, "True or False")
        if self.max_seq_length is not None and (
            not is_int(self.max_seq_length) or self.max_seq_length < 8
        ):
            raise bad("max_seq_length", "None or an int ≥ 8")
        if self.max_steps is not None and (not is_int(self.max_steps) or self.max_steps < 1):
            raise bad("max_steps", "None or a positive int")
        if self.dtype not in ("float16", "float32"):
            raise bad("dtype", "'float16' or 'float32'")
        return self


# --------------------------------------------------------------------------- checks


def is_int(value: object) -> bool:
    """Whether a setting is an int (``True``/``False`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Whether a setting is a finite int or float (``True``/``False`` are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def first_non_bool(settings: object, names: Sequence[str]) -> str | None:
    """The first of ``names`` whose value on ``settings`` is not ``True``/``False``."""
    return next((name for name in names if not isinstance(getattr(settings, name), bool)), None)


def _method_settings(kind: Any, method: str, epochs: int | None, settings: dict[str, Any]) -> Any:
    """``kind(epochs=..., **settings).checked()`` (a settings dataclass of a tune method), with
    ``epochs=None`` meaning the method's default and unknown names refused."""
    known = {f for f in kind.__dataclass_fields__ if f != "epochs"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise WalletFAQError(
            f"unknown tune setting(s) {unknown} for method={method!r}; choose from "
            f"{sorted(known)} and epochs"
        )
    return kind(epochs=kind.epochs if epochs is None else epochs, **settings).checked()
