"""The service under hostile input: numbers that are not JSON, made-up methods and paths,
ids outside the grammar, and both tokens set. Each answer is a 4xx with a JSON body (never a
500), /metrics keeps a fixed set of labels, and the id grammar gives every route the verdict
it gives the loader (tests/test_ids.py)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from walletfaq import Corpus, FAQRetriever  # noqa: E402
from walletfaq.data.ids import ID_RULE, id_problem  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402
from walletfaq.service.middleware import KNOWN_METHODS, UNMATCHED, SafeJSONResponse  # noqa: E402
from walletfaq.service.routes.common import parse_body  # noqa: E402

from .conftest import TINY_ENTRIES, HashEncoder  # noqa: E402
from .test_ids import HOSTILE_IDS, IDS  # noqa: E402

ADMIN_TOKEN, READ_TOKEN = "admin-secret", "read-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"content-type": "application/json"}
ENTRY = {"category": "money", "question": "新加的问题", "answer": "新的答案"}
FEES = next(entry for entry in TINY_ENTRIES if entry["id"] == "fees")


def make_client(**options: object) -> TestClient:
    retriever = FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=HashEncoder())
    settings_ = ServerSettings(workers=2, admin_token=ADMIN_TOKEN, **options)  # type: ignore[arg-type]
    return TestClient(create_app(retriever, settings_), raise_server_exceptions=False)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client() as test_client:
        yield test_client


def index_version(client: TestClient) -> float:
    """The served index version, from /metrics (it grows with every applied edit)."""
    match = re.search(r"^walletfaq_index_version ([0-9.]+)$", client.get("/metrics").text, re.M)
    assert match is not None
    return float(match.group(1))


def is_json_refusal(response: object, status: int) -> bool:
    """Whether ``response`` has ``status`` and a JSON body that parses."""
    assert response.headers["content-type"].startswith("application/json"), response.text  # type: ignore[attr-defined]
    json.loads(response.content)  # type: ignore[attr-defined]
    return response.status_code == status  # type: ignore[attr-defined,no-any-return]


# ----------------------------------------------------------------------------- 1. numbers
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5000]
BODIES = [  # every route that takes a body, a hostile number in each kind of field
    ("POST", "/v1/ask", '{"question": "x", "k": %s}'),
    ("POST", "/v1/ask", '{"question": %s}'),
    ("POST", "/v1/ask", '{"question": "x", "category": %s}'),
    ("POST", "/v1/ask_batch", '{"questions": ["x"], "k": %s}'),
    ("POST", "/v1/ask_batch", '{"questions": [%s]}'),
    ("POST", "/v1/answer", '{"question": "x", "k": %s}'),
    ("POST", "/v1/answer", '{"question": %s}'),
    ("POST", "/v1/entries", '{"id": %s, "category": "c", "question": "q", "answer": "a"}'),
    ("POST", "/v1/entries", '{"id": "n", "category": "c", "question": "q", "answer": %s}'),
    (
        "POST",
        "/v1/entries",
        '{"id": "n", "category": "c", "question": "q", "answer": "a", "alt_questions": [%s]}',
    ),
    ("PUT", "/v1/entries/fees", '{"category": %s, "question": "q", "answer": "a"}'),
    ("PUT", "/v1/entries/fees", '{"id": %s, "category": "c", "question": "q", "answer": "a"}'),
    ("POST", "/v1/ask", '{"question": "x", "unknown": {"deep": [%s]}}'),
    ("POST", "/v1/ask", "%s"),
]


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS, ids=lambda n: n[:12])
@pytest.mark.parametrize(("method", "path", "template"), BODIES)
def test_a_number_json_cannot_hold_is_422_with_a_json_body(
    client: TestClient, method: str, path: str, template: str, number: str
) -> None:
    body = template.replace("%s", number).encode()
    response = client.request(method, path, content=body, headers={**ADMIN, **JSON})
    assert is_json_refusal(response, 422), response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert re.search("not valid JSON|out of the range|too many to read", error["ctx"]["error"])
    assert client.get("/v1/entries/fees").json() == FEES and index_version(client) == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"question": "x", "question": "y"}', "duplicate key 'question'"),
        (b'{"question": "\xff"}', "not valid UTF-8"),
    ],
)
def test_a_repeated_key_or_bad_utf8_is_422_naming_it(
    client: TestClient, content: bytes, problem: str
) -> None:
    response = client.post("/v1/ask", content=content, headers=JSON)
    assert is_json_refusal(response, 422)
    assert problem in response.json()["detail"][0]["ctx"]["error"]


def test_a_json_problem_keeps_its_message_and_position() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        parse_body(b'{\n  "k": 1,\n  "k": 2}')
    assert "duplicate key 'k'" in caught.value.msg
    with pytest.raises(json.JSONDecodeError) as malformed:
        parse_body(b'{\n  "k": }')
    assert (malformed.value.lineno, malformed.value.colno) == (2, 8)


@pytest.mark.parametrize(
    ("content", "written"),
    [
        ({"x": math.nan}, '{"x":"NaN"}'),
        ({"x": [math.inf, -math.inf]}, '{"x":["Infinity","-Infinity"]}'),
        ({"x": "\ud800", "y": 1.5}, '{"x":"\\ud800","y":1.5}'),
        ({"x": b"raw", 3: None}, '{"x":"b\'raw\'","3":null}'),
    ],
)
def test_an_error_body_always_renders(content: object, written: str) -> None:
    assert SafeJSONResponse(content).body.decode() == written


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities included
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELDS = st.sampled_from(["question", "questions", "k", "category", "id", "answer", "x"])


ROUTES = st.sampled_from(
    [("POST", "/v1/ask"), ("POST", "/v1/ask_batch"), ("POST", "/v1/answer"),
     ("POST", "/v1/entries"), ("PUT", "/v1/entries/fees")]
)  # fmt: skip


def test_no_json_shaped_body_gets_a_server_error(client: TestClient) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(route=ROUTES, body=st.dictionaries(FIELDS, JSON_VALUES, max_size=4) | JSON_VALUES)
    def check(route: tuple[str, str], body: object) -> None:
        content = json.dumps(body, allow_nan=True).encode()
        response = client.request(*route, content=content, headers={**ADMIN, **JSON})
        assert response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/json")
        json.loads(response.content)

    check()


# ----------------------------------------------------------------------------- 2. labels
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
METHODS = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=16)
PATHS = st.text(alphabet=st.characters(codec="utf-8"), max_size=24)
LABELS = re.compile(r"^(walletfaq_[a-z_]+)\{([^}]*)\}", re.MULTILINE)


def label_sets(metrics_text: str) -> set[tuple[str, str]]:
    """Each (metric, label set) sample key of a Prometheus exposition."""
    return set(LABELS.findall(metrics_text))


def label_values(metrics_text: str, label: str) -> set[str]:
    return set(re.findall(rf'\b{label}="([^"]*)"', metrics_text))


def test_made_up_methods_and_paths_are_labelled_from_fixed_sets(client: TestClient) -> None:
    schema_paths = set(client.get("/openapi.json").json()["paths"])
    templates = schema_paths | {"/", "/docs", "/docs/assets/{name}", "/openapi.json"}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(method=METHODS, path=PATHS)
    def check(method: str, path: str) -> None:
        client.request(method, "/" + quote(path, safe=""))
        client.request(method, "/v1/entries/" + quote(path, safe=""), headers=ADMIN)
        text = client.get("/metrics").text
        assert label_values(text, "method") <= KNOWN_METHODS | {"other"}
        assert label_values(text, "endpoint") <= templates | {UNMATCHED}
        assert all(re.fullmatch(r"[1-5][0-9][0-9]", code) for code in label_values(text, "status"))

    check()


def test_a_thousand_made_up_methods_and_paths_add_no_metric_sample(client: TestClient) -> None:
    def send(numbers: range) -> str:
        for number in numbers:
            client.request(f"M{number}", "/healthz")
            client.get(f"/no-such-path-{number}")
        client.get("/metrics")
        return client.get("/metrics").text

    before = send(range(10))
    after = send(range(10, 1010))
    assert label_sets(after) == label_sets(before)
    assert len(after) - len(before) < 400  # counts and sums grow by a few digits, no more
    assert 'method="other"' in after and f'endpoint="{UNMATCHED}"' in after
    assert "M1009" not in after and "no-such-path" not in after


# ----------------------------------------------------------------------------- 3. ids
SENDABLE = {name: value for name, value in HOSTILE_IDS.items() if "surrogate" not in name}


@pytest.mark.parametrize("entry_id", SENDABLE.values(), ids=SENDABLE.keys())
def test_post_refuses_an_id_outside_the_grammar_naming_the_rule(
    client: TestClient, entry_id: str
) -> None:
    response = client.post("/v1/entries", json={"id": entry_id, **ENTRY}, headers=ADMIN)
    assert is_json_refusal(response, 400)
    assert "the body's id is not a valid entry id" in response.json()["detail"]
    assert ID_RULE in response.json()["detail"]
    assert index_version(client) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("entry_id", SENDABLE.values(), ids=SENDABLE.keys())
def test_a_path_id_outside_the_grammar_is_400_naming_the_rule(
    client: TestClient, method: str, entry_id: str
) -> None:
    path = "/v1/entries/" + quote(entry_id, safe="").replace(".", "%2E")
    body = {"json": ENTRY} if method == "PUT" else {}
    response = client.request(method, path, headers=ADMIN, **body)  # type: ignore[arg-type]
    assert is_json_refusal(response, 400), response.text
    assert response.json()["detail"].startswith("the id in the path is not a valid entry id")
    assert ID_RULE in response.json()["detail"]


def test_a_slash_in_a_path_id_is_refused_for_the_id_not_as_an_unknown_route(
    client: TestClient,
) -> None:
    for path in ("/v1/entries/a/b", "/v1/entries/a%2Fb"):
        response = client.get(path)
        assert is_json_refusal(response, 400) and "'/'" in response.json()["detail"]


def test_put_with_a_padded_id_does_not_replace_the_entry(client: TestClient) -> None:
    before = client.get("/v1/entries/fees").json()
    response = client.put("/v1/entries/%20fees%20", json=ENTRY, headers=ADMIN)
    assert is_json_refusal(response, 400) and "U+0020 SPACE" in response.json()["detail"]
    assert client.get("/v1/entries/fees").json() == before and index_version(client) == 1


def test_post_of_an_existing_id_is_409(client: TestClient) -> None:
    response = client.post("/v1/entries", json={"id": "fees", **ENTRY}, headers=ADMIN)
    assert is_json_refusal(response, 409) and "PUT /v1/entries/{id}" in response.json()["detail"]


def test_post_of_an_existing_id_with_a_trailing_space_is_an_invalid_id(
    client: TestClient,
) -> None:
    # "fees " is not the id "fees" (nothing is trimmed): it is no id at all, hence 400
    response = client.post("/v1/entries", json={"id": "fees ", **ENTRY}, headers=ADMIN)
    assert is_json_refusal(response, 400) and ID_RULE in response.json()["detail"]


def refused_for_the_rule(response: object) -> bool:
    """Whether the route refused the request for its id (400 quoting the rule)."""
    if response.status_code != 400:  # type: ignore[attr-defined]
        return False
    return ID_RULE in response.json()["detail"]  # type: ignore[attr-defined,no-any-return]


def test_every_route_agrees_with_the_grammar(client: TestClient) -> None:
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(entry_id=IDS)
    def check(entry_id: str) -> None:
        invalid = id_problem(entry_id) is not None
        # quoted, dots too: the client must not fold "../x" into another path
        path = "/v1/entries/" + quote(entry_id, safe="").replace(".", "%2E")
        verdicts = {
            "POST": refused_for_the_rule(
                client.post("/v1/entries", json={"id": entry_id, **ENTRY}, headers=ADMIN)
            ),
            "PUT": refused_for_the_rule(client.put(path, json=ENTRY, headers=ADMIN)),
            "GET": refused_for_the_rule(client.get(path)),
            "DELETE": refused_for_the_rule(client.delete(path, headers=ADMIN)),
        }
        assert verdicts == dict.fromkeys(verdicts, invalid), entry_id

    check()


# ----------------------------------------------------------------------------- 9. tokens
@pytest.fixture
def two_token_client() -> Iterator[TestClient]:
    with make_client(read_token=READ_TOKEN) as test_client:
        yield test_client


READS = [
    ("POST", "/v1/ask", {"question": "怎么退款"}),
    ("POST", "/v1/ask_batch", {"questions": ["怎么退款"]}),
    ("POST", "/v1/answer", {"question": "怎么退款"}),
    ("GET", "/v1/entries/fees", None),
    ("GET", "/v1/categories", None),
]


@pytest.mark.parametrize("token", [READ_TOKEN, ADMIN_TOKEN])
@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_with_both_tokens_set_either_token_reads(
    two_token_client: TestClient, token: str, method: str, path: str, body: object
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    response = two_token_client.request(method, path, json=body, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_with_both_tokens_set_any_other_token_is_401(
    two_token_client: TestClient, headers: dict[str, str], method: str, path: str, body: object
) -> None:
    response = two_token_client.request(method, path, json=body, headers=headers)
    assert is_json_refusal(response, 401)


def test_with_both_tokens_set_the_read_token_still_cannot_edit(
    two_token_client: TestClient,
) -> None:
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    response = two_token_client.post("/v1/entries", json={"id": "new", **ENTRY}, headers=headers)
    assert is_json_refusal(response, 401)
    assert two_token_client.get("/v1/entries/new", headers=ADMIN).status_code == 404


@pytest.mark.parametrize("suffix", ["%0A", "%0D%0A", "%0A%0A", "/"])
def test_a_line_break_or_slash_after_an_id_never_reaches_that_entry(
    client: TestClient, suffix: str
) -> None:
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/v1/entries/fees{suffix}", headers=ADMIN)
        assert is_json_refusal(response, 400) and ID_RULE in response.json()["detail"]
    assert client.get("/v1/entries/fees").json() == FEES and index_version(client) == 1
