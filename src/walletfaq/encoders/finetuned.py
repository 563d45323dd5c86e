"""A fine-tuned encoder as used at query time: a base model plus trained tensors.

:class:`FinetunedEncoder` is what a saved index tuned with ``method="finetune"`` is loaded
as; training lives above, in :mod:`walletfaq.quality.tuning.finetune`, and is never imported
to answer a question. The torch model is assembled (:func:`assemble`) on first use.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from walletfaq.encoders.adapted import json_info
from walletfaq.encoders.protocol import Encoder
from walletfaq.encoders.sentence_transformer import SentenceTransformerEncoder
from walletfaq.errors import ModelError, WalletFAQError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

TensorDType = Literal["float16", "float32"]
"""How the trained tensors are stored (and rounded to, so the saved index answers exactly as
the tuned retriever in memory)."""


class FinetunedEncoder:
    """A sentence-transformers encoder whose non-embedding weights were fine-tuned.

    Built from the base encoder (the model it was tuned from) plus the trained tensors; the
    torch model is assembled on first use (a copy of the base model sharing its frozen
    embedding tables, with the tensors loaded), so loading a saved index stays cheap until the
    first question. Satisfies :class:`walletfaq.encoders.protocol.Encoder`; questions are
    encoded one at a time through sentence-transformers (with the query prompt), like
    :class:`~walletfaq.encoders.sentence_transformer.SentenceTransformerEncoder`.

    Args:
        base: the encoder tuned from; must expose its sentence-transformers ``model``.
        tensors: parameter name → array, as returned by :meth:`tensors` (float16 or float32).
        info: JSON-ready description (method, settings, data summary, metrics).
        model: the already-assembled tuned model (from training); skips the assembly.

    Raises:
        ModelError: no tensors, a non-finite value, or ``info`` not JSON-serialisable (names
            and shapes are checked against the model when it is assembled).
    """

    def __init__(
        self,
        base: Encoder,
        tensors: Mapping[str, np.ndarray],
        *,
        info: Mapping[str, object] | None = None,
        model: SentenceTransformer | None = None,
    ) -> None:
        if not tensors:
            raise ModelError("a fine-tuned encoder needs its trained tensors; got none")
        arrays = {str(name): np.ascontiguousarray(value) for name, value in tensors.items()}
        for name, value in arrays.items():
            if value.dtype not in (np.float16, np.float32) or not np.isfinite(value).all():
                raise ModelError(
                    f"fine-tuned tensor {name!r} must be finite float16/float32, got "
                    f"{value.dtype}; re-tune the index"
                )
        info_dict = json_info(info, "fine-tuning info")
        self.base = base
        self.info: dict[str, Any] = info_dict
        self._tensors = arrays
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        self._st = (
            SentenceTransformerEncoder(base.name, loader=lambda _name, _device: model)
            if model is not None
            else None
        )

    def __repr__(self) -> str:
        return f"FinetunedEncoder(base={self.base!r}, tensors={len(self._tensors)})"

    @property
    def name(self) -> str:
        """The base model's name (the tuned weights are identified by :attr:`fingerprint`)."""
        return self.base.name

    @property
    def dim(self) -> int:
        """Embedding dimension (the base's: fine-tuning keeps the architecture)."""
        return self.base.dim

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the base fingerprint and every trained tensor (name, dtype, shape,
        bytes)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(f"finetune|{self.base.fingerprint}|".encode())
            for name in sorted(self._tensors):
                value = self._tensors[name]
                digest.update(f"{name}|{value.dtype}|{value.shape}|".encode())
                digest.update(value.tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @property
    def parameters(self) -> int:
        """How many trained values the tensors hold."""
        return int(sum(value.size for value in self._tensors.values()))

    @property
    def model(self) -> SentenceTransformer:
        """The tuned sentence-transformers model (assembled on first use)."""
        return self._encoder().model

    def _encoder(self) -> SentenceTransformerEncoder:
        with self._lock:
            if self._st is None:
                tuned = assemble(base_model(self.base), self._tensors)
                self._st = SentenceTransformerEncoder(
                    self.base.name, loader=lambda _name, _device: tuned
                )
            return self._st

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """User questions, with the query prompt, one at a time (see
        :meth:`SentenceTransformerEncoder.encode_queries`)."""
        return self._encoder().encode_queries(texts)

    def encode_queries_bulk(self, texts: Sequence[str]) -> np.ndarray:
        """FAQ texts with the query prompt, batched (for building the index)."""
        return self._encoder().encode_queries_bulk(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """FAQ texts with the document prompt, batched."""
        return self._encoder().encode_documents(texts)

    def tensors(self) -> dict[str, np.ndarray]:
        """The trained tensors (parameter name → array), for safetensors."""
        return {name: value.copy() for name, value in self._tensors.items()}


def base_model(encoder: Encoder) -> SentenceTransformer:
    """The sentence-transformers model of ``encoder``.

    Raises:
        WalletFAQError: the encoder has none (a custom encoder, or a model that is not a torch
            sentence-transformers model), so it cannot be fine-tuned.
    """
    try:
        model = encoder.model  # type: ignore[attr-defined]
    except AttributeError:
        model = None
    if model is None or not hasattr(model, "named_parameters") or not hasattr(model, "encode"):
        raise WalletFAQError(
            f"method='finetune' trains a sentence-transformers model, but the encoder "
            f"{encoder.name!r} ({type(encoder).__name__}) has none; use a preset, a hub name "
            "or a local sentence-transformers folder, or method='adapter'"
        )
    return model  # type: ignore[no-any-return]


def trainable_copy(model: SentenceTransformer, freeze_embeddings: bool) -> SentenceTransformer:
    """A deep copy of ``model`` to train. With ``freeze_embeddings`` its ``nn.Embedding``
    tables are frozen and share the base model's memory (not copied, never written)."""
    import torch

    memo: dict[int, Any] = {}
    if freeze_embeddings:
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding):
                memo[id(module.weight)] = torch.nn.Parameter(
                    module.weight.data, requires_grad=False
                )
    copied = copy.deepcopy(model, memo)
    if not freeze_embeddings:
        for parameter in copied.parameters():
            parameter.requires_grad_(True)
    return copied


def assemble(base: SentenceTransformer, tensors: Mapping[str, np.ndarray]) -> SentenceTransformer:
    """A copy of ``base`` (frozen embedding tables shared) with ``tensors`` loaded.

    Raises:
        ModelError: a tensor names no parameter of the model, has another shape, or would
            overwrite an embedding table (the index was tuned on another architecture).
    """
    import torch

    tuned = trainable_copy(base, freeze_embeddings=True)
    parameters = dict(tuned.named_parameters())
    unknown = sorted(set(tensors) - set(parameters))
    if unknown:
        raise ModelError(
            f"fine-tuned tensors {unknown[:3]} name no parameter of model {type(base).__name__}; "
            "the index was tuned from another model: load it with that model"
        )
    with torch.no_grad():
        for name, value in tensors.items():
            parameter = parameters[name]
            if tuple(parameter.shape) != tuple(value.shape):
                raise ModelError(
                    f"fine-tuned tensor {name!r} has shape {tuple(value.shape)}, the model's "
                    f"parameter {tuple(parameter.shape)}; load the index with the model it was "
                    "tuned from"
                )
            if not parameter.requires_grad:  # a shared (frozen) embedding table
                parameter = torch.nn.Parameter(parameter.data.clone(), requires_grad=False)
                _set_parameter(tuned, name, parameter)
            parameter.copy_(torch.from_numpy(np.asarray(value)).to(parameter.dtype))
    tuned.eval()
    return tuned


def _set_parameter(model: torch.nn.Module, name: str, parameter: torch.nn.Parameter) -> None:
    *path, leaf = name.split(".")
    module = model
    for part in path:
        module = getattr(module, part)
    setattr(module, leaf, parameter)
