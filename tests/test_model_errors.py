"""A model that cannot be had fails at once, in one line that says what to do instead."""

from __future__ import annotations

import socket

import pytest

import walletfaq.encoders.sentence_transformer as encoders
from walletfaq import FAQRetriever, ModelError


def test_an_unknown_hub_model_with_the_hub_unreachable_fails_at_once(
    tiny_corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on loopback:9
    import sentence_transformers

    # one probe, then the error: the hub client (and its minute of retries) is never called
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", lambda *a, **k: pytest.fail())
    with pytest.raises(ModelError, match="cannot be reached from this machine") as caught:
        FAQRetriever.from_corpus(tiny_corpus, model="no-such-org/no-such-model", cache=False)
    message = str(caught.value)
    assert "\n" not in message and "local model folder" in message and "e5-small" in message


def test_the_hub_probe_sees_a_listening_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert encoders.hub_reachable(f"http://127.0.0.1:{port}", timeout=2)
    assert not encoders.hub_reachable(f"http://127.0.0.1:{port}", timeout=2)
    assert not encoders.hub_reachable("not a url")


def test_hf_hub_offline_skips_the_probe(tiny_corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(encoders, "hub_reachable", lambda *a, **k: pytest.fail("probed"))
    with pytest.raises(ModelError, match="cannot load sentence-transformers model"):
        FAQRetriever.from_corpus(tiny_corpus, model="no-such-org/no-such-model", cache=False)
