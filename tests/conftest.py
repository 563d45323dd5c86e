"""Shared fixtures: tiny corpora and a tiny deterministic encoder (no model download)."""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.store_support import postgres_cluster, store_location  # noqa: F401 (fixtures)
from walletfaq import Corpus, FAQRetriever

SHARED = Path(__file__).resolve().parents[2] / "shared"


class HashEncoder:
    """Character uni/bi-gram hashing encoder: deterministic, instant, good enough to rank
    near-identical texts first. Stands in for a real model in unit tests."""

    def __init__(self, dim: int = 64, name: str = "hash-test", salt: str = "") -> None:
        self._dim = dim
        self._name = name
        self._salt = salt
        self.texts_encoded = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return f"{self._name}-{self._dim}-{self._salt}"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
            for gram in grams:
                out[row, zlib.crc32((self._salt + gram).encode()) % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


TINY_ENTRIES = [
    {
        "id": "login",
        "category": "account",
        "question": "无法登录怎么办",
        "answer": "检查网络并重置密码。",
        "alt_questions": ["登不上去", "login failed"],
    },
    {
        "id": "topup",
        "category": "money",
        "question": "充值不到账怎么办",
        "answer": "查看交易记录后联系客服。",
        "alt_questions": ["钱充了没到", "top up missing"],
    },
    {
        "id": "refund",
        "category": "money",
        "question": "退款流程是怎样的",
        "answer": "先联系商户申请退款。",
        "alt_questions": ["怎么退款", "refund steps"],
    },
    {
        "id": "fees",
        "category": "money",
        "question": "有哪些费用",
        "answer": "以服务条款为准。",
        "alt_questions": ["收费吗", "提现手续费"],
    },
    {
        "id": "safety",
        "category": "account",
        "question": "怎样保证账户安全",
        "answer": "开启两步验证。",
        "alt_questions": ["钱包安全吗", "防诈骗"],
    },
]


@pytest.fixture
def encoder() -> HashEncoder:
    return HashEncoder()


@pytest.fixture
def tiny_corpus() -> Corpus:
    return Corpus.from_entries(TINY_ENTRIES, source="tiny")


@pytest.fixture
def tiny_corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in TINY_ENTRIES), encoding="utf-8"
    )
    return path


@pytest.fixture(autouse=True)
def isolated_package_logger() -> Iterator[None]:
    """The command line and the worker factory set up the ``walletfaq`` logger (a handler, a
    level, no propagation), and import-linter's logging set-up disables the loggers that exist
    when it runs; put them back after each test, so that ``caplog`` sees their records in every
    later test."""
    package_logger = logging.getLogger("walletfaq")
    saved = (list(package_logger.handlers), package_logger.level, package_logger.propagate)
    yield
    package_logger.handlers[:] = saved[0]
    package_logger.setLevel(saved[1])
    package_logger.propagate = saved[2]
    for name, child in logging.Logger.manager.loggerDict.items():
        if name.startswith("walletfaq") and isinstance(child, logging.Logger):
            child.disabled = False


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Unit tests write cached indexes into a temporary directory, never the user's cache.
    Derived models are shared across tests via WALLETFAQ_TEST_MODEL_CACHE when set."""
    monkeypatch.setenv("WALLETFAQ_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real-model tests share the user cache (the model is built once, not per test)."""
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)


@pytest.fixture(scope="module")
def default_retriever() -> FAQRetriever:
    """The bundled corpus with the default model, built in (or read from) the user cache."""
    os.environ.pop("WALLETFAQ_CACHE_DIR", None)
    return FAQRetriever.from_corpus()


@pytest.fixture
def routed_encoder(encoder: HashEncoder, monkeypatch: pytest.MonkeyPatch) -> HashEncoder:
    """The command line resolves models by name: route ``--model hash-test`` (and the
    manifest name of indexes built with the test encoder) to the test encoder."""
    import walletfaq.retrieval.retriever as retriever_module

    original = retriever_module.resolve_encoder
    monkeypatch.setattr(
        retriever_module,
        "resolve_encoder",
        lambda model=None: encoder if model in ("hash-test", encoder) else original(model),
    )
    return encoder


@pytest.fixture
def index_dir(tmp_path: Path, tiny_corpus: Corpus, routed_encoder: HashEncoder) -> Path:
    """A saved index of the tiny corpus, loadable by the command line."""
    return FAQRetriever.build(tiny_corpus, model=routed_encoder).save(tmp_path / "idx")
