"""Every value of a saved index's manifest is checked for its range, not only its type, even
when the manifest's own checksum matches (a forged manifest): an answer threshold is a cosine
score in [-1, 1], counts and dimensions are bounded, HNSW settings are in range, the fallback is
a message, and a model named by a path must be a model folder, refused at once otherwise.
The same rules hold where the values come from code (the retriever's setters, ``IndexSpec``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from walletfaq import (
    FAQRetriever,
    IndexFormatError,
    ModelError,
    QueryError,
    WalletFAQError,
)
from walletfaq.index.directory import Manifest
from walletfaq.index.search import SCORE_ROUNDING, in_score_range
from walletfaq.index.vector_index import HNSW_LIMITS, IndexSpec

from .conftest import HashEncoder

FAST_S = 1.0  # a refusal is a check, not a scan: measured well under 0.01 s


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from walletfaq import Corpus

    from .conftest import TINY_ENTRIES

    corpus = Corpus.from_entries(TINY_ENTRIES)
    return FAQRetriever.build(corpus, model=HashEncoder()).save(tmp_path_factory.mktemp("p") / "i")


def forge(pristine: Path, target: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of ``pristine`` whose manifest ``change`` edited, with its checksum recomputed
    (what someone forging a manifest would do)."""
    import shutil

    shutil.copytree(pristine, target)
    raw = json.loads((target / "manifest.json").read_text("utf-8"))
    change(raw)
    fields = {name: value for name, value in raw.items() if name != "checksum"}
    raw["checksum"] = Manifest(**fields).to_dict()["checksum"]
    (target / "manifest.json").write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    return target


