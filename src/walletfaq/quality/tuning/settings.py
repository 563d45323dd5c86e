"""Settings of the tuning methods, and their checks.

:class:`AdapterSettings` (``method="adapter"``) is a frozen dataclass whose ``checked()``
validates every field with :func:`is_int`, :func:`is_number` and :func:`first_non_bool` (shared
with fine-tuning's settings); :func:`_method_settings` builds a method's settings from the
keyword arguments of :func:`~walletfaq.quality.tuning.tune.tune`, refusing unknown names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from walletfaq.encoders.adapted import APPLY_TO, ApplyTo
from walletfaq.errors import WalletFAQError

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
