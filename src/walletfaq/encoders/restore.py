"""How a tuned encoder travels with a saved index: what is written, and how it is rebuilt.

A tuned retriever's encoder is a chain on top of a base model (a preset, a hub name, a folder):

- :class:`~walletfaq.encoders.adapted.AdaptedEncoder`: a linear map, saved as
  ``adapter.safetensors``;
- :class:`~walletfaq.encoders.finetuned.FinetunedEncoder`: trained transformer layers, saved as
  ``finetune.safetensors``;
- an adapter on a fine-tuned encoder: both files.

The manifest's ``tuning`` record says what was tuned, on top of which base (its fingerprint)
and how (``info``: settings, data, metrics, time):

- adapter: ``{"apply_to", "base_fingerprint", "info"}``;
- finetune: ``{"method": "finetune", "base_fingerprint", "info"}``;
- adapter on finetune: the adapter record plus ``"finetune"``: the finetune record.

Loading rebuilds the chain from the base model named in the manifest; a base whose fingerprint
differs from the recorded one raises :class:`IndexMismatchError`. Nothing here imports torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from walletfaq.encoders.protocol import Encoder
from walletfaq.errors import IndexFormatError, IndexMismatchError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TunedParts:
    """What :func:`tuned_parts` finds in an encoder: the manifest record and the tensors of
    each file (``None`` when absent)."""

    record: dict[str, Any] = field(default_factory=dict)
    adapter: dict[str, np.ndarray] | None = None
    finetune: dict[str, np.ndarray] | None = None


def _is_adapter(encoder: object) -> bool:
    from walletfaq.encoders.adapted import AdaptedEncoder

    return isinstance(encoder, AdaptedEncoder)


def _is_finetuned(encoder: object) -> bool:
    from walletfaq.encoders.finetuned import FinetunedEncoder

    return isinstance(encoder, FinetunedEncoder)


def is_tuned(encoder: object) -> bool:
    """Whether ``encoder`` is an adapter or a fine-tuned encoder."""
    return _is_adapter(encoder) or _is_finetuned(encoder)


def describe_tuning(encoder: Encoder) -> str | None:
    """How ``encoder`` was tuned, in a few words (``"adapter on pairs.tsv (120 pairs)"``,
    ``"adapter on finetune on q.jsonl (...)"``); ``None`` for an untuned encoder."""
    if not is_tuned(encoder):
        return None
    parts = []
    current: Any = encoder
    while is_tuned(current):
        info = getattr(current, "info", None)
        info = info if isinstance(info, dict) else {}
        data = info.get("data")
        data = data if isinstance(data, dict) else {}
        method = "finetune" if _is_finetuned(current) else "adapter"
        source = str(data.get("source", "?")).replace("\\", "/").rsplit("/", 1)[-1]
        count = data.get("positives")
        unit = "queries" if data.get("kind") == "queries" else "pairs"
        parts.append(f"{method} on {source}" + (f" ({count} {unit})" if count else ""))
        current = current.base
    return " + ".join(parts)


def _finetune_record(encoder: Any) -> dict[str, Any]:
    return {
        "method": "finetune",
        "base_fingerprint": encoder.base.fingerprint,
        "info": dict(encoder.info),
    }


def tuned_parts(encoder: Encoder) -> TunedParts:
    """The manifest ``tuning`` record and the tensors to save for ``encoder`` (empty for an
    untuned one).

    Raises:
        IndexFormatError: a chain this layout cannot store (an adapter on an adapter, a
            fine-tuned adapter...).
    """
    if _is_finetuned(encoder):
        if is_tuned(encoder.base):  # type: ignore[attr-defined]
            raise IndexFormatError("cannot save a fine-tuned model whose base is itself tuned")
        return TunedParts(_finetune_record(encoder), finetune=encoder.tensors())  # type: ignore[attr-defined]
    if not _is_adapter(encoder):
        return TunedParts()
    base = encoder.base  # type: ignore[attr-defined]
    record: dict[str, Any] = {
        "apply_to": encoder.apply_to,  # type: ignore[attr-defined]
        "base_fingerprint": base.fingerprint,
        "info": dict(encoder.info),  # type: ignore[attr-defined]
    }
    finetune = None
    if _is_finetuned(base):
        if is_tuned(base.base):
            raise IndexFormatError("cannot save an adapter on a doubly tuned model")
        record["finetune"] = _finetune_record(base)
        finetune = base.tensors()
    elif is_tuned(base):
        raise IndexFormatError("cannot save an adapter on top of another adapter")
    return TunedParts(record, adapter=encoder.tensors(), finetune=finetune)  # type: ignore[attr-defined]


def restore(
    encoder: Encoder,
    record: dict[str, Any],
    *,
    adapter: dict[str, np.ndarray] | None,
    finetune: dict[str, np.ndarray] | None,
    where: object,
) -> Encoder:
    """Rebuild the tuned encoder of a saved index on top of ``encoder`` (its base model).

    An encoder that is already tuned is returned as is (the caller compares fingerprints).

    Raises:
        IndexMismatchError: ``encoder`` is not the base the index was tuned from.
    """
    if not record or is_tuned(encoder):
        return encoder
    if finetune is not None:
        from walletfaq.encoders.finetuned import FinetunedEncoder

        inner = record if record.get("method") == "finetune" else record.get("finetune", {})
        _check_base(encoder, inner, where)
        info = inner.get("info", {})
        encoder = FinetunedEncoder(encoder, finetune, info=info if isinstance(info, dict) else {})
    if adapter is not None:
        from walletfaq.encoders.adapted import AdaptedEncoder

        _check_base(encoder, record, where)
        info = record.get("info", {})
        encoder = AdaptedEncoder.from_tensors(
            encoder,
            adapter,
            apply_to=record["apply_to"],
            info=info if isinstance(info, dict) else {},
        )
    return encoder


def _check_base(encoder: Encoder, record: dict[str, Any], where: object) -> None:
    expected = str(record.get("base_fingerprint", ""))
    if encoder.fingerprint != expected:
        raise IndexMismatchError(
            f"{where}: tuned on top of another model (base fingerprint {expected[:12]}, given "
            f"{encoder.name!r} with fingerprint {encoder.fingerprint[:12]}); load it with the "
            "model it was tuned from"
        )


def base_fingerprint(record: dict[str, Any]) -> str | None:
    """The fingerprint of the model a saved index was tuned from (for an adapter on a
    fine-tuned model, the fine-tuned model's base), or ``None`` for an untuned index."""
    if not record:
        return None
    inner = record.get("finetune") if isinstance(record.get("finetune"), dict) else record
    value = inner.get("base_fingerprint") if isinstance(inner, dict) else None
    return str(value) if value is not None else None


def matching_engine(encoder: Encoder, fingerprint: str) -> Encoder:
    """``encoder``, or the variant of the same weights whose rows engine gave ``fingerprint``
    (a preset's light engine or sentence-transformers: see
    :meth:`~walletfaq.encoders.presets.PresetEncoder.with_fingerprint`), so that an index is
    searched and edited with the engine that embedded it."""
    if encoder.fingerprint == fingerprint:
        return encoder
    variant = getattr(encoder, "with_fingerprint", None)
    found = variant(fingerprint) if callable(variant) else None
    if found is None:
        return encoder
    logger.info(
        "the index rows were embedded by another engine of %s; using that engine for it "
        "(rebuild the index to embed with the default one)",
        encoder.name,
    )
    return found  # type: ignore[no-any-return]
