"""The APDS adapter's operations (assigned rights, sessions, payments, transactions, webhook
subscriptions) against its simulator and the world's back office, over real HTTP; every request
and answer validated against the APDS document (harness.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from adapters.apds.simulator import VENDOR_IDS
from adapters.apds.simulator.state import REMOVE
from adapters.errors import WebhookRejected
from adapters.models import EventType, Money
from adapters.operation_models import (
    PaymentRequest,
    PaymentTarget,
    PaymentType,
    PermitChange,
    PermitRequest,
    PermitStatus,
    RefusalReason,
    ReservationChange,
    ReservationRequest,
    ReservationStatus,
    RevenueCategory,
    SessionStatus,
    ValidationRequest,
    ValidationStatus,
    VendorRefused,
)
from adapters.simulated.back_office import GarageTerms
from tests.adapters.apds.harness import SECRET, TOKEN, Apds, apds

HBF, MITTE, HOTEL = (VENDOR_IDS[k] for k in ("berlin-hbf", "berlin-mitte", "berlin-spree-hotel"))
EUR = "EUR"


def window(hours: float = 2, length: float = 3) -> tuple[datetime, datetime]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
    return start, start + timedelta(hours=length)


def booking(reference: str, place: str = HBF, plate: str = "BPG123", **kwargs: Any) -> ReservationRequest:
    start, end = window()
    return ReservationRequest(place, plate, kwargs.pop("starts_at", start), kwargs.pop("ends_at", end), reference,
                              **kwargs)


async def test_a_booking_is_an_assigned_right_in_the_list_by_id_and_in_the_office() -> None:
    async with apds() as a:
        made = await a.adapter.create_reservation(booking("ref-1", customer_name="Erika Mustermann",
                                                          expected_price=Money(Decimal("9.00"), EUR)))
        listed = await a.adapter.reservations()
        mine = await a.adapter.reservations("BPG123")
        theirs = await a.adapter.reservations("BNONE1")
        one = await a.adapter.reservation(made.vendor_id)
        a.assert_conforms()
    assert made.status is ReservationStatus.BOOKED and made.price == Money(Decimal("9.00"), EUR)
    assert made.customer_name == "Erika Mustermann" and made.version == 1 and made.vendor_facility_id == HBF
    assert [r.vendor_id for r in listed.items] == [r.vendor_id for r in mine.items] == [made.vendor_id]
    assert theirs.items == [] and one == made
    assert a.sim.office.reservations[made.vendor_id].garage == "berlin-hbf"
    created = next(x for x in a.recorder.exchanges if x.method == "POST" and x.path == "/rights/assigned")
    body = orjson.loads(created.body)
    assert body["rightSpecification"]["id"] == f"{HBF}-reservation" and body["plannedUses"][0]["endTime"]
    assert created.status == 201 and orjson.loads(created.answer) == {"status": "ok", "code": 201}


async def test_the_same_reference_twice_is_one_booking_and_the_second_create_is_409_on_the_wire() -> None:
    async with apds() as a:
        first = await a.adapter.create_reservation(booking("ref-twice"))
        second = await a.adapter.create_reservation(booking("ref-twice"))
        a.assert_conforms()
    assert first == second and len(a.sim.office.reservations) == 1
    creates = [x.status for x in a.recorder.exchanges if x.method == "POST" and x.path == "/rights/assigned"]
    assert creates == [201, 409]


async def test_refusals_name_their_reason() -> None:
    async with apds() as a:
        terms = a.sim.office.terms["berlin-hbf"]
        a.sim.office.terms["berlin-hbf"] = GarageTerms(**{**terms.__dict__, "reservable": 0})
        with pytest.raises(VendorRefused) as full:
            await a.adapter.create_reservation(booking("ref-full"))
        a.sim.office.terms["berlin-hbf"] = terms
        a.sim.state.closed.add("berlin-mitte")
        with pytest.raises(VendorRefused) as closed:
            await a.adapter.create_reservation(booking("ref-closed", MITTE))
        with pytest.raises(VendorRefused) as price:
            await a.adapter.create_reservation(booking("ref-price", expected_price=Money(Decimal("1.00"), EUR)))
        start = datetime.now(UTC) + timedelta(hours=1)
        with pytest.raises(VendorRefused) as backwards:
            await a.adapter.create_reservation(booking("ref-window", starts_at=start, ends_at=start - timedelta(hours=1)))
        with pytest.raises(VendorRefused) as nowhere:
            await a.adapter.create_reservation(booking("ref-nowhere", "no-such-place"))
        a.assert_conforms()
    assert [e.value.reason for e in (full, closed, price, backwards, nowhere)] == [
        RefusalReason.FULLY_BOOKED, RefusalReason.CLOSED, RefusalReason.PRICE_CHANGED, RefusalReason.INVALID_WINDOW,
        RefusalReason.NOT_FOUND]


async def test_an_update_puts_the_whole_right_at_the_next_version_and_reprices() -> None:
    async with apds() as a:
        made = await a.adapter.create_reservation(booking("ref-move"))
        moved = await a.adapter.modify_reservation(made.vendor_id, ReservationChange(ends_at=made.ends_at + timedelta(hours=2),
                                                                                     plate="BPG124"))
        a.assert_conforms()
    assert moved.price.amount > made.price.amount and moved.plate == "BPG124" and moved.version == made.version + 1
    put = next(x for x in a.recorder.exchanges if x.method == "PUT")
    assert orjson.loads(put.body)["version"] == made.version + 1


async def test_cancelling_sets_the_planned_uses_cancel_time_and_twice_is_unchanged() -> None:
    async with apds() as a:
        made = await a.adapter.create_reservation(booking("ref-cancel"))
        cancelled = await a.adapter.cancel_reservation(made.vendor_id)
        again = await a.adapter.cancel_reservation(made.vendor_id)
        a.assert_conforms()
    assert cancelled.status is ReservationStatus.CANCELLED and again == cancelled
    assert len([x for x in a.recorder.exchanges if x.method == "PUT"]) == 1
    shown = await_right(a, made.vendor_id)
    assert shown["plannedUses"][0]["cancelTime"]


def await_right(a: Apds, right_id: str) -> dict[str, Any]:
    return next(orjson.loads(x.answer) for x in reversed(a.recorder.exchanges)
                if x.method == "GET" and x.path == f"/rights/assigned/{right_id}" and x.status == 200)


async def test_an_arrival_shows_from_the_session_and_cannot_be_cancelled() -> None:
    async with apds() as a:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
        made = await a.adapter.create_reservation(booking("ref-arrive", starts_at=start, ends_at=start + timedelta(hours=2)))
        session, arrived = a.sim.office.vehicle_entered("berlin-hbf", "BPG123")
        assert arrived is not None and arrived.id == made.vendor_id
        seen = await a.adapter.reservation(made.vendor_id)
        [stay] = (await a.adapter.sessions("BPG123")).items
        with pytest.raises(VendorRefused) as refused:
            await a.adapter.cancel_reservation(made.vendor_id)
        a.assert_conforms()
    assert seen.status is ReservationStatus.ARRIVED and seen.arrived_at == session.entered_at.replace(microsecond=0) \
        or seen.arrived_at == session.entered_at
    assert stay.reservation_id == made.vendor_id and stay.amount_due.amount == 0
    assert refused.value.reason is RefusalReason.WRONG_STATE


async def test_a_session_owes_then_is_paid_on_its_ticket_right() -> None:
    async with apds() as a:
        a.sim.office.vehicle_entered("berlin-hbf", "BPG777", datetime.now(UTC) - timedelta(hours=2, minutes=5))
        [stay] = (await a.adapter.sessions("BPG777")).items
        # 2 h 5 min at the Hauptbahnhof: 15 minutes free, then two started hours at 3.00
        assert stay.status is SessionStatus.OPEN and stay.amount_due == Money(Decimal("6.00"), EUR)
        with pytest.raises(VendorRefused) as wrong:
            await a.adapter.pay(PaymentRequest(HBF, PaymentTarget.SESSION, stay.vendor_id, Money(Decimal("1.00"), EUR),
                                               "tok_visa", "pay-wrong"))
        with pytest.raises(VendorRefused) as declined:
            await a.adapter.pay(PaymentRequest(HBF, PaymentTarget.SESSION, stay.vendor_id, stay.amount_due,
                                               "tok_chargeDeclined", "pay-declined"))
        paid = await a.adapter.pay(PaymentRequest(HBF, PaymentTarget.SESSION, stay.vendor_id, stay.amount_due,
                                                  "tok_visa", "pay-ok"))
        again = await a.adapter.pay(PaymentRequest(HBF, PaymentTarget.SESSION, stay.vendor_id, stay.amount_due,
                                                   "tok_visa", "pay-ok"))
        after = await a.adapter.session(stay.vendor_id)
        a.assert_conforms()
    assert wrong.value.reason is RefusalReason.AMOUNT_MISMATCH and declined.value.reason is RefusalReason.DECLINED
    assert paid == again and paid.amount == stay.amount_due and paid.processor_reference.startswith("ch_")
    assert (after.amount_due.amount, after.amount_paid.amount) == (Decimal("0.00"), Decimal("6.00"))
    assert after.paid_until is not None and after.paid_until > datetime.now(UTC)
    put = next(x for x in a.recorder.exchanges if x.method == "PUT" and x.status == 200)
    assert put.path == f"/rights/assigned/{stay.vendor_id}-ticket"
    assert orjson.loads(put.body)["payments"][-1]["transactionID"] == "tok_visa"  # a processor token, never a card


async def test_prepaying_a_reservation_adds_a_payment_to_it() -> None:
    async with apds() as a:
        made = await a.adapter.create_reservation(booking("ref-prepay"))
        paid = await a.adapter.pay(PaymentRequest(HBF, PaymentTarget.RESERVATION, made.vendor_id, made.price,
                                                  "tok_visa", "pay-prepay"))
        seen = await a.adapter.reservation(made.vendor_id)
        a.assert_conforms()
    assert paid.target_id == made.vendor_id and seen.paid and a.sim.office.reservations[made.vendor_id].paid


async def test_a_permits_life_issue_change_revoke() -> None:
    async with apds() as a:
        start = datetime.now(UTC).replace(microsecond=0)
        issued = await a.adapter.create_permit(PermitRequest(HBF, "BPM1", "Max Mustermann", start,
                                                             start + timedelta(days=30), "ref-permit"))
        changed = await a.adapter.update_permit(issued.vendor_id, PermitChange(plate="BPM2"))
        revoked = await a.adapter.revoke_permit(issued.vendor_id)
        again = await a.adapter.revoke_permit(issued.vendor_id)
        listed = await a.adapter.permits("BPM2")
        with pytest.raises(VendorRefused) as wrong:
            await a.adapter.update_permit(issued.vendor_id, PermitChange(holder_name="Someone"))
        with pytest.raises(VendorRefused) as not_a_permit:
            await a.adapter.permit((await a.adapter.create_reservation(booking("ref-not-permit"))).vendor_id)
        a.assert_conforms()
    assert issued.status is PermitStatus.ACTIVE and issued.holder_name == "Max Mustermann"
    assert changed.plate == "BPM2" and changed.version == 2
    assert revoked.status is PermitStatus.REVOKED and again == revoked
    assert [p.vendor_id for p in listed.items] == [issued.vendor_id]
    assert wrong.value.reason is RefusalReason.WRONG_STATE and not_a_permit.value.reason is RefusalReason.NOT_FOUND


async def test_validations_are_rights_of_the_places_access_permission() -> None:
    async with apds() as a:
        start = datetime.now(UTC).replace(microsecond=0)
        made = await a.adapter.create_validation(ValidationRequest(HOTEL, "BHT42", start, start + timedelta(hours=20),
                                                                   "ref-val", "Erika Gast", "PMS-4711"))
        listed = await a.adapter.validations("BHT42")
        a.assert_conforms()
    assert made.status is ValidationStatus.ACTIVE and (made.guest_name, made.source) == ("Erika Gast", "PMS-4711")
    assert [v.vendor_id for v in listed.items] == [made.vendor_id]
    assert a.sim.office.validations[made.vendor_id].garage == "berlin-spree-hotel"


async def test_another_parcs_records_are_not_seen() -> None:
    async with apds() as a:
        # london-kings-cross is ParkLine's: the shared office has it, this platform does not
        a.sim.office.register(GarageTerms("london-kings-cross", "GBP", Decimal("0.2"), 10, lambda _: Decimal(1),
                                          "Europe/London"))
        start, end = window()
        theirs = a.sim.office.book("london-kings-cross", plate="LD1", starts_at=start, ends_at=end, reference="x")
        with pytest.raises(VendorRefused) as refused:
            await a.adapter.reservation(theirs.id)
        assert (await a.adapter.reservations()).items == []
        a.assert_conforms()
    assert refused.value.reason is RefusalReason.NOT_FOUND


async def test_one_malformed_right_is_an_error_and_the_rest_stand() -> None:
    async with apds() as a:
        good = await a.adapter.create_reservation(booking("ref-good"))
        bad = await a.adapter.create_reservation(booking("ref-bad", plate="BPG999"))
        a.sim.state.raw_overrides[("rights", bad.vendor_id)] = {"plannedUses": REMOVE}
        batch = await a.adapter.reservations()
    assert [r.vendor_id for r in batch.items] == [good.vendor_id]
    assert [e.record_ref for e in batch.errors] == [bad.vendor_id]


async def test_transactions_are_the_payments_collected_and_sum_as_the_office_does() -> None:
    async with apds(options={"transactions_page_size": 50}) as a:
        made = await a.adapter.create_reservation(booking("ref-tx"))
        await a.adapter.pay(PaymentRequest(HBF, PaymentTarget.RESERVATION, made.vendor_id, made.price, "tok_visa", "pay-tx"))
        until = datetime.now(UTC) + timedelta(minutes=1)
        since = until - timedelta(days=3)
        batch = await a.adapter.transactions(since, until)
        a.assert_conforms()
    office = a.sim.office.transactions([k for k in VENDOR_IDS], since, until)
    assert batch.errors == [] and len(batch.items) == len(office) > 20
    assert sum(t.amount.amount for t in batch.items) == sum(e.amount for e in office)
    assert sum(t.tax.amount for t in batch.items) == sum(e.tax for e in office)
    prepaid = next(t for t in batch.items if t.vendor_id == made.vendor_id.replace("res-", "pay-") or t.reference == made.vendor_id)
    assert prepaid.revenue_category is RevenueCategory.RESERVATION and prepaid.payment_type is PaymentType.CARD
    assert {t.revenue_category for t in batch.items} >= {RevenueCategory.TRANSIENT, RevenueCategory.RESERVATION}


async def test_some_places_transactions_are_asked_with_the_place_filter() -> None:
    async with apds(options={"transactions_page_size": 200}) as a:
        until = datetime.now(UTC) + timedelta(minutes=1)
        since = until - timedelta(days=2)
        batch = await a.adapter.transactions(since, until, [HBF])
        a.assert_conforms()
    office = a.sim.office.transactions(["berlin-hbf"], since, until)
    assert batch.errors == [] and len(batch.items) == len(office) > 10
    assert {t.vendor_facility_id for t in batch.items} == {HBF}
    assert sum(t.amount.amount for t in batch.items) == sum(e.amount for e in office)
    listed = [dict(x.query) for x in a.recorder.exchanges if x.path == "/rights/assigned"]
    assert listed and all(query["place"] == HBF for query in listed)


# --- webhooks -------------------------------------------------------------------------------------


async def test_subscribing_is_idempotent_and_follows_a_changed_configuration() -> None:
    async with apds(options={"webhook_url": "http://gateway.invalid/webhooks/parcs-central"}) as a:
        made = await a.adapter.subscribe_webhooks(None)
        assert made is not None and list(a.sim.state.subscriptions) == [made]
        kept = await a.adapter.subscribe_webhooks(made)
        body = a.sim.state.subscriptions[made].body
        assert kept == made and len(a.sim.state.subscriptions) == 1
        assert body["endpoint"] == f"http://gateway.invalid/webhooks/parcs-central?token={SECRET}"
        assert set(body["topics"]) == {"PlaceUpdated", "SessionCreated", "SessionUpdated"}
        assert {e["id"] for e in body["hierarchyElements"]} == set(VENDOR_IDS.values())
        a.sim.state.subscriptions[made].body = {**body, "topics": ["PlaceUpdated"]}  # changed at the platform
        assert await a.adapter.subscribe_webhooks(made) == made
        assert set(a.sim.state.subscriptions[made].body["topics"]) == set(body["topics"])
        del a.sim.state.subscriptions[made]  # gone at the platform: made anew
        anew = await a.adapter.subscribe_webhooks(made)
        a.assert_conforms()
    assert anew != made and list(a.sim.state.subscriptions) == [anew]
    calls = [(x.method, x.path.split("/")[1], x.status) for x in a.recorder.exchanges if "webhooks" in x.path]
    assert calls == [("POST", "webhooks", 200), ("GET", "webhooks", 200), ("GET", "webhooks", 200),
                     ("PUT", "webhooks", 200), ("GET", "webhooks", 404), ("POST", "webhooks", 200)]


async def test_no_webhook_url_no_subscription() -> None:
    async with apds() as a:
        assert await a.adapter.subscribe_webhooks(None) is None
    assert a.sim.state.subscriptions == {}


async def test_deliveries_conform_and_map_onto_entries_arrivals_exits_and_occupancy() -> None:
    async with apds(options={"webhook_url": "http://127.0.0.1:9/webhooks/parcs-central"}) as a:
        await a.adapter.subscribe_webhooks(None)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        made = await a.adapter.create_reservation(booking("ref-hook", starts_at=start, ends_at=start + timedelta(hours=1)))
        session, _ = a.sim.office.vehicle_entered("berlin-hbf", "BPG123")
        a.sim.webhooks.session_created(session)
        a.sim.webhooks.place_updated("berlin-hbf")
        left = a.sim.office.vehicle_exited("berlin-hbf", "BPG123")
        assert left is not None
        a.sim.webhooks.session_updated(left)
        a.assert_conforms()
        events = [e for raw in a.sim.webhooks.sent
                  for e in a.adapter.verify_webhook({}, raw, {"token": SECRET}, datetime.now(UTC))]
        with pytest.raises(WebhookRejected):
            a.adapter.verify_webhook({}, a.sim.webhooks.sent[0], {"token": "nope"}, datetime.now(UTC))
    assert [e.type for e in events] == [EventType.VEHICLE_ENTERED, EventType.RESERVATION_ARRIVED,
                                        EventType.OCCUPANCY_CHANGED, EventType.VEHICLE_EXITED]
    entered, arrived, occupancy, exited = events
    assert entered.vendor_facility_id == HBF and entered.payload == {"plate": "BPG123", "lane": "IN-1"}
    assert arrived.payload == {"reservation_id": made.vendor_id, "plate": "BPG123"}
    assert occupancy.payload["capacity"] == 820 and isinstance(occupancy.payload["occupied"], int)
    assert exited.vendor_event_id == f"session:{session.id}:exited"
    assert len({e.vendor_event_id for e in events}) == 4


async def test_the_simulator_refuses_what_apds_does() -> None:
    async with apds() as a, httpx.AsyncClient(base_url=f"{a.url}/apds/v1", headers={"x-mcc-access-token": TOKEN}) as http:
        assert (await http.get("/rights/assigned/nothing")).status_code == 404
        assert (await http.get("/places", params={"pageSize": "0"})).status_code == 400
        assert (await http.post("/rights/assigned", content=b"{")).status_code == 400
        created = await a.adapter.create_reservation(booking("ref-stale"))
        right = await http.get(f"/rights/assigned/{created.vendor_id}")
        stale = await http.put(f"/rights/assigned/{created.vendor_id}", json={**right.json(), "version": 7})
        assert stale.status_code == 409 and "Outdated version" in stale.json()["message"]
