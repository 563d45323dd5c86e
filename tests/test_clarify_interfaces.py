"""The clarify decision on the command line (`walletfaq answer`, `build`, `serve`,
`calibrate`) and in the service (`POST /v1/answer`): the margin is a number in [0, 2] at every
entry point, a request may give its own (422 outside the range), and the response carries the
decision, the options and the reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from walletfaq import Corpus, FAQRetriever, WalletFAQError
from walletfaq.cli import main

from .conftest import TINY_ENTRIES
from .test_clarify import CLOSE, PASSWORDS, WIDE, build


@pytest.fixture
def clarify_index(tmp_path: Path, routed_encoder) -> Path:
    """The tiny corpus and the password entries, threshold 0.5, clarify margin 0.1."""
    retriever = FAQRetriever.build(
        Corpus.from_entries([*TINY_ENTRIES, *PASSWORDS]), model=routed_encoder
    )
    retriever.threshold, retriever.clarify_margin = 0.5, 0.1
    return retriever.save(tmp_path / "idx")


# ------------------------------------------------------------------ the command line
def test_walletfaq_answer_json_has_the_decision_and_the_options(clarify_index, capsys) -> None:
    assert main(["answer", CLOSE, "--index", str(clarify_index), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["decision"], body["confident"], body["hit"]) == ("clarify", False, None)
    assert [o["id"] for o in body["options"]] == ["login-password", "pay-password"]


def test_walletfaq_answer_prints_the_reason_and_the_numbered_options(clarify_index, capsys) -> None:
    assert main(["answer", CLOSE, "--index", str(clarify_index)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("(clarify: scores ")
    assert lines[-2:] == ["1. 登录密码怎么改", "2. 支付密码怎么改"]


def test_walletfaq_answer_takes_a_margin_for_this_question(clarify_index, capsys) -> None:
    argv = ["answer", CLOSE, "--index", str(clarify_index), "--json", "--clarify-margin", "0"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "answer"


@pytest.mark.parametrize("command", ["answer", "build", "serve"])
@pytest.mark.parametrize("value", ["5", "-0.1", "nan"])
def test_the_command_line_refuses_an_out_of_range_margin_in_one_line(
    command: str, value: str, clarify_index: Path, tmp_path: Path, capsys
) -> None:
    argv = {
        "answer": ["answer", "退款", "--index", str(clarify_index)],
        "build": ["build", "--out", str(tmp_path / "out"), "--model", "hash-test"],
        "serve": ["serve", "--index", str(clarify_index), "--port", "8"],
    }[command]
    assert main([*argv, f"--clarify-margin={value}"]) == 2
    err = capsys.readouterr().err
    assert "clarify_margin must be" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_build_saves_the_margin_and_message_given(
    tiny_corpus_file: Path, routed_encoder, tmp_path: Path
) -> None:
    argv = ["build", "--corpus", str(tiny_corpus_file), "--model", "hash-test"]
    argv += ["--out", str(tmp_path / "idx"), "--clarify-margin", "0.05"]
    assert main([*argv, "--clarify-message", "您想问哪一个？"]) == 0
    loaded = FAQRetriever.load(tmp_path / "idx", model=routed_encoder)
    assert (loaded.clarify_margin, loaded.clarify_message) == (0.05, "您想问哪一个？")


def test_build_refuses_an_empty_clarify_message(tmp_path: Path, capsys) -> None:
    argv = ["build", "--out", str(tmp_path / "o"), "--model", "hash-test"]
    assert main([*argv, "--clarify-message", " "]) == 2
    assert "--clarify-message must be a non-empty message" in capsys.readouterr().err


def test_serve_help_names_the_clarify_settings(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--clarify-margin" in text and "--clarify-message" in text


def test_calibrate_prints_the_margin_table_and_writes_the_margin(
    index_dir: Path, routed_encoder, tmp_path: Path, capsys
) -> None:
    from walletfaq.quality.clarify import calibrate_margin

    from .test_tune_recalibration import quietly, write_labelled

    labelled = write_labelled(tmp_path / "labelled.jsonl")
    argv = ["calibrate", "--index", str(index_dir), "--queries", str(labelled)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "clarify margin now 0.0000" in out and "precision coverage" in " ".join(out.split())
    assert "not saved: pass --write" in out
    assert main([*argv, "--write"]) == 0
    written = FAQRetriever.load(index_dir, model=routed_encoder)
    expected = quietly(calibrate_margin, written, str(labelled)).margin
    assert written.clarify_margin == expected
    assert f"clarify margin {expected:.4f}" in capsys.readouterr().out


# ------------------------------------------------------------------ the service
fastapi = pytest.importorskip("fastapi", reason="needs the [serve] extra")


def client_of(retriever: FAQRetriever, **settings: object):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from walletfaq.service import ServerSettings, create_app

    return TestClient(create_app(retriever, ServerSettings(workers=1, **settings)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served() -> FAQRetriever:
    return build()


def test_post_answer_returns_the_decision_options_and_reason(served) -> None:
    with client_of(served) as client:
        body = client.post("/v1/answer", json={"question": CLOSE}).json()
    assert (body["decision"], body["confident"], body["hit"]) == ("clarify", False, None)
    assert [o["id"] for o in body["options"]] == ["login-password", "pay-password"]
    assert "top1 - top2 = 0.0636" in body["reason"]


def test_post_answer_of_a_clear_question_has_no_options(served) -> None:
    with client_of(served) as client:
        body = client.post("/v1/answer", json={"question": WIDE}).json()
    assert (body["decision"], body["options"]) == ("answer", [])


def test_a_request_may_give_its_own_margin(served) -> None:
    with client_of(served) as client:
        never = client.post("/v1/answer", json={"question": CLOSE, "clarify_margin": 0})
        default = client.post("/v1/answer", json={"question": CLOSE, "clarify_margin": None})
    assert never.json()["decision"] == "answer" and default.json()["decision"] == "clarify"


def post_margin(served: FAQRetriever, margin: str):  # type: ignore[no-untyped-def]
    """POST /v1/answer with ``margin`` written as is into the JSON body."""
    body = f'{{"question": {json.dumps(CLOSE)}, "clarify_margin": {margin}}}'
    with client_of(served) as client:
        return client.post(
            "/v1/answer", content=body.encode(), headers={"content-type": "application/json"}
        )


@pytest.mark.parametrize("value", ["-0.1", "2.5", "2.0000001", '"0.1"', "true", "[0.1]"])
def test_a_request_margin_outside_zero_to_two_is_a_422_naming_the_field(served, value) -> None:
    response = post_margin(served, value)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "clarify_margin"]


@pytest.mark.parametrize("value", ["1e309", "-1e309", "NaN", "Infinity"])
def test_a_request_margin_that_is_no_finite_number_is_a_422(served, value) -> None:
    assert post_margin(served, value).status_code == 422


@pytest.mark.parametrize("value", ["0", "2", "0.0075", "1"])
def test_a_request_margin_from_zero_to_two_is_accepted_integers_included(served, value) -> None:
    assert post_margin(served, value).status_code == 200


def test_the_services_margin_and_message_apply_to_every_answer(served) -> None:
    with client_of(served, clarify_margin=0.0) as client:
        assert client.post("/v1/answer", json={"question": CLOSE}).json()["decision"] == "answer"
    with client_of(served, clarify_message="请选择：") as client:
        message = client.post("/v1/answer", json={"question": CLOSE}).json()["message"]
    assert message.splitlines() == ["请选择：", "1. 登录密码怎么改", "2. 支付密码怎么改"]
    assert served.clarify_margin == 0.1  # the index is not changed


@pytest.mark.parametrize(("value", "message"), [(3, "from 0"), (math.nan, "finite"), ("x", "")])
def test_server_settings_refuse_a_bad_margin(value, message) -> None:
    from walletfaq.service.settings import ServerSettings

    with pytest.raises(WalletFAQError, match=f"clarify_margin must be.*{message}"):
        ServerSettings(clarify_margin=value)  # type: ignore[arg-type]


def test_the_openapi_schema_documents_clarify(served) -> None:
    with client_of(served) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "clarify" in schema["AnswerOut"]["properties"]["decision"]["enum"]
    assert "options" in schema["AnswerOut"]["required"]
    margin = schema["AnswerIn"]["properties"]["clarify_margin"]["anyOf"][0]
    assert (margin["minimum"], margin["maximum"]) == (0.0, 2.0)
