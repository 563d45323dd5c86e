"""Adapted encoders: a frozen base encoder followed by a small learned linear map.

:func:`walletfaq.tune` (package :mod:`walletfaq.quality.tuning`) learns the map (``W``, optionally
``b``) from labelled questions;
:class:`AdaptedEncoder` applies it. The map is plain numpy at query time (no torch import),
so an adapted ``e5-small`` keeps the preset's torch-free question path.

``apply_to`` says which side the map transforms:

- ``"both"`` (default): questions *and* indexed FAQ texts go through the map. Both live in the
  same space again, so the index rows of a tuned retriever are the base rows transformed (no
  re-encoding). Measured best on BQ (benchmarks/README.md, "Domain tuning").
- ``"queries"``: only user questions are mapped; FAQ texts keep their base vectors. The map
  must then learn to move a question *towards the base vector* of its paraphrase.

The weights are stored as float32 arrays (:meth:`AdaptedEncoder.tensors`, for safetensors);
``info`` is a JSON-ready description of how the map was trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.errors import ModelError

ApplyTo = Literal["queries", "both"]
"""Which texts the map transforms: user questions only, or questions and FAQ texts."""

APPLY_TO: tuple[ApplyTo, ...] = ("queries", "both")


class AdaptedEncoder:
    """``base`` followed by the map ``x -> unit(x @ weight.T + bias)``.

    Satisfies :class:`walletfaq.encoders.protocol.Encoder`; ``encode_queries`` keeps the base's
    guarantee (a text gets the same vector whatever else is in the call) because the map is
    applied row by row.

    Args:
        base: the frozen encoder whose vectors are mapped.
        weight: float32 array of shape ``(dim_out, dim_in)``, ``dim_in == base.dim``.
        bias: optional float32 array of shape ``(dim_out,)``.
        apply_to: ``"both"`` (questions and FAQ texts) or ``"queries"`` (user questions only).
        info: JSON-ready description (method, settings, data summary, metrics).

    Raises:
        ModelError: shapes that do not fit the base encoder, non-finite weights, a bad
            ``apply_to``, or ``info`` that is not JSON-serialisable.
    """

    def __init__(
        self,
        base: Encoder,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        *,
        apply_to: ApplyTo = "both",
        info: Mapping[str, object] | None = None,
    ) -> None:
        weight = np.ascontiguousarray(np.asarray(weight, dtype=np.float32))
        if weight.ndim != 2 or weight.shape[1] != base.dim or weight.shape[0] < 1:
            raise ModelError(
                f"adapter weight must have shape (dim_out, {base.dim}) to follow model "
                f"{base.name!r}, got {weight.shape}; train it on this model's vectors"
            )
        if bias is not None:
            bias = np.ascontiguousarray(np.asarray(bias, dtype=np.float32))
            if bias.shape != (weight.shape[0],):
                raise ModelError(
                    f"adapter bias must have shape ({weight.shape[0]},), got {bias.shape}"
                )
        if not np.isfinite(weight).all() or (bias is not None and not np.isfinite(bias).all()):
            raise ModelError("adapter weights contain NaN or infinity; retrain the adapter")
        if apply_to not in APPLY_TO:
            raise ModelError(f"apply_to must be one of {list(APPLY_TO)}, got {apply_to!r}")
        if apply_to == "queries" and weight.shape[0] != base.dim:
            raise ModelError(
                f"apply_to='queries' keeps FAQ texts in the base space, so the map must keep "
                f"the dimension {base.dim}; got {weight.shape[0]}"
            )
        info_dict = json_info(info, "adapter info")
        self.base = base
        self.weight = weight
        self.bias = bias
        self.apply_to: ApplyTo = apply_to
        self.info: dict[str, Any] = info_dict

    def __repr__(self) -> str:
        return (
            f"AdaptedEncoder(base={self.base!r}, weight={self.weight.shape}, "
            f"bias={self.bias is not None}, apply_to={self.apply_to!r})"
        )

    @property
    def name(self) -> str:
        """The base model's name (the adapter is identified by :attr:`fingerprint`)."""
        return self.base.name

    @property
    def dim(self) -> int:
        """Output dimension of the map."""
        return int(self.weight.shape[0])

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the base fingerprint, the weights and ``apply_to``."""
        digest = hashlib.sha256()
        digest.update(f"adapter|{self.base.fingerprint}|{self.apply_to}|".encode())
        digest.update(f"{self.weight.shape}".encode())
        digest.update(self.weight.tobytes())
        if self.bias is not None:
            digest.update(b"bias")
            digest.update(self.bias.tobytes())
        return digest.hexdigest()

    @property
    def model(self) -> Any:
        """The base encoder's sentence-transformers model, when it has one."""
        return self.base.model  # type: ignore[attr-defined]

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Map base vectors of shape ``(n, dim_in)`` to unit rows of shape ``(n, dim_out)``."""
        array = as_unit_rows(vectors)
        if array.shape[1] != self.weight.shape[1]:
            raise ModelError(
                f"expected vectors of dimension {self.weight.shape[1]}, got {array.shape[1]}"
            )
        mapped = array @ self.weight.T
        if self.bias is not None:
            mapped = mapped + self.bias
        return as_unit_rows(mapped)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """User questions: the base's query vectors, mapped."""
        return self.transform(self.base.encode_queries(texts))

    def encode_queries_bulk(self, texts: Sequence[str]) -> np.ndarray:
        """FAQ texts with the query prompt, batched when the base can; mapped only when
        ``apply_to == "both"``."""
        bulk = getattr(self.base, "encode_queries_bulk", self.base.encode_queries)
        return self._corpus_side(bulk(texts))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """FAQ texts with the document prompt; mapped only when ``apply_to == "both"``."""
        return self._corpus_side(self.base.encode_documents(texts))

    def corpus_rows(self, base_rows: np.ndarray) -> np.ndarray:
        """Index rows for this encoder from index rows built with the base encoder."""
        return self._corpus_side(base_rows)

    def _corpus_side(self, vectors: np.ndarray) -> np.ndarray:
        return self.transform(vectors) if self.apply_to == "both" else as_unit_rows(vectors)

    def tensors(self) -> dict[str, np.ndarray]:
        """``{"weight": ..., "bias": ...}`` (bias only when set), float32, for safetensors."""
        out = {"weight": self.weight.copy()}
        if self.bias is not None:
            out["bias"] = self.bias.copy()
        return out

    @classmethod
    def from_tensors(
        cls,
        base: Encoder,
        tensors: Mapping[str, np.ndarray],
        *,
        apply_to: ApplyTo = "both",
        info: Mapping[str, object] | None = None,
    ) -> AdaptedEncoder:
        """Rebuild an adapter from :meth:`tensors` output (e.g. read from safetensors).

        Raises:
            ModelError: ``weight`` missing, an unknown tensor name, or shapes that do not fit.
        """
        unknown = sorted(set(tensors) - {"weight", "bias"})
        if "weight" not in tensors or unknown:
            raise ModelError(
                f"adapter tensors must be 'weight' and optionally 'bias', got {sorted(tensors)}"
            )
        return cls(base, tensors["weight"], tensors.get("bias"), apply_to=apply_to, info=info)


def json_info(info: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """``info`` as a new dict, checked to be JSON-serialisable (it goes into the manifest).

    Raises:
        ModelError: a value JSON cannot write (``what`` names the record).
    """
    info_dict = dict(info or {})
    try:
        json.dumps(info_dict)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what} must be JSON-serialisable ({exc})") from None
    return info_dict
