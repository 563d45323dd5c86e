"""The no-answer threshold: a number in [-1, 1] wherever one is given (scores are cosines),
set on the command line by `build`, `serve` and `calibrate`, and used by `eval`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletfaq import FAQRetriever, HybridRetriever, QueryError, WalletFAQError
from walletfaq.cli import main
from walletfaq.quality.calibration import PRESET_RULE

IN_RANGE = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
OUT_OF_RANGE = st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: abs(v) > 1.0)


@pytest.fixture(scope="module")
def retriever() -> FAQRetriever:
    from walletfaq import Corpus

    from .conftest import TINY_ENTRIES, HashEncoder

    return FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=HashEncoder())


@pytest.fixture(scope="module")
def hybrid(retriever) -> HybridRetriever:
    return HybridRetriever([retriever], lexical=None)


@settings(max_examples=60, deadline=None)
@given(value=IN_RANGE)
def test_any_threshold_in_minus_one_to_one_is_accepted_everywhere(retriever, hybrid, value) -> None:
    retriever.answer("怎么退款", threshold=value)
    hybrid.answer("怎么退款", threshold=value)
    retriever.threshold = value
    assert retriever.threshold == value


@settings(max_examples=60, deadline=None)
@given(value=OUT_OF_RANGE | st.integers().filter(lambda v: abs(v) > 1))
def test_a_threshold_outside_minus_one_to_one_is_refused_everywhere(
    retriever, hybrid, value
) -> None:
    before = retriever.threshold
    with pytest.raises(QueryError, match=r"threshold must be a cosine score, from -1 to 1"):
        retriever.answer("怎么退款", threshold=value)
    with pytest.raises(QueryError, match=r"threshold must be a cosine score, from -1 to 1"):
        hybrid.answer("怎么退款", threshold=value)
    with pytest.raises(QueryError, match=r"threshold must be a cosine score, from -1 to 1"):
        retriever.threshold = value
    assert retriever.threshold == before


def test_a_saved_threshold_outside_the_range_is_refused_on_load(tmp_path: Path, retriever):
    import walletfaq.index.directory as index_directory
    from walletfaq.index.directory import MANIFEST_FILE

    from .conftest import HashEncoder

    saved = retriever.save(tmp_path / "idx")
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["settings"]["threshold"] = 1.5
    manifest["checksum"] = index_directory._checksum(manifest)
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(WalletFAQError, match=r"settings.threshold must be a number from -1 to 1"):
        FAQRetriever.load(saved, model=HashEncoder())


@pytest.mark.parametrize("command", ["answer", "eval", "build", "serve"])
def test_the_command_line_refuses_an_out_of_range_threshold_in_one_line(
    command: str, index_dir: Path, tmp_path: Path, capsys
) -> None:
    argv = {
        "answer": ["answer", "退款", "--index", str(index_dir)],
        "eval": ["eval", "--index", str(index_dir)],
        "build": ["build", "--out", str(tmp_path / "out"), "--model", "hash-test"],
        "serve": ["serve", "--index", str(index_dir), "--port", "8"],
    }[command]
    assert main([*argv, "--threshold", "1.5"]) == 2
    err = capsys.readouterr().err
    assert (
        "threshold must be a cosine score, from -1 to 1" in err
        and len(err.strip().splitlines()) == 1
    )


def test_build_saves_the_threshold_and_fallback_given(
    tiny_corpus_file: Path, routed_encoder, tmp_path: Path
) -> None:
    argv = ["build", "--corpus", str(tiny_corpus_file), "--model", "hash-test"]
    argv += ["--out", str(tmp_path / "idx"), "--threshold", "0.55", "--fallback", "请致电客服。"]
    assert main(argv) == 0
    loaded = FAQRetriever.load(tmp_path / "idx", model=routed_encoder)
    assert (loaded.threshold, loaded.fallback) == (0.55, "请致电客服。")


def test_eval_measures_abstention_at_the_threshold_given(
    index_dir: Path, tmp_path: Path, capsys
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"query": "怎么退款", "gold": ["refund"]}\n{"query": "天气", "gold": []}\n', "utf-8"
    )
    argv = ["eval", "--index", str(index_dir), "--queries", str(queries)]
    assert main([*argv, "--threshold", "-1"]) == 0
    out = capsys.readouterr().out
    assert "abstention at threshold -1.0000" in out and "(1 accepted)" in out
    assert "in-domain answered (coverage)  1/1" in out
    assert main([*argv, "--threshold", "-1", "--json"]) == 0
    abstention = json.loads(capsys.readouterr().out)["abstention"]
    assert abstention["threshold"] == -1.0 and abstention["answered"] == 2
    assert abstention["out_of_domain_accepted"] == 1 and abstention["n_out_of_domain"] == 1


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    from .test_tune_recalibration import write_labelled

    return write_labelled(tmp_path / "labelled.jsonl")


def test_calibrate_prints_the_chosen_threshold_and_writes_only_when_asked(
    index_dir: Path, labelled: Path, routed_encoder, capsys
) -> None:
    before = FAQRetriever.load(index_dir, model=routed_encoder).threshold
    assert main(["calibrate", "--index", str(index_dir), "--queries", str(labelled)]) == 0
    out = capsys.readouterr().out
    assert f"rule: {PRESET_RULE}" in out and "now:" in out and "chosen:" in out
    assert "not saved: pass --write" in out
    assert FAQRetriever.load(index_dir, model=routed_encoder).threshold == before
    argv = ["calibrate", "--index", str(index_dir), "--queries", str(labelled), "--write"]
    assert main(argv) == 0
    written = FAQRetriever.load(index_dir, model=routed_encoder)
    expected = PRESET_RULE.calibrate(written, str(labelled)).threshold
    assert math.isclose(written.threshold, expected)
    assert f"saved threshold {expected:.4f}" in capsys.readouterr().out


def test_calibrate_takes_another_rule(index_dir: Path, labelled: Path, capsys) -> None:
    argv = ["calibrate", "--index", str(index_dir), "--queries", str(labelled)]
    assert main([*argv, "--target-precision", "0.5", "--min-ood-abstain", "0"]) == 0
    assert "precision >= 0.5 and out-of-domain refused >= 0" in capsys.readouterr().out


def test_calibrate_says_the_bundled_set_does_not_fit_another_corpus(
    index_dir: Path, capsys
) -> None:
    assert main(["calibrate", "--index", str(index_dir)]) == 2
    err = capsys.readouterr().err
    assert "not an index of the bundled corpus" in err and "--queries" in err


def test_calibrate_warns_in_one_line_when_the_queries_are_few(
    index_dir: Path, labelled: Path, capsys
) -> None:
    assert main(["calibrate", "--index", str(index_dir), "--queries", str(labelled)]) == 0
    err = capsys.readouterr().err
    assert "walletfaq: warning: calibrating on only 36 labelled queries" in err


def test_serve_help_says_the_queue_and_threads_are_per_worker_process(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "in each worker process" in text and "4 per thread" in text
    assert "--threshold" in text and "--fallback" in text


def test_the_services_threshold_and_fallback_apply_to_answers(retriever) -> None:
    pytest.importorskip("fastapi", reason="needs the [serve] extra")
    from fastapi.testclient import TestClient

    from walletfaq.service import ServerSettings, create_app

    strict = ServerSettings(workers=1, threshold=1.0, fallback="请拨打客服热线。")
    with TestClient(create_app(retriever, strict)) as client:
        body = client.post("/v1/answer", json={"question": "退款要怎么弄"}).json()
    assert body["confident"] is False and body["message"] == "请拨打客服热线。"
    lenient = ServerSettings(workers=1, threshold=-1.0)
    with TestClient(create_app(retriever, lenient)) as client:
        assert client.post("/v1/answer", json={"question": "今天天气"}).json()["confident"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("threshold", 2.0, "from -1 to 1"), ("threshold", math.nan, "finite"), ("fallback", " ", "")],
)
def test_server_settings_refuse_a_bad_threshold_or_fallback(field, value, message) -> None:
    from walletfaq.service.settings import ServerSettings

    with pytest.raises(WalletFAQError, match=message or "fallback must be a non-empty"):
        ServerSettings(**{field: value})  # type: ignore[arg-type]


def test_tune_on_the_command_line_prints_its_warnings_in_one_line_each(
    index_dir: Path, tmp_path: Path, capsys
) -> None:
    from .test_tune import planted_pairs

    pairs = tmp_path / "pairs.tsv"
    rows = ["sentence1\tsentence2\tlabel", *(f"{a}\t{b}\t1" for a, b in planted_pairs(20))]
    pairs.write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = ["tune", "--data", str(pairs), "--index", str(index_dir), "--out", str(tmp_path / "t")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("walletfaq: warning: ")]
    assert any("held-out queries" in line and "(TuningWarning)" in line for line in warned)
    assert any("was not recalibrated" in line for line in warned)
    assert "cli.py" not in err  # no source lines
