"""Card numbers in any spelling, anywhere a client can put them, never get through.

Hypothesis spells card numbers with arbitrary separators, groupings, prefixes and positions,
puts them in every input the API takes (every String and ID argument of every root field and
input object, as a variable or a literal; aliases, names, comments, directives, variables' keys,
extensions, persisted documents, GET and SSE requests, URLs, headers), and checks that none reaches
a vendor (the simulators record what they receive), a log line or a response.
"""

from __future__ import annotations

import logging
import string
from datetime import datetime
from typing import Any

import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.card_numbers import looks_like_card_number, luhn_valid, redact
from resolvers.schema import schema
from tests.support.bed import Bed

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: characters that are neither letters nor digits, ASCII and not (no-break, thin and ideographic
#: spaces, dashes, a zero-width space, a tab, a newline)
SEPARATORS = "".join(c for c in string.punctuation) + " \t\n\u00a0\u2009\u2013\u2014\u3000\u200b\u2022"


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """13 to 19 digits ending in their Luhn check digit, not starting with 0 (no issuer's does)."""
    body = draw(st.sampled_from("123456789")) + draw(st.text(alphabet=string.digits, min_size=11, max_size=17))
    for check in string.digits:
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


@st.composite
def spelled(draw: st.DrawFn) -> tuple[str, str]:
    """(digits, a spelling): groups of three digits or more (as cards are written) joined by runs
    of one to three separators."""
    digits = draw(card_numbers())
    cuts: list[int] = []
    position = 0
    while len(digits) - position >= 6 and draw(st.booleans()):
        position += draw(st.integers(3, len(digits) - position - 3))
        cuts.append(position)
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    spelling = groups[0]
    for group in groups[1:]:
        spelling += draw(st.text(alphabet=SEPARATORS, min_size=1, max_size=3)) + group
    return digits, spelling


@st.composite
def placed(draw: st.DrawFn) -> tuple[str, str]:
    """(spelling, text): a spelled card with any prefix and suffix — not a digit next to it (that
    would be another number), and not letters on both sides (how digits sit inside hex ids)."""
    _, spelling = draw(spelled())
    prefix = draw(st.text(max_size=12))
    suffix = draw(st.text(max_size=12))
    assume(not prefix[-1:].isdigit() and not suffix[:1].isdigit())
    assume(not (prefix[-1:].isalpha() and suffix[:1].isalpha()))
    return spelling, prefix + spelling + suffix


# --- what counts as a card number ---------------------------------------------------------------


@SETTINGS
@given(case=placed())
def test_card_numbers_are_found_in_any_spelling_and_blanked_out(case: tuple[str, str]) -> None:
    spelling, text = case
    assert looks_like_card_number(text), text
    assert spelling not in redact(text), redact(text)


@pytest.mark.parametrize("text", [
    "4111.1111.1111.1111", "4111_1111_1111_1111", "4111:1111:1111:1111", "4111--1111--1111--1111",
    "4111 - 1111 - 1111 - 1111", "4111/1111/1111/1111", "tok_4111.1111.1111.1111", "tok4111111111111111",
    "card 4111111111111111 exp 12/29 cvc 123", "41111111-1111-1111-1111-111111111111", "４１１１１１１１１１１１１１１１",
    "4111\u00a01111\u00a01111\u00a01111", "retry-4111 1111-1111 1111", "berlin-mitte:4111111111111111",
])
def test_the_spellings_the_probe_found_are_card_numbers(text: str) -> None:
    assert looks_like_card_number(text)
    assert "[redacted]" in redact(text) and "4111" not in redact(text).replace("4111-1111-111111111111", "")


@SETTINGS
@given(moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31)), timespec=st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
       offset=st.sampled_from(["", "Z", "+01:00", "-05:30", "+0100"]), sep=st.sampled_from(["T", " "]))
def test_dates_and_times_are_never_card_numbers(moment: Any, timespec: str, offset: str, sep: str) -> None:
    stamp = moment.isoformat(sep=sep, timespec=timespec) + offset
    assert not looks_like_card_number(stamp), stamp
    assert not looks_like_card_number(f"{moment.date().isoformat()}/{moment.date().isoformat()}")


def test_digits_glued_to_letters_on_both_sides_are_ids_not_card_numbers() -> None:
    # How digits sit in hex ids and hashes, which clients send back: documented, not refused.
    assert not looks_like_card_number("res-3b16f0e89cfa51b46861f672")
    assert not looks_like_card_number("a4111111111111111b")


# --- everywhere a client can put one ------------------------------------------------------------