def setting(name: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["settings"].__setitem__(name, value)


def field(name: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.__setitem__(name, value)


def index_field(name: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["index"].__setitem__(name, value)


CASES = {
    "threshold -5 (every answer confident)": (setting("threshold", -5), "settings.threshold"),
    "threshold 1.5": (setting("threshold", 1.5), "settings.threshold"),
    "fallback empty": (setting("fallback", " "), "settings.fallback"),
    "fallback too long": (setting("fallback", "x" * 20_001), "settings.fallback"),
    "unknown setting": (setting("temperature", 0.7), "settings has an unknown key"),
    "dim 0": (field("dim", 0), "dim must be from 1"),
    "dim 10**12": (field("dim", 10**12), "dim must be from 1"),
    "entry_count -1": (field("entry_count", -1), "entry_count must be from 1"),
    "fewer vectors than entries": (field("vector_count", 2), "vector_count must be at least"),
    "empty model": (field("model", ""), "model must be a non-empty"),
    "model with a newline": (field("model", "a\nb"), "model must be a non-empty"),
    "huge model name": (field("model", "m" * 1_001), "model must be a non-empty"),
    "empty fingerprint": (field("model_fingerprint", ""), "model_fingerprint must be"),
    "empty version": (field("walletfaq_version", ""), "walletfaq_version must be"),
    "corpus hash not SHA-256": (field("corpus_hash", "x"), "corpus_hash must be a SHA-256"),
    "file digest not SHA-256": (
        lambda raw: raw["files"].__setitem__("index.faiss", "x"),
        "files must map names to SHA-256",
    ),
    "index kind ivf": (index_field("kind", "ivf"), "index kind must be"),
    "hnsw_m 10**9": (index_field("hnsw_m", 10**9), "hnsw_m must be an int from 1 to 256"),
    "ef_search true": (index_field("ef_search", True), "ef_search must be an int"),
    "ef_construction 0": (index_field("ef_construction", 0), "ef_construction must be"),
    "unknown index key": (index_field("nlist", 4), "index:"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_forged_manifest_value_out_of_range_is_refused_naming_the_field(
    pristine, tmp_path, case
) -> None:
    change, message = CASES[case]
    forged = forge(pristine, tmp_path / "forged", change)
    started = time.perf_counter()
    with pytest.raises(IndexFormatError, match="malformed manifest") as caught:
        FAQRetriever.load(forged, model=HashEncoder())
    assert message in str(caught.value)
    assert time.perf_counter() - started < FAST_S


def test_the_pristine_copy_loads(pristine, tmp_path) -> None:
    copy = forge(pristine, tmp_path / "same", lambda raw: None)
    assert FAQRetriever.load(copy, model=HashEncoder()).ask("怎么退款", k=1)[0].id == "refund"


# ------------------------------------------------------------------------ where a model comes from
@pytest.mark.parametrize("kind", ["a folder of other files", "a missing absolute path"])
def test_a_manifest_naming_a_path_that_is_no_model_is_refused_at_once(
    pristine, tmp_path, kind
) -> None:
    folder = tmp_path / "share"
    if kind == "a folder of other files":
        for number in range(200):  # a model folder is never scanned unless it is one
            (folder / f"d{number}").mkdir(parents=True)
            (folder / f"d{number}" / "x.txt").write_text("x", "utf-8")
    forged = forge(pristine, tmp_path / "forged", field("model", str(folder)))
    started = time.perf_counter()
    with pytest.raises(ModelError, match=str(folder)):
        FAQRetriever.load(forged)  # the model the manifest names
    assert time.perf_counter() - started < FAST_S


def test_a_model_argument_that_is_a_folder_but_no_model_is_refused(tiny_corpus, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("x", "utf-8")
    with pytest.raises(ModelError, match="is a folder but not a model"):
        FAQRetriever.build(tiny_corpus, model=str(tmp_path))


# ------------------------------------------------------------------------ the same rules in code
@pytest.mark.parametrize("threshold", [-5, -1.001, 1.01, 2])
def test_a_threshold_outside_the_cosine_range_is_refused_everywhere(tiny_corpus, threshold):
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with pytest.raises(QueryError, match="from -1 to 1"):
        retriever.threshold = threshold
    with pytest.raises(QueryError, match="from -1 to 1"):
        retriever.answer("怎么退款", threshold=threshold)
    with pytest.raises(QueryError, match="from -1 to 1"):
        FAQRetriever(retriever.corpus, retriever.encoder, retriever.index, threshold=threshold)


def test_a_fallback_longer_than_an_answer_is_refused_in_code(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with pytest.raises(WalletFAQError, match="more than 20,000"):
        FAQRetriever(retriever.corpus, retriever.encoder, retriever.index, fallback="x" * 20_001)


@pytest.mark.parametrize("name", sorted(HNSW_LIMITS))
def test_hnsw_settings_past_their_limit_are_refused_when_building(name) -> None:
    with pytest.raises(WalletFAQError, match=f"{name} must be an int from 1 to"):
        IndexSpec("hnsw", **{name: HNSW_LIMITS[name] + 1})
    assert getattr(IndexSpec("hnsw", **{name: HNSW_LIMITS[name]}), name) == HNSW_LIMITS[name]


# ----------------------------------------------------------------------------- generated
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    threshold=st.one_of(
        st.floats(min_value=-3, max_value=3),
        st.sampled_from(
            [-1.0, 1.0, -1 - SCORE_ROUNDING, 1 + SCORE_ROUNDING, 1 + 2 * SCORE_ROUNDING]
        ),
    )
)
def test_a_threshold_saves_and_loads_exactly_when_the_setter_accepts_it(
    pristine, tmp_path_factory, threshold
) -> None:
    retriever = FAQRetriever.load(pristine, model=HashEncoder())
    try:
        retriever.threshold = threshold
        accepted = True
    except QueryError:
        accepted = False
    assert accepted == in_score_range(threshold)
    forged = forge(pristine, tmp_path_factory.mktemp("t") / "i", setting("threshold", threshold))
    try:
        loaded = FAQRetriever.load(forged, model=HashEncoder())
    except IndexFormatError as exc:
        assert not accepted, f"a threshold the setter accepts does not load: {exc}"
    else:
        assert accepted and loaded.threshold == threshold


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(HNSW_LIMITS)), value=st.integers(-2, 5_000) | st.booleans())
def test_an_hnsw_setting_loads_exactly_when_index_spec_accepts_it(
    pristine, tmp_path_factory, name, value
) -> None:
    try:
        IndexSpec("flat", **{name: value})
        accepted = True
    except WalletFAQError:
        accepted = False
    assert accepted == (not isinstance(value, bool) and 1 <= value <= HNSW_LIMITS[name])
    forged = forge(pristine, tmp_path_factory.mktemp("h") / "i", index_field(name, value))
    try:
        FAQRetriever.load(forged, model=HashEncoder())
    except IndexFormatError:
        assert not accepted
    else:
        assert accepted
