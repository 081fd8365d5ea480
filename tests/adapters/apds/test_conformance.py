"""The APDS document the project carries, its patches, and the validator's verdicts."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from openapi_core import OpenAPI

from adapters.apds import patches
from adapters.apds.conformance import check_delivery, check_request, check_response
from adapters.apds.patches import PATCHES, ROOT_DOCUMENT, PatchDoesNotApply, load_documents, read_documents

SPECS = Path(__file__).parents[3].parent / "shared" / "specs" / "apds-v4"


def write(documents: patches.Documents, where: Path) -> Path:
    for relative, document in documents.items():
        path = where / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return where / ROOT_DOCUMENT


def test_the_copy_is_the_published_document_with_its_licence() -> None:
    assert SPECS.is_dir(), f"the published APDS document is expected at {SPECS} (../shared/specs/apds-v4)"
    carried = patches.SPEC_DIR
    for path in sorted((SPECS / "api").rglob("*.yaml")):
        relative = path.relative_to(SPECS)
        assert (carried / relative).read_bytes() == path.read_bytes(), relative
    assert (carried / "LICENSE").read_bytes() == (SPECS / "LICENSE").read_bytes()
    assert "MIT" in (carried / "LICENSE").read_text() or "Permission is hereby granted" in (carried / "LICENSE").read_text()


def test_a_strict_tool_refuses_the_published_document_and_accepts_the_patched_one(tmp_path: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017 - any refusal: an unresolvable reference, an invalid default…
        OpenAPI.from_file_path(str(write(read_documents(), tmp_path / "published")))
    OpenAPI.from_file_path(str(write(load_documents(), tmp_path / "patched")))  # openapi-spec-validator: valid


def test_every_patch_is_named_explained_and_refuses_a_document_that_no_longer_needs_it() -> None:
    assert len({p.name for p in PATCHES}) == len(PATCHES)
    assert all(len(p.reason) > 60 for p in PATCHES)
    patched = read_documents()
    for patch in PATCHES:
        patch.apply(patched)
    for patch in PATCHES:
        with pytest.raises(PatchDoesNotApply):
            patch.apply(patched)


PLACE = {"id": "p1", "version": 1, "name": [{"language": "en", "string": "P"}], "layer": 1, "type": "parkingPlace",
         "timeZone": "Europe/Berlin", "hierarchyElementRecord": {"creationTime": "2026-01-01T00:00:00Z"}}
META = {"referenceInstant": 1, "offset": 0, "pageSize": 10, "total": 1}


def test_the_validator_accepts_a_conforming_page_and_names_what_is_wrong_with_others() -> None:
    good = orjson.dumps({"meta": META, "data": [PLACE]})
    assert check_response("GET", "/places", 200, body=good) == []
    no_meta = orjson.dumps({"meta": {"offset": 0, "total": 1}, "data": [PLACE]})
    assert {f.problem for f in check_response("GET", "/places", 200, body=no_meta)} == {
        "'referenceInstant' is a required property", "'pageSize' is a required property"}
    no_zone = orjson.dumps({"meta": META, "data": [{**PLACE, "timeZone": 7}]})
    [finding] = check_response("GET", "/places", 200, body=no_zone)
    assert finding.where == "response body: data/0/timeZone" and "string" in finding.problem
    assert check_response("GET", "/places", 418, body=good)  # a status the document does not declare


def test_requests_are_checked_for_path_method_parameters_and_body() -> None:
    assert check_request("GET", "/rights/assigned", query={"offset": "0", "pageSize": "2", "right_spec": "a,b"}) == []
    assert check_request("GET", "/nowhere")
    assert check_request("PATCH", "/rights/assigned/x")  # APDS updates with PUT
    assert check_request("GET", "/places", query={"offset": "first"})
    assert check_request("POST", "/webhooks", body=b'{"endpoint": "https://gw.example/webhooks/p", "topics": ["Nope"]}')


def test_a_delivery_is_checked_as_the_subscription_callback_defines_it() -> None:
    good = {"topic": "PlaceUpdated", "eventTime": "2026-01-01T00:00:00Z", "eventSubscriptionId": "s", "data": [PLACE]}
    assert check_delivery(orjson.dumps(good)) == []
    assert check_delivery(orjson.dumps({**good, "data": []}))
    assert check_delivery(b"not json")
