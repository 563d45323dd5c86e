"""Named admin tokens: ``WALLETFAQ_ADMIN_TOKENS="alice:TOKEN1,bob:TOKEN2"`` (the grammar, at
every entry point: the variable, ``ServerSettings`` and the worker processes' configuration),
the single ``WALLETFAQ_ADMIN_TOKEN`` named ``admin``, and the token's name as the author of a
store revision."""

from __future__ import annotations

import json
import re
import string
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletfaq.errors import WalletFAQError
from walletfaq.service.settings import (
    ADMIN_TOKENS_ENV,
    ServerSettings,
    parse_admin_tokens,
)

NAME_CHARS = string.ascii_letters + string.digits + "._-"
TOKEN_CHARS = string.ascii_letters + string.digits + "-._~+/"

names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=64).filter(lambda name: name[0].isalnum())
tokens = st.builds(
    lambda body, pad: body + "=" * pad,
    st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=60),
    st.integers(0, 2),
)
admins = st.lists(st.tuples(names, tokens), min_size=1, max_size=6).filter(
    lambda pairs: (
        len({n for n, _ in pairs}) == len(pairs) and len({t for _, t in pairs}) == len(pairs)
    )
)


def written(pairs: list[tuple[str, str]], spaces: str = "") -> str:
    return ",".join(f"{spaces}{name}:{token}{spaces}" for name, token in pairs)


# --------------------------------------------------------------------------- the grammar
def test_pairs_are_read_in_order() -> None:
    assert parse_admin_tokens("alice:tok1,bob:tok2") == (("alice", "tok1"), ("bob", "tok2"))


def test_spaces_around_items_are_ignored_and_an_empty_value_is_no_token() -> None:
    assert parse_admin_tokens(" alice:tok1 , bob:tok2 ") == (("alice", "tok1"), ("bob", "tok2"))
    assert parse_admin_tokens("") == parse_admin_tokens("   ") == ()


@pytest.mark.parametrize(
    ("value", "item", "says"),
    [
        ("alice", 1, "not NAME:TOKEN"),
        ("alice:tok1,", 2, "is empty"),
        ("alice:tok1,,bob:tok2", 2, "is empty"),
        (":tok1", 1, "the name '' is not allowed"),
        ("-alice:tok1", 1, "is not allowed"),
        ("al ice:tok1", 1, "is not allowed"),
        ("張三:tok1", 1, "is not allowed"),
        ("a" * 65 + ":tok1", 1, "is not allowed"),
        ("alice:", 1, "the token (0 characters) is not allowed"),
        ("alice:to ken", 1, "the token (6 characters) is not allowed"),
        ("alice:tok1,bob:a:b", 2, "the token (3 characters) is not allowed"),
        ("alice:tok=1", 1, "is not allowed"),
        ("alice:" + "t" * 513, 1, "the token (513 characters) is not allowed"),
        ("alice:tok1,alice:tok2", 2, "the name 'alice' is also item 1"),
        ("alice:tok1,bob:tok1", 2, "has the token of item 1"),
    ],
)
def test_a_malformed_value_is_one_line_naming_the_variable_and_the_item(
    value: str, item: int, says: str
) -> None:
    with pytest.raises(WalletFAQError) as caught:
        parse_admin_tokens(value)
    message = str(caught.value)
    assert message.startswith(f"{ADMIN_TOKENS_ENV}: item {item}") and says in message
    assert "\n" not in message


def test_the_position_of_the_bad_item_is_given_in_characters() -> None:
    with pytest.raises(WalletFAQError, match=r"item 2 \(at character 12\)"):
        parse_admin_tokens("alice:tok1,bob")


@pytest.mark.parametrize("value", ["alice:sec ret", "alice:secret!", "alice:tok1,bob:tok1"])
def test_a_token_is_never_quoted_back(value: str) -> None:
    with pytest.raises(WalletFAQError) as caught:
        parse_admin_tokens(value)
    assert "sec" not in str(caught.value) and "tok1" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(admins, st.sampled_from(["", " ", "  "]))
def test_any_valid_list_reads_back_as_written(pairs: list[tuple[str, str]], spaces: str) -> None:
    assert parse_admin_tokens(written(pairs, spaces)) == tuple(pairs)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=NAME_CHARS + ":, =!é\t", max_size=40))
