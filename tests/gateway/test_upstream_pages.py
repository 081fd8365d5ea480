"""A cold page of facilities asks a vendor for the page's facilities only where its dialect can be
asked so (gateway/systems.py `Systems.fetch_slice`, `Records.by_facility`): the sandbox over real
HTTP, the requests as the simulators received them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from adapters.models import SystemKind
from tests.support.bed import Bed

PAGE = """query($first: Int!, $after: String) { facilities(first: $first, after: $after) {
  edges { cursor node { id rates { currency } } } } }"""


def asked(bed: Bed, system_id: str, path: str) -> list[dict[str, list[str]]]:
    """The query of every request `system_id` received for `path` (its dialect's path, after its root)."""
    sent = [urlsplit(seen.url) for seen in bed.sandbox.simulators[system_id].control.recent if seen.method == "GET"]
    return [parse_qs(url.query) for url in sent if url.path.endswith(path)]


async def test_a_cold_page_asks_apds_for_its_places_rate_tables_only(bed: Bed) -> None:
    first = await bed.graphql(PAGE, {"first": 2})
    after = first["data"]["facilities"]["edges"][-1]["cursor"]
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    await bed.clear_cache()
    answer = await bed.graphql(PAGE, {"first": 3, "after": after})
    assert "errors" not in answer, answer
    page = [edge["node"]["id"] for edge in answer["data"]["facilities"]["edges"]]
    directory = bed.sandbox.runtime.directory.by_id
    places = sorted(ref.vendor_id for facility in page
                    if (ref := directory[facility].ref(SystemKind.PARCS)) is not None and ref.system_id == "parcs-central")
    assert places, "the page has a facility on the APDS platform"
    assert [query.get("place") for query in asked(bed, "parcs-central", "/rates")] == [[",".join(places)]]
    assert all(edge["node"]["rates"] for edge in answer["data"]["facilities"]["edges"]
               if directory[edge["node"]["id"]].ref(SystemKind.PARCS) is not None)
    # ParkLine's tariffs list has no such filter: it is read whole
    assert asked(bed, "parcs-london", "/v2/tariffs") and all("carpark" not in q for q in asked(bed, "parcs-london", "/v2/tariffs"))

    # warm (another document, so that the response cache does not answer): the same page asks nobody;
    # another page asks for its own places
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    again = await bed.graphql(PAGE.replace("id rates", "id name rates"), {"first": 3, "after": after})
    assert [e["node"]["rates"] for e in again["data"]["facilities"]["edges"]] == \
        [e["node"]["rates"] for e in answer["data"]["facilities"]["edges"]]
    assert asked(bed, "parcs-central", "/rates") == []
    await bed.graphql(PAGE, {"first": 2})
    assert len(asked(bed, "parcs-central", "/rates")) == 1