def _string_inputs() -> list[tuple[str, str, str, list[str]]]:
    """(operation type, root field, argument, path inside it) for every String or ID the API takes."""
    graphql_schema = schema._schema
    found: list[tuple[str, str, str, list[str]]] = []

    def inside(input_type: Any, path: list[str], depth: int) -> list[list[str]]:
        named = get_named_type(input_type)
        if isinstance(named, GraphQLScalarType):
            return [path] if named.name in ("String", "ID") else []
        if isinstance(named, GraphQLInputObjectType) and depth < 3:
            return [p for name, field in named.fields.items() for p in inside(field.type, [*path, name], depth + 1)]
        return []

    for kind, root in (("query", graphql_schema.query_type), ("mutation", graphql_schema.mutation_type),
                       ("subscription", graphql_schema.subscription_type)):
        assert isinstance(root, GraphQLObjectType)
        for field_name, field in root.fields.items():
            for arg_name, arg in field.args.items():
                found += [(kind, field_name, arg_name, p) for p in inside(arg.type, [], 0)]
    return found


STRING_INPUTS = _string_inputs()


def nested(path: list[str], value: str) -> Any:
    for name in reversed(path):
        value = {name: value}  # type: ignore[assignment]
    return value


def literal(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@st.composite
def requests_with_a_card(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], str]:
    """(digits, spelling, a GraphQL request body holding the spelling somewhere, transport)."""
    digits, spelling = draw(spelled())
    where = draw(st.sampled_from(["variable", "literal", "alias", "operation name", "comment", "directive",
                                  "variable key", "extensions", "persisted document", "block string"]))
    kind, field, arg, path = draw(st.sampled_from(STRING_INPUTS))
    value = nested(path, spelling) if path else spelling
    selection = f"{field}({arg}: $v)"
    body: dict[str, Any] = {"variables": {"v": value}}
    name = "Op"
    if where == "literal":
        selection = f"{field}({arg}: {literal(value)})"
        body = {}
    elif where == "block string":
        selection = f'{field}({arg}: """{spelling}""")'
        body = {}
    elif where == "alias":
        selection = f"a_{spelling.translate({ord(c): '_' for c in SEPARATORS})}: {selection}"
    elif where == "operation name":
        name = "Op_" + spelling.translate({ord(c): "_" for c in SEPARATORS})
    elif where == "directive":
        selection += f' @include(if: true) @skip(if: false) # "{spelling}"'
    elif where == "variable key":
        body["variables"] = {"v": value, spelling: "x"}
    elif where == "extensions":
        body["extensions"] = {"trace": {"note": spelling}}
    query = f"{kind} {name}($v: String) {{ {selection} {{ __typename }} }}"
    if where == "comment":
        query = f"# {spelling}\n{query}"
    body["query"] = query
    if where == "operation name":
        body["operationName"] = name
    if where == "persisted document":
        import hashlib
        body["extensions"] = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}
        body["variables"] = {"v": value}
    transport = "sse" if kind == "subscription" else draw(st.sampled_from(["post", "get"])) if kind == "query" else "post"
    return digits, spelling, body, transport


def vendors_saw(bed: Bed) -> str:
    return "\n".join(seen.text() for sim in bed.sandbox.simulators.values() for seen in sim.control.recent)


def vendor_calls(bed: Bed) -> int:
    return sum(sum(sim.control.requests.values()) for sim in bed.sandbox.simulators.values())


def assert_nowhere(digits: str, spelling: str, *texts: str) -> None:
    for text in texts:
        only_digits = "".join(ch for ch in text if ch.isdigit())
        assert spelling not in text and digits not in only_digits, text[:500]


@SETTINGS
@given(case=requests_with_a_card())
async def test_no_card_number_gets_through_any_graphql_input(bed: Bed, case: tuple[str, str, dict[str, Any], str],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    digits, spelling, body, transport = case
    calls = vendor_calls(bed)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        if transport == "get":
            import orjson
            params = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in body.items()}
            response = await bed.http.get(f"{bed.url}/graphql", params=params, headers=bed.auth("driver-app"))
        elif transport == "sse":
            response = await bed.http.post(f"{bed.url}/graphql/stream", json=body, headers=bed.auth("dashboard"))
        else:
            response = await bed.http.post(f"{bed.url}/graphql", json=body, headers=bed.auth("driver-app"))
    assert response.status_code in (200, 400), response.text
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    assert errors[0]["extensions"]["reason"] == "CARD_NUMBER_REFUSED", errors
    assert vendor_calls(bed) == calls  # nothing was asked of any vendor
    assert_nowhere(digits, spelling, response.text, caplog.text, vendors_saw(bed))


