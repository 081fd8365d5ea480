"""The conformance check (adapters/datex2/conformance.py): the official DATEX II v3.7 schemas, through
xmlschema, pass what publishers may send and catch what they get wrong, with where and what."""

from __future__ import annotations

from adapters.datex2.conformance import findings
from adapters.datex2.wire import STATUS_PUBLICATION, TABLE_PUBLICATION
from tests.support.datex2 import Feed


def test_documents_with_every_optional_element_conform() -> None:
    """The documents tests build (tests/support/datex2.py) are DATEX II, or those tests prove nothing."""
    rich = Feed(campus=True, address=True, area=True, space=True, extension=True, status_validity=True,
                demand_table=True, counts_and_rates=True, statuses=("almostFull",), campus_status="unknown",
                area_status=True, space_status=True)
    for feed in (Feed(), rich, Feed(prefixes=True)):
        assert findings(feed.table(), TABLE_PUBLICATION) == []
        assert findings(feed.status(), STATUS_PUBLICATION) == []



def test_the_schemas_catch_what_a_publisher_gets_wrong() -> None:
    good = Feed().status()
    assert findings(good, STATUS_PUBLICATION) == []
    cases = {
        "a status word the standard does not have": (
            Feed(statuses=("nearlyFull",)).status(), "prk:status"),
        "a count that is no number": (
            good.replace(b"<prk:numberOfVacantSpaces>120<", b"<prk:numberOfVacantSpaces>viele<"), "numberOfVacantSpaces"),
        "elements out of their order": (
            good.replace(b"<prk:numberOfVacantSpaces>120</prk:numberOfVacantSpaces>", b"").replace(
                b"</prk:numberOfOccupiedSpaces>", b"</prk:numberOfOccupiedSpaces><prk:numberOfVacantSpaces>120"
                                                  b"</prk:numberOfVacantSpaces>", 1), "prk:occupancy"),
        "no publication time": (
            good.replace(b"<com:publicationTime>2026-03-01T11:00:00+01:00</com:publicationTime>", b""), "/d2:payload"),
        "a record without its reference": (
            good.replace(b'<fac:reference id="S1" version="3" targetClass="fac:FacilityObject"/>', b""),
            "prk:parkingStatusInformation"),
    }
    for what, (document, where) in cases.items():
        found = findings(document, STATUS_PUBLICATION)
        assert found, what
        assert any(where in finding.where for finding in found), (what, found)
    # valid DATEX II, but not the publication that URL should serve
    assert [str(f) for f in findings(Feed().table(), STATUS_PUBLICATION)] == [
        "/: expected a d2:payload of type ParkingStatusPublication, got ParkingTablePublication"]
    assert findings(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>")[0].problem \
        == "the document has a DTD; DATEX II documents have none"
    assert findings(b"not xml")[0].where == "/"
