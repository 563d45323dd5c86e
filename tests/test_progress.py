"""What a user sees while waiting and when printing: progress on evaluate, compare and
ensemble builds, plain bars without ipywidgets, no third-party loading bars, and a compare
frame that prints readably."""

from __future__ import annotations

import logging

import pytest

import walletfaq._progress as progress_module
from walletfaq import FAQRetriever, HybridRetriever, compare, evaluate

from .conftest import HashEncoder
from .test_evaluate import QUERIES


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


@pytest.fixture
def other(tiny_corpus) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder(salt="other", name="hash-other"))


def test_print_of_compare_is_one_readable_line_per_metric(retriever, other, capsys) -> None:
    frame = compare({"default": retriever, "tuned + hybrid": other}, QUERIES, progress=False)
    print(frame)
    lines = capsys.readouterr().out.splitlines()
    assert "rows x" not in "\n".join(lines)
    assert lines[0].startswith("compare: 5 in-domain queries") and "'default'" in lines[0]
    assert lines[1].split() == ["metric", "default", "tuned", "+", "hybrid"]
    metrics = [line.split()[0] for line in lines[2:]]
    assert metrics == ["recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10"]
    first = lines[2]
    assert first.count("[") == 2 and first.count("p=") == 1  # no p-value for the baseline
    assert frame.summary() == "\n".join(lines)


def test_the_compare_frame_is_still_a_pandas_frame(retriever, other) -> None:
    frame = compare({"a": retriever, "b": other}, QUERIES, progress=False)
    assert list(frame.index) == ["a", "b"] and frame.shape == (2, 25)
    transposed = frame.round(3).T
    assert type(transposed).__name__ == "DataFrame" and "recall@1 low" in transposed.index


def test_evaluate_shows_progress_unless_asked_not_to(retriever, capsys) -> None:
    evaluate(retriever, QUERIES)
    assert "evaluating" in capsys.readouterr().err
    evaluate(retriever, QUERIES, progress=False)
    assert capsys.readouterr().err == ""


def test_compare_labels_the_bar_of_each_retriever_it_evaluates(retriever, other, capsys) -> None:
    compare({"first": retriever, "second": other}, QUERIES)
    err = capsys.readouterr().err
    assert "evaluating first (1 of 2)" in err and "evaluating second (2 of 2)" in err


def test_building_several_ensemble_members_names_each(tiny_corpus, caplog) -> None:
    models = [HashEncoder(), HashEncoder(salt="b", name="hash-b")]
    with caplog.at_level(logging.INFO, logger="walletfaq"):
        HybridRetriever.from_corpus(tiny_corpus, model=models, lexical=None, cache=False)
    assert "ensemble member 1 of 2: hash-test" in caplog.text
    assert "ensemble member 2 of 2: hash-b" in caplog.text


def test_bars_are_plain_tqdm_where_ipywidgets_is_missing(monkeypatch) -> None:
    import tqdm.std

    real = progress_module.importlib.util.find_spec
    monkeypatch.setattr(
        progress_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ipywidgets" else real(name, *a),
    )
    bar = progress_module.progress_bar(total=1, disable=True)
    assert type(bar) is tqdm.std.tqdm


def test_bars_use_tqdm_auto_where_ipywidgets_is_installed(monkeypatch) -> None:
    import tqdm.auto

    monkeypatch.setattr(progress_module.importlib.util, "find_spec", lambda name, *a: object())
    assert type(progress_module.progress_bar(total=1, disable=True)) is tqdm.auto.tqdm


def test_model_loads_hide_transformers_bars_and_restore_them_after() -> None:
    transformers_logging = pytest.importorskip("transformers.utils.logging")
    transformers_logging.enable_progress_bar()
    with progress_module.quiet_library_bars():
        assert not transformers_logging.is_progress_bar_enabled()
    assert transformers_logging.is_progress_bar_enabled()


@pytest.mark.parametrize("prepared", [False, True])
def test_in_a_kernel_without_ipywidgets_library_imports_of_tqdm_auto_say_nothing(
    monkeypatch, prepared: bool
) -> None:
    ipython = pytest.importorskip("IPython")
    import importlib
    import sys
    import types
    import warnings

    class Kernel:  # what tqdm.autonotebook checks to tell a notebook kernel
        pass

    monkeypatch.setattr(ipython, "get_ipython", lambda: Kernel(), raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    for name in ("tqdm.autonotebook", "tqdm.auto"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    real = progress_module.importlib.util.find_spec
    monkeypatch.setattr(
        progress_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ipywidgets" else real(name, *a),
    )
    import tqdm.notebook

    monkeypatch.setattr(tqdm.notebook, "IProgress", None)  # as without ipywidgets
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if prepared:
            progress_module.prepare_notebook_bars()
        auto = importlib.import_module("tqdm.auto")  # what the hub client imports
    warned = [w for w in caught if "IProgress not found" in str(w.message)]
    assert bool(warned) is not prepared  # without preparing, the simulation does warn
    assert not issubclass(auto.tqdm, tqdm.notebook.tqdm)  # the plain bar either way


def test_resolving_a_model_prepares_the_notebook_bars(monkeypatch) -> None:
    from walletfaq.encoders import presets

    calls: list[bool] = []
    monkeypatch.setattr(presets, "prepare_notebook_bars", lambda: calls.append(True))
    presets.resolve_encoder(HashEncoder())
    assert calls == [True]