async def test_the_refusal_names_the_argument_a_variable_is_passed_to(bed: Bed) -> None:
    query = """mutation($input: PayForSessionInput!, $key: String!) {
      payForSession(input: $input, idempotencyKey: $key) { id } }"""
    inputs = {"sessionId": "berlin-mitte:S1", "amount": {"amount": "3.00", "currency": "EUR"},
              "paymentToken": "tok_4111.1111.1111.1111"}
    answer = await bed.graphql(query, {"input": inputs, "key": "k-1"}, client="driver-app")
    extensions = answer["errors"][0]["extensions"]
    assert extensions.pop("requestId")  # the request's own id (gateway/observability/request_log.py)
    assert extensions == {"code": "BAD_USER_INPUT", "reason": "CARD_NUMBER_REFUSED", "argument": "input.paymentToken"}
    answer = await bed.graphql(query, {"input": {**inputs, "paymentToken": "tok_visa"}, "key": "k 4111 - 1111 - 1111 - 1111"},
                               client="driver-app")
    assert answer["errors"][0]["extensions"]["argument"] == "idempotencyKey"


@pytest.mark.parametrize("path", [
    "/exports/journal?format=csv&from=2026-12-01&to=2026-12-01&facility=4111.1111.1111.1111",
    "/exports/citations?format=csv&from=2026-12-01&to=2026-12-01&facility=4111%201111%201111%201111",
    "/sandbox/facilities/4111-1111-1111-1111/availability",
    "/webhooks/4111111111111111",
    "/webhooks/４１１１１１１１１１１１１１１１",  # sent percent-encoded (UTF-8), decoded by the server: no ASCII digit
    "/graphql?query=%7B__typename%7D&operationName=x4111_1111_1111_1111",
])
async def test_urls_holding_a_card_number_are_refused_before_any_route(bed: Bed, path: str,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    calls = vendor_calls(bed)
    with caplog.at_level(logging.DEBUG):
        response = await bed.http.request("POST" if "sandbox" in path or "webhooks" in path else "GET", f"{bed.url}{path}",
                                          headers=bed.auth("finance-readonly"))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["reason"] == "CARD_NUMBER_REFUSED"
    assert vendor_calls(bed) == calls
    assert "4111" not in response.text and "4111" not in caplog.text


async def test_headers_never_carry_a_card_number_to_a_vendor_or_a_log(bed: Bed, caplog: pytest.LogCaptureFixture) -> None:
    card = "4111 1111 1111 1111"
    headers = {**bed.auth("admin"), "x-request-id": card, "traceparent": f"00-{card}-01", "user-agent": f"app/{card}",
               "x-forwarded-for": card, "accept-language": card, "x-card": card}
    with caplog.at_level(logging.DEBUG):
        response = await bed.http.post(f"{bed.url}/graphql", headers=headers, json={
            "query": "{ facilities { edges { node { id occupancy { free } rates { currency } } } } }"})
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    seen = vendors_saw(bed)
    assert seen, "the query reached the vendors"
    assert_nowhere(card.replace(" ", ""), card, response.text, caplog.text, seen)


async def test_the_http_clients_log_lines_carry_no_id_a_client_chose(bed: Bed, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        answer = await bed.graphql('{ plateStatus(plate: "B-QZ 7788", facilityId: "berlin-hbf") { verdict } }',
                                   client="enforcement-handheld")
    assert answer["data"]["plateStatus"]["verdict"], answer
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines, "httpx logged the vendor calls"
    assert not any("QZ" in line or "7788" in line for line in lines), lines


@pytest.mark.parametrize("form", [
    {"grant_type": "client_credentials", "scope": "4111 1111 1111 1111"},
    {"grant_type": "client_credentials", "4111.1111.1111.1111": "x"},
    {"grant_type": "client_credentials", "client_id": "4111-1111-1111-1111", "client_secret": "pk_test_x"},
])
async def test_the_token_endpoint_refuses_a_card_number_in_its_form(bed: Bed, form: dict[str, str],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await bed.http.post(f"{bed.url}/oauth/token", data=form)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text
    assert "4111" not in response.text and "4111" not in caplog.text


@pytest.mark.parametrize("escape", ["\\n", "\\t", "\\/", "\\u0020", "\\u002D", "\\\\"])
def test_a_separator_written_as_a_string_escape_is_still_a_separator(escape: str) -> None:
    from gateway.card_screen import refuse_card_numbers
    from gateway.errors import RequestError

    query = '{ plateStatus(plate: "4111' + escape + '1111' + escape + '1111' + escape + '1111", facilityId: "x") { verdict } }'
    with pytest.raises(RequestError) as refused:
        refuse_card_numbers({"query": query})
    assert refused.value.extensions == {"reason": "CARD_NUMBER_REFUSED", "argument": "plate"}
