"""Authentication on the GraphQL endpoint: keys, tokens, rotation, revocation, bad credentials."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bed import Bed

QUERY = {"query": "{ facilities { totalCount } }"}


async def post(bed: Bed, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict, dict]:
    response = await bed.http.post(f"{bed.url}/graphql", json=body or QUERY, headers=headers)
    return response.status_code, response.json(), dict(response.headers)


async def test_keys_work_in_either_header(bed: Bed) -> None:
    key = bed.key("dashboard")
    for headers in ({"authorization": f"Bearer {key}"}, {"x-api-key": key}, {"authorization": f"bearer {key}", "x-api-key": key}):
        status, body, _ = await post(bed, headers)
        assert status == 200 and body["data"]["facilities"]["totalCount"] == 6, headers


async def test_bad_credentials_of_every_kind_are_401_with_a_clear_message(bed: Bed) -> None:
    key = bed.key("dashboard")
    live_twin = key.replace("pk_test_", "pk_live_")
    unknown = "pk_test_zzzzzzzzzzzz_" + "A" * 40
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    cases = {
        "missing": ({}, "Authentication required"),
        "basic scheme": ({"authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        "empty bearer": ({"authorization": "Bearer"}, "Bearer"),
        "not a key": ({"authorization": "Bearer hello"}, "neither an API key"),
        "malformed key": ({"authorization": "Bearer pk_test_short"}, "malformed"),
        "unknown key": ({"authorization": f"Bearer {unknown}"}, "not valid"),
        "wrong secret": ({"authorization": f"Bearer {wrong_secret}"}, "not valid"),
        "live key on the test sandbox": ({"authorization": f"Bearer {live_twin}"}, "live key cannot be used on this test gateway"),
        "two different credentials": ({"authorization": f"Bearer {key}", "x-api-key": unknown}, "one credential"),
        "junk token": ({"authorization": "Bearer a.b.c"}, "access token is not valid"),
    }
    for name, (headers, message) in cases.items():
        status, body, response_headers = await post(bed, headers)
        assert status == 401, name
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", name
        assert message in body["errors"][0]["message"], (name, body)
        assert response_headers["www-authenticate"].startswith('Bearer realm="parkgate"'), name
        assert "data" not in body


async def test_revocation_is_immediate_for_keys_and_tokens(bed: Bed) -> None:
    client_id, key = await bed.new_client(["facilities:read"], name="to-be-revoked")
    token_response = await bed.http.post(f"{bed.url}/oauth/token", data={"grant_type": "client_credentials"},
                                         auth=(client_id, key))
    token = token_response.json()["access_token"]
    for credential in (key, token):  # both just recognised, so their principals are in the short cache
        assert (await post(bed, {"authorization": f"Bearer {credential}"}))[0] == 200
    revoked = await bed.graphql(f'mutation {{ revokeClient(id: "{client_id}") {{ status revokedAt }} }}')
    assert revoked["data"]["revokeClient"]["status"] == "REVOKED"
    for credential in (key, token):
        status, body, _ = await post(bed, {"authorization": f"Bearer {credential}"})
        assert status == 401 and "revoked" in body["errors"][0]["message"]


async def test_rotation_keeps_the_old_key_through_the_grace_period_only(bed: Bed) -> None:
    client_id, old_key = await bed.new_client(["facilities:read"], name="rotating")
    rotated = await bed.graphql(
        f'mutation {{ rotateClientKey(id: "{client_id}", gracePeriodSeconds: 1) {{ key previousKeysExpireAt client {{ rotatedAt }} }} }}')
    new_key = rotated["data"]["rotateClientKey"]["key"]
    assert new_key != old_key and rotated["data"]["rotateClientKey"]["client"]["rotatedAt"]
    assert (await post(bed, {"authorization": f"Bearer {old_key}"}))[0] == 200
    assert (await post(bed, {"authorization": f"Bearer {new_key}"}))[0] == 200
    await asyncio.sleep(1.2)
    status, body, _ = await post(bed, {"authorization": f"Bearer {old_key}"})
    assert status == 401 and "expired" in body["errors"][0]["message"]
    assert (await post(bed, {"authorization": f"Bearer {new_key}"}))[0] == 200


async def test_a_key_busy_through_its_grace_period_is_refused_from_the_moment_it_ends(bed: Bed) -> None:
    """A key in steady use is recognised from the short cache, never past its own expiry."""
    client_id, old_key = await bed.new_client(["facilities:read"], name="busy-rotating")
    rotated = await bed.graphql(
        f'mutation {{ rotateClientKey(id: "{client_id}", gracePeriodSeconds: 1) {{ previousKeysExpireAt }} }}')
    expires_at = datetime.fromisoformat(rotated["data"]["rotateClientKey"]["previousKeysExpireAt"])
    answers: list[tuple[datetime, datetime, int]] = []
    while not answers or answers[-1][2] == 200:
        sent = datetime.now(UTC)
        status = (await post(bed, {"authorization": f"Bearer {old_key}"}))[0]
        answers.append((sent, datetime.now(UTC), status))
        assert sent < expires_at + timedelta(seconds=2), "the old key outlived its grace period"
    assert any(status == 200 for _, _, status in answers)
    assert all(sent < expires_at for sent, _, status in answers if status == 200)
    assert all(done >= expires_at for _, done, status in answers if status == 401)


async def test_tokens_carry_a_narrowed_scope(bed: Bed) -> None:
    client = bed.sandbox.clients["dashboard"]
    response = await bed.http.post(f"{bed.url}/oauth/token", auth=(client["id"], client["key"]),
                                   data={"grant_type": "client_credentials", "scope": "facilities:read"})
    assert response.status_code == 200 and response.json()["scope"] == "facilities:read"
    token = response.json()["access_token"]
    status, body, _ = await post(bed, {"authorization": f"Bearer {token}"},
                                 {"query": '{ facility(id: "berlin-hbf") { name occupancy { free } } }'})
    assert status == 200 and body["data"]["facility"] == {"name": "Hauptbahnhof Garage", "occupancy": None}
    assert body["errors"][0]["extensions"]["missingScopes"] == ["occupancy:read"]


async def test_scope_changes_take_effect_at_once(bed: Bed) -> None:
    client_id, key = await bed.new_client(["facilities:read"], name="growing")
    query = {"query": '{ facility(id: "berlin-hbf") { occupancy { free } } }'}
    _, before, _ = await post(bed, {"authorization": f"Bearer {key}"}, query)
    assert before["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await bed.graphql(f'mutation {{ updateClient(id: "{client_id}", input: {{scopes: ["facilities:read", "occupancy:read"]}}) {{ scopes }} }}')
    _, after, _ = await post(bed, {"authorization": f"Bearer {key}"}, query)
    assert "errors" not in after and after["data"]["facility"]["occupancy"]["free"] is not None


async def test_admin_actions_are_audited_without_key_material(bed: Bed) -> None:
    client_id, key = await bed.new_client(["facilities:read"], name="audited")
    await bed.graphql(f'mutation {{ updateClient(id: "{client_id}", input: {{notes: "hello", facilities: ["berlin-hbf"]}}) {{ id }} }}')
    rotated = await bed.graphql(f'mutation {{ rotateClientKey(id: "{client_id}") {{ key }} }}')
    await bed.graphql(f'mutation {{ revokeClient(id: "{client_id}") {{ id }} }}')
    log = await bed.graphql(f'{{ auditLog(clientId: "{client_id}") {{ action actor at before after }} }}')
    entries = log["data"]["auditLog"]
    assert [e["action"] for e in entries] == ["client.revoke", "client.rotate_key", "client.update", "client.create"]
    admin_id = bed.sandbox.clients["admin"]["id"]
    assert all(e["actor"] == f"client:{admin_id} (admin)" for e in entries)
    update = entries[2]
    assert update["before"]["facilities"] is None and update["after"]["facilities"] == ["berlin-hbf"]
    assert update["after"]["notes"] == "hello"
    text = str(log)
    assert key not in text and rotated["data"]["rotateClientKey"]["key"] not in text


async def test_admin_input_errors_are_coded(bed: Bed) -> None:
    cases = {
        'createClient(input: {name: "x", environment: TEST, scopes: ["fly:away"]}) { key }': "BAD_USER_INPUT",
        'createClient(input: {name: "x", environment: TEST, scopes: [], facilities: ["atlantis"]}) { key }': "BAD_USER_INPUT",
        'createClient(input: {name: "", environment: TEST, scopes: []}) { key }': "BAD_USER_INPUT",
        'createClient(input: {name: "admin", environment: TEST, scopes: []}) { key }': "CONFLICT",
        'updateClient(id: "cl_nope", input: {notes: "x"}) { id }': "NOT_FOUND",
        'rotateClientKey(id: "cl_nope") { key }': "NOT_FOUND",
        'revokeClient(id: "cl_nope") { id }': "NOT_FOUND",
    }
    for mutation, code in cases.items():
        result = await bed.graphql(f"mutation {{ {mutation} }}")
        assert result["errors"][0]["extensions"]["code"] == code, (mutation, result)
    client_id, _ = await bed.new_client(["facilities:read"], name="rotate-bounds")
    result = await bed.graphql(f'mutation {{ rotateClientKey(id: "{client_id}", gracePeriodSeconds: -5) {{ key }} }}')
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    result = await bed.graphql(f'mutation {{ updateClient(id: "{client_id}", input: {{scopes: null}}) {{ id }} }}')
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# What an HTTP client can send as a header value (no surrounding whitespace).
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200).map(str.strip)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=st.none() | HEADER_TEXT | HEADER_TEXT.map(lambda s: ("Bearer " + s).strip())
       | HEADER_TEXT.map(lambda s: "Bearer pk_test_" + s),
       api_key=st.none() | HEADER_TEXT)
async def test_no_header_fuzz_gets_a_500(bed: Bed, authorization: str | None, api_key: str | None) -> None:
    headers = {}
    if authorization is not None:
        headers["authorization"] = authorization
    if api_key is not None:
        headers["x-api-key"] = api_key
    status, body, response_headers = await post(bed, headers)
    assert status == 401, (headers, body)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "www-authenticate" in response_headers