def test_any_text_is_either_pairs_within_the_grammar_or_one_clear_error(value: str) -> None:
    try:
        pairs = parse_admin_tokens(value)
    except WalletFAQError as exc:
        assert str(exc).startswith(f"{ADMIN_TOKENS_ENV}: item ") and "\n" not in str(exc)
        return
    for name, token in pairs:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name)
        assert re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", token)
    assert len({n for n, _ in pairs}) == len(pairs) == len({t for _, t in pairs})
    assert parse_admin_tokens(written(list(pairs))) == pairs


@settings(max_examples=150, deadline=None)
@given(admins, st.data())
def test_one_bad_character_in_a_token_names_its_item(
    pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    item = data.draw(st.integers(0, len(pairs) - 1))
    bad = data.draw(st.sampled_from("!\"#$%&'()*;<>?@[]^`{|}é"))  # whitespace at an end is
    # around the item, ignored; inside, it is refused (the parametrised cases above)
    name, token = pairs[item]
    at = data.draw(st.integers(0, len(token)))
    pairs[item] = (name, token[:at] + bad + token[at:])
    with pytest.raises(WalletFAQError, match=rf"^{ADMIN_TOKENS_ENV}: item {item + 1} "):
        parse_admin_tokens(written(pairs))


# --------------------------------------------------------------------------- every entry point
@settings(max_examples=100, deadline=None)
@given(admins)
def test_settings_take_the_same_pairs_and_survive_the_workers_json(
    pairs: list[tuple[str, str]],
) -> None:
    configured = ServerSettings(workers=1, admin_tokens=tuple(pairs))
    assert configured.admins == tuple(pairs)
    through_json = json.loads(json.dumps(asdict(configured)))  # as serve_* hands it on
    assert ServerSettings(**through_json) == configured


@pytest.mark.parametrize(
    ("pairs", "says"),
    [
        ((("al ice", "tok1"),), "is not allowed"),
        ((("alice", "to ken"),), "is not allowed"),
        ((("alice",),), "is not a (name, token) pair"),
        ("alice:tok1", "must be (name, token) pairs"),
        ((("admin", "tok1"),), "the name 'admin' is also item 1"),
        ((("alice", "single"),), "has the token of item 1"),
    ],
)
def test_settings_refuse_what_the_variable_refuses(pairs: object, says: str) -> None:
    with pytest.raises(WalletFAQError, match=re.escape(says)):
        ServerSettings(workers=1, admin_token="single", admin_tokens=pairs)  # type: ignore[arg-type]


def test_the_single_admin_token_is_named_admin_and_comes_first() -> None:
    configured = ServerSettings(workers=1, admin_token="single", admin_tokens=(("bob", "t2"),))
    assert configured.admins == (("admin", "single"), ("bob", "t2"))
    assert ServerSettings(workers=1).admins == ()


def test_from_env_reads_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLETFAQ_ADMIN_TOKEN", "single")
    monkeypatch.setenv(ADMIN_TOKENS_ENV, "alice:tok1")
    assert ServerSettings.from_env(workers=1).admins == (("admin", "single"), ("alice", "tok1"))


def test_a_malformed_variable_stops_walletfaq_serve_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_server_live import free_port
    from walletfaq.cli import main

    monkeypatch.setenv(ADMIN_TOKENS_ENV, "alice:tok1,bob")
    assert main(["serve", "--port", str(free_port())]) == 2  # before any model loads
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"walletfaq: error: {ADMIN_TOKENS_ENV}: item 2 (at character 12)")
    assert "\n" not in error


# --------------------------------------------------------------------------- over HTTP
@pytest.fixture
def app_client(tiny_corpus):  # type: ignore[no-untyped-def]
    pytest.importorskip("fastapi", reason="needs the [serve] extra")
    from fastapi.testclient import TestClient

    from tests.conftest import HashEncoder
    from walletfaq import FAQRetriever
    from walletfaq.service import create_app

    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    configured = ServerSettings(
        workers=1,
        read_token="reader-tok",
        admin_token="single",
        admin_tokens=(("alice", "alice-tok"), ("bob", "bob-tok")),
    )
    with TestClient(create_app(retriever, configured)) as client:
        yield client


@pytest.mark.parametrize("token", ["single", "alice-tok", "bob-tok"])
def test_every_admin_token_edits_and_reads(app_client, token: str) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"}
    assert app_client.delete("/v1/entries/fees", headers=headers).status_code == 200
    assert app_client.get("/v1/categories", headers=headers).status_code == 200


@pytest.mark.parametrize("token", ["reader-tok", "alice-to", "alice-tokk", "", "alice"])
def test_any_other_token_is_401_on_edits(app_client, token: str) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert app_client.delete("/v1/entries/fees", headers=headers).status_code == 401
