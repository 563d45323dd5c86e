"""The adapter trains in numpy: its loss and gradients are those of the torch reference
(autograd on the same formula), for every setting that changes the formula."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from walletfaq.quality.tuning.adapter import _Problem, adapter_loss_and_gradients
from walletfaq.quality.tuning.settings import AdapterSettings

torch = pytest.importorskip("torch")  # the reference only: the library trains without it


def _problem(seed: int, dim: int = 12, examples: int = 10) -> _Problem:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((3 * examples, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    negative = np.where(
        rng.random(examples) < 0.5, rng.integers(2 * examples, 3 * examples, examples), -1
    )
    return _Problem(
        vectors=vectors,
        anchor=np.arange(examples),
        positive=np.arange(examples, 2 * examples),
        negative=negative.astype(np.int64),
        group=np.array([0, 0, 1, 2, 3, 3, 4, 5, 6, 7][:examples], dtype=np.int64),
        validation=np.zeros(examples, dtype=bool),
        holdout_queries=np.zeros(0, dtype=np.int64),
        holdout_rows=np.zeros(0, dtype=np.int64),
        holdout_item=np.zeros(0, dtype=np.int64),
        holdout_gold=[],
        holdout_exclude=None,
        candidates_are_corpus=False,
        data_examples=examples,
    )


def _torch_reference(params, problem, batch, settings):  # type: ignore[no-untyped-def]
    """The formula as the earlier torch trainer computed it, differentiated by autograd."""
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()
    }
    dim = problem.vectors.shape[1]
    eye = torch.eye(dim, dtype=torch.float64)
    w = tensors["full"] if "full" in tensors else eye + tensors["left"] @ tensors["right"]
    bias = tensors.get("bias")
    vectors = torch.tensor(problem.vectors, dtype=torch.float64)

    def mapped(x):  # type: ignore[no-untyped-def]
        y = x @ w.T
        if bias is not None:
            y = y + bias
        return torch.nn.functional.normalize(y, dim=1)

    a = mapped(vectors[problem.anchor[batch]])
    p_raw = vectors[problem.positive[batch]]
    p = mapped(p_raw) if settings.apply_to == "both" else p_raw
    groups = torch.from_numpy(problem.group[batch])
    same = groups[:, None] == groups[None, :]
    same.fill_diagonal_(False)
    logits = ((a @ p.T) / settings.temperature).masked_fill(same, float("-inf"))
    neg_index = problem.negative[batch]
    columns = [logits]
    if (neg_index >= 0).any():
        n_raw = vectors[neg_index[neg_index >= 0]]
        n = mapped(n_raw) if settings.apply_to == "both" else n_raw
        columns.append((a @ n.T) / settings.temperature)
    target = torch.arange(len(batch))
    loss = torch.nn.functional.cross_entropy(torch.cat(columns, dim=1), target)
    if settings.symmetric:
        loss = 0.5 * (loss + torch.nn.functional.cross_entropy(logits.T, target))
    if settings.identity_decay > 0:
        loss = loss + settings.identity_decay * ((w - eye) ** 2).sum()
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in tensors.items()}


@pytest.mark.parametrize(
    ("rank", "bias", "apply_to", "symmetric", "identity_decay"),
    [
        (rank, bias, apply_to, symmetric, decay)
        for rank, bias, apply_to, symmetric, decay in itertools.product(
            (None, 3), (False, True), ("queries", "both"), (False, True), (0.0, 0.01)
        )
    ],
)
def test_numpy_loss_and_gradients_match_torch_autograd(
    rank, bias, apply_to, symmetric, identity_decay
) -> None:
    settings = AdapterSettings(
        rank=rank, bias=bias, apply_to=apply_to, symmetric=symmetric, identity_decay=identity_decay
    )
    problem = _problem(seed=3)
    dim = problem.vectors.shape[1]
    rng = np.random.default_rng(7)
    params: dict[str, np.ndarray] = {}
    if rank is None:
        params["full"] = (np.eye(dim) + 0.1 * rng.standard_normal((dim, dim))).astype(np.float32)
    else:
        params["left"] = (0.1 * rng.standard_normal((dim, rank))).astype(np.float32)
        params["right"] = (rng.standard_normal((rank, dim)) / np.sqrt(dim)).astype(np.float32)
    if bias:
        params["bias"] = (0.1 * rng.standard_normal(dim)).astype(np.float32)
    eye = np.eye(dim, dtype=np.float32)
    weight = params["full"] if rank is None else eye + params["left"] @ params["right"]
    batch = np.arange(len(problem.anchor))
    loss, grads = adapter_loss_and_gradients(params, problem, batch, settings, weight, eye)
    want_loss, want_grads = _torch_reference(params, problem, batch, settings)
    assert loss == pytest.approx(want_loss, rel=1e-4)
    assert set(grads) == set(want_grads)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, want_grads[name], rtol=1e-3, atol=1e-5)
