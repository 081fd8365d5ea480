"""The APDS adapter's operations against its simulator and the world's back office, over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from adapters.apds import ApdsAdapter
from adapters.apds.simulator import REMOVE, TARIFFS, VENDOR_IDS, ApdsSimulator, create_simulator
from adapters.apds.simulator.webhooks import event_body, reservation_arrived
from adapters.apds.webhooks import signature
from adapters.base import SystemSpec
from adapters.errors import WebhookMalformed
from adapters.models import EventType, Money, SystemKind
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
from adapters.simulated.world import World
from tests.support.servers import serve

TOKEN = "apds-sandbox-token"
SECRET = "whsec-apds"
HBF, MITTE, HOTEL = (VENDOR_IDS[k] for k in ("berlin-hbf", "berlin-mitte", "berlin-spree-hotel"))
EUR = "EUR"


@asynccontextmanager
async def apds(**options: Any) -> AsyncIterator[tuple[ApdsSimulator, ApdsAdapter]]:
    """A running simulator and an adapter pointed at it (page size 2, so lists really page)."""
    sim = create_simulator(World(seed=11), "parcs-central", {"token": TOKEN})
    async with serve(sim.app) as url:
        adapter = ApdsAdapter(SystemSpec(
            id="parcs-central", kind=SystemKind.PARCS, dialect="apds", base_url=url,
            credentials={"token": TOKEN, "webhook_secret": SECRET}, options={"page_size": 2, **options},
        ))
        try:
            yield sim, adapter
        finally:
            await adapter.aclose()


def hour(offset: float) -> datetime:
    """A whole second `offset` hours from now (future windows: the office refuses the past)."""
    return (datetime.now(UTC) + timedelta(hours=offset)).replace(microsecond=0)


def booking(reference: str, plate: str = "BPG123", start: float = 2, hours: float = 2, place: str = HBF,
            expected: Money | None = None) -> ReservationRequest:
    return ReservationRequest(place, plate, hour(start), hour(start + hours), reference, customer_name="Ada Lovelace",
                              expected_price=expected)


async def refused(awaitable: Any) -> VendorRefused:
    with pytest.raises(VendorRefused) as info:
        await awaitable
    return info.value


# --- reservations ------------------------------------------------------------------------


async def test_booking_appears_in_the_list_by_id_and_in_the_office() -> None:
    async with apds() as (sim, adapter):
        made = await adapter.create_reservation(booking("client-1/key-1"))
        other = await adapter.create_reservation(booking("client-1/key-2", plate="HHAB12", place=MITTE))
        listed = await adapter.reservations()
        mine = await adapter.reservations(plate="BPG123")
        fetched = await adapter.reservation(made.vendor_id)
    assert made.vendor_facility_id == HBF and made.plate == "BPG123" and made.status is ReservationStatus.BOOKED
    assert made.price == Money(Decimal("6.00"), EUR) and made.customer_name == "Ada Lovelace"
    assert made.reference == "client-1/key-1" and made.version == 1 and not made.paid
    assert made.vendor_id.startswith("res-") and made.created_at.tzinfo is UTC
    assert listed.errors == [] and {r.vendor_id for r in listed.items} == {made.vendor_id, other.vendor_id}
    assert other.vendor_facility_id == MITTE and other.price == Money(Decimal("4.50"), EUR)
    assert [r.vendor_id for r in mine.items] == [made.vendor_id]
    assert fetched == made
    office_record = sim.office.reservations[made.vendor_id]
    assert (office_record.garage, office_record.plate, office_record.price) == ("berlin-hbf", "BPG123", Decimal("6.00"))


async def test_a_malformed_reservation_is_an_error_and_the_rest_stand() -> None:
    async with apds() as (sim, adapter):
        good = await adapter.create_reservation(booking("k-good"))
        bad = await adapter.create_reservation(booking("k-bad", plate="BBAD1"))
        sim.state.raw_overrides[("reservations", bad.vendor_id)] = {"status": "BOOKED", "version": REMOVE}
        batch = await adapter.reservations()
    assert [r.vendor_id for r in batch.items] == [good.vendor_id]
    assert [e.record_ref for e in batch.errors] == [bad.vendor_id] and "status" in batch.errors[0].message


async def test_same_reference_twice_is_one_booking_and_the_same_record() -> None:
    async with apds() as (sim, adapter):
        first = await adapter.create_reservation(booking("client-1/retry"))
        again = await adapter.create_reservation(booking("client-1/retry", hours=5))  # a retry, whatever it says
    assert again == first
    assert len(sim.office.reservations) == 1
    assert sim.control.requests["POST /apds/v1/reservations"] == 2
    assert sim.control.requests["GET /apds/v1/reservations/{id}"] == 1  # the duplicate answer was looked up


async def test_duplicate_answers_409_naming_the_existing_record_on_the_wire() -> None:
    async with apds() as (_, adapter):
        first = await adapter.create_reservation(booking("client-1/wire"))
        window = {"from": hour(5).strftime("%Y-%m-%dT%H:%M:%SZ"), "to": hour(6).strftime("%Y-%m-%dT%H:%M:%SZ")}
        body = {"placeId": HBF, "plate": "BPG123", **window}
        auth = {"Authorization": f"Token {TOKEN}"}
        async with httpx.AsyncClient(base_url=adapter.spec.base_url, headers=auth) as raw:
            same_id = await raw.post("/apds/v1/reservations", json={**body, "id": first.vendor_id, "reference": "new"})
            same_ref = await raw.post("/apds/v1/reservations",
                                      json={**body, "id": "res-new", "reference": "client-1/wire"})
    for answer in (same_id, same_ref):
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "duplicate"
        assert answer.json()["error"]["existingId"] == first.vendor_id


async def test_fully_booked_garage_refuses() -> None:
    async with apds() as (sim, adapter):
        sim.office.terms["berlin-hbf"] = dataclasses.replace(sim.office.terms["berlin-hbf"], reservable=1)
        await adapter.create_reservation(booking("k-1"))
        refusal = await refused(adapter.create_reservation(booking("k-2", plate="BXY1", start=3)))
        elsewhere = await adapter.create_reservation(booking("k-3", plate="BXY1", start=3, place=MITTE))
    assert refusal.reason is RefusalReason.FULLY_BOOKED and refusal.status == 409 and refusal.system_id == "parcs-central"
    assert elsewhere.status is ReservationStatus.BOOKED


async def test_terms_registered_per_garage() -> None:
    sim = create_simulator(World(seed=11), "parcs-central", {"token": TOKEN})
    assert set(sim.office.terms) == set(VENDOR_IDS)
    hbf, hotel = sim.office.terms["berlin-hbf"], sim.office.terms["berlin-spree-hotel"]
    assert (hbf.currency, hbf.vat_rate, hbf.reservable, hbf.time_zone, hbf.hotel) == (
        "EUR", Decimal("0.19"), 82, "Europe/Berlin", False)
    assert hotel.hotel and hotel.reservable >= 5


async def test_closed_garage_refuses_bookings() -> None:
    async with apds() as (sim, adapter):
        sim.state.closed.add("berlin-mitte")
        refusal = await refused(adapter.create_reservation(booking("k-closed", place=MITTE)))
    assert refusal.reason is RefusalReason.CLOSED
    assert "berlin-mitte" in sim.office.closed  # one set: the office sees what the simulator closed


async def test_price_changed_and_invalid_window_and_unknown_place() -> None:
    async with apds() as (_, adapter):
        stale = await refused(adapter.create_reservation(booking("k-p", expected=Money(Decimal("5.00"), EUR))))
        agreed = await adapter.create_reservation(booking("k-q", expected=Money(Decimal("6.00"), EUR)))
        backwards = await refused(adapter.create_reservation(
            ReservationRequest(HBF, "BPG123", hour(5), hour(4), "k-w")))
        nowhere = await refused(adapter.create_reservation(booking("k-n", place="no-such-place")))
        missing = await refused(adapter.reservation("res-nope"))
        odd = await refused(adapter.reservation(".."))
    assert stale.reason is RefusalReason.PRICE_CHANGED and "6.00" in str(stale)
    assert agreed.price == Money(Decimal("6.00"), EUR)
    assert (backwards.reason, backwards.status) == (RefusalReason.INVALID_WINDOW, 422)
    assert (nowhere.reason, nowhere.status) == (RefusalReason.NOT_FOUND, 404)
    assert (missing.reason, missing.status) == (RefusalReason.NOT_FOUND, 404)
    assert odd.reason is RefusalReason.NOT_FOUND


async def test_modify_reprices_and_bumps_the_version() -> None:
    async with apds() as (sim, adapter):
        made = await adapter.create_reservation(booking("k-m"))
        five_hours = ReservationChange(ends_at=made.starts_at + timedelta(hours=5))
        longer = await adapter.modify_reservation(made.vendor_id, five_hours)
        moved = await adapter.modify_reservation(made.vendor_id, ReservationChange(plate="HHZZ9"))
    assert longer.price == Money(TARIFFS["berlin-hbf"].price(timedelta(hours=5)), EUR) == Money(Decimal("15.00"), EUR)
    assert longer.version == 2 and longer.starts_at == made.starts_at
    assert (moved.plate, moved.version, moved.price) == ("HHZZ9", 3, longer.price)
    assert sim.office.reservations[made.vendor_id].plate == "HHZZ9"


async def test_cancel_then_cancel_again_is_unchanged() -> None:
    async with apds() as (_, adapter):
        made = await adapter.create_reservation(booking("k-c"))
        cancelled = await adapter.cancel_reservation(made.vendor_id)
        again = await adapter.cancel_reservation(made.vendor_id)
        change = await refused(adapter.modify_reservation(made.vendor_id, ReservationChange(plate="X1")))
    assert cancelled.status is ReservationStatus.CANCELLED and cancelled.version == 2
    assert again == cancelled
    assert (change.reason, change.status) == (RefusalReason.WRONG_STATE, 409)


async def test_cancelling_an_arrived_reservation_is_the_wrong_state() -> None:
    async with apds() as (sim, adapter):
        made = await adapter.create_reservation(booking("k-a", start=0.1))
        session, arrived = sim.office.vehicle_entered("berlin-hbf", "B PG 123")
        refusal = await refused(adapter.cancel_reservation(made.vendor_id))
        now_arrived = await adapter.reservation(made.vendor_id)
        sessions = await adapter.sessions("BPG123")
    assert arrived is not None and arrived.id == made.vendor_id
    assert refusal.reason is RefusalReason.WRONG_STATE
    assert now_arrived.status is ReservationStatus.ARRIVED and now_arrived.arrived_at is not None
    assert [(s.vendor_id, s.reservation_id, s.amount_due) for s in sessions.items] == [
        (session.id, made.vendor_id, Money(Decimal("0.00"), EUR))]


# --- sessions and payments ---------------------------------------------------------------


async def test_session_due_then_paid() -> None:
    async with apds() as (sim, adapter):
        # 100 minutes at the main station: two started hours after the free 15 minutes, for 35 minutes more.
        entered, _ = sim.office.vehicle_entered("berlin-hbf", "MUC42", at=datetime.now(UTC) - timedelta(minutes=100))
        batch = await adapter.sessions("MUC42")
        (session,) = batch.items
        due = session.amount_due

        def payment(amount: Decimal, token: str, reference: str) -> PaymentRequest:
            return PaymentRequest(HBF, PaymentTarget.SESSION, session.vendor_id, Money(amount, EUR), token, reference)

        wrong = await refused(adapter.pay(payment(Decimal("1.00"), "tok_visa", "pay-1")))
        declined = await refused(adapter.pay(payment(due.amount, "tok_chargeDeclined", "pay-2")))
        paid = await adapter.pay(payment(due.amount, "tok_visa", "pay-3"))
        retried = await adapter.pay(payment(due.amount, "tok_visa", "pay-3"))
        after = await adapter.session(session.vendor_id)
        nothing_owed = await refused(adapter.pay(payment(due.amount, "tok_visa", "pay-4")))
        unknown = await refused(adapter.session("S-nope"))
    assert batch.errors == [] and session.vendor_id == entered.id and session.status is SessionStatus.OPEN
    assert due == Money(Decimal("6.00"), EUR) and session.amount_paid == Money(Decimal("0.00"), EUR)
    assert (wrong.reason, wrong.status) == (RefusalReason.AMOUNT_MISMATCH, 422)
    assert (declined.reason, declined.status) == (RefusalReason.DECLINED, 402)
    assert (paid.target, paid.target_id, paid.amount, paid.reference) == (
        PaymentTarget.SESSION, session.vendor_id, due, "pay-3")
    assert paid.vendor_id.startswith("pay-") and paid.processor_reference and paid.processor_reference.startswith("ch_")
    assert retried == paid and len(sim.office.charges) == 1
    assert after.amount_due == Money(Decimal("0.00"), EUR) and after.amount_paid == due
    assert after.paid_until is not None and after.paid_until > datetime.now(UTC)
    assert nothing_owed.reason is RefusalReason.WRONG_STATE
    assert unknown.reason is RefusalReason.NOT_FOUND


async def test_prepaying_a_reservation() -> None:
    async with apds() as (sim, adapter):
        made = await adapter.create_reservation(booking("k-pre"))
        paid = await adapter.pay(PaymentRequest(HBF, PaymentTarget.RESERVATION, made.vendor_id, made.price, "tok_visa",
                                                "pay-res"))
        after = await adapter.reservation(made.vendor_id)
    assert paid.target is PaymentTarget.RESERVATION and paid.target_id == made.vendor_id
    assert after.paid and after.version == 2
    assert sim.office.ledger[-1].category is RevenueCategory.RESERVATION


# --- permits and validations -------------------------------------------------------------


async def test_permit_lifecycle() -> None:
    async with apds() as (sim, adapter):
        request = PermitRequest(MITTE, "BPM1", "Grace Hopper", hour(-1), hour(24 * 30), "permit/1", "Monthly")
        made = await adapter.create_permit(request)
        again = await adapter.create_permit(request)
        await adapter.create_permit(PermitRequest(HBF, "BOTHER", "Other", hour(1), None, "permit/2"))
        mine = await adapter.permits(plate="BPM1")
        everyone = await adapter.permits()
        updated = await adapter.update_permit(made.vendor_id, PermitChange(holder_name="G. Hopper", plate="BPM2"))
        revoked = await adapter.revoke_permit(made.vendor_id)
        revoked_again = await adapter.revoke_permit(made.vendor_id)
        late_change = await refused(adapter.update_permit(made.vendor_id, PermitChange(description="x")))
    assert made.status is PermitStatus.ACTIVE and made.version == 1 and made.description == "Monthly"
    assert made.vendor_id.startswith("pmt-") and again == made and len(sim.office.permits) == 2
    assert [p.vendor_id for p in mine.items] == [made.vendor_id]
    assert {p.status for p in everyone.items} == {PermitStatus.ACTIVE, PermitStatus.PENDING}
    assert next(p for p in everyone.items if p.plate == "BOTHER").valid_until is None
    assert (updated.holder_name, updated.plate, updated.version) == ("G. Hopper", "BPM2", 2)
    assert revoked.status is PermitStatus.REVOKED and revoked_again == revoked
    assert late_change.reason is RefusalReason.WRONG_STATE


async def test_validations_create_and_list() -> None:
    async with apds() as (sim, adapter):
        request = ValidationRequest(HOTEL, "HHGUEST1", hour(-1), hour(20), "pms/res-77", "Mr Guest", "mews:res-77")
        made = await adapter.create_validation(request)
        again = await adapter.create_validation(request)
        listed = await adapter.validations(plate="HHGUEST1")
        none = await adapter.validations(plate="NOBODY")
        backwards = await refused(adapter.create_validation(
            ValidationRequest(HOTEL, "HHGUEST1", hour(5), hour(1), "pms/bad")))
    assert (made.status, made.guest_name, made.source) == (ValidationStatus.ACTIVE, "Mr Guest", "mews:res-77")
    assert made.vendor_id.startswith("val-") and again == made and len(sim.office.validations) == 1
    assert listed.items == [made] and none.items == []
    assert backwards.reason is RefusalReason.INVALID


async def test_another_vendors_records_are_not_seen() -> None:
    async with apds() as (sim, adapter):
        sim.office.register(GarageTerms("london-southbank", "GBP", Decimal("0.20"), 5, TARIFFS["berlin-hbf"].price,
                                        "Europe/London"))
        theirs = sim.office.book("london-southbank", plate="LN12ABC", starts_at=hour(2), ends_at=hour(3),
                                 reference="parkline/1")
        sim.office.vehicle_entered("london-southbank", "LN12ABC")
        listed = await adapter.reservations()
        missing = await refused(adapter.reservation(theirs.id))
        sessions = await adapter.sessions("LN12ABC")
    assert listed.items == [] and missing.reason is RefusalReason.NOT_FOUND and sessions.items == []


# --- transactions ------------------------------------------------------------------------


async def test_transactions_paged_with_totals_equal_to_the_office() -> None:
    async with apds(transactions_page_size=40) as (sim, adapter):
        # 100 minutes at Mitte: three started half hours after the free 30 minutes, for 20 minutes more.
        entered, _ = sim.office.vehicle_entered("berlin-mitte", "PAYME1", at=datetime.now(UTC) - timedelta(minutes=100))
        session = (await adapter.sessions("PAYME1")).items[0]
        assert session.amount_due == Money(Decimal("4.50"), EUR)
        await adapter.pay(PaymentRequest(MITTE, PaymentTarget.SESSION, session.vendor_id, session.amount_due,
                                         "tok_visa", "pay-ledger"))
        until = datetime.now(UTC) + timedelta(minutes=1)
        since = until - timedelta(days=2)
        batch = await adapter.transactions(since, until)
        expected = sim.office.transactions(VENDOR_IDS, since, until)
    assert batch.errors == []
    assert len(batch.items) == len(expected) > 80
    assert sim.control.requests["GET /apds/v1/transactions"] == -(-len(expected) // 40)
    assert sum(t.amount.amount for t in batch.items) == sum(e.amount for e in expected)
    assert sum(t.tax.amount for t in batch.items) == sum(e.tax for e in expected)
    assert [t.vendor_id for t in batch.items] == [e.id for e in expected]
    assert {t.payment_type for t in batch.items} <= set(PaymentType)
    assert RevenueCategory.TRANSIENT in {t.revenue_category for t in batch.items}
    last = batch.items[-1]
    assert (last.vendor_facility_id, last.reference, last.payment_type, last.amount) == (
        MITTE, entered.id, PaymentType.CARD, session.amount_due)
    assert all(t.occurred_at.tzinfo is UTC and since <= t.occurred_at < until for t in batch.items)


async def test_transactions_over_a_long_range_go_window_by_window() -> None:
    async with apds() as (sim, adapter):
        until = sim.office.opened_at.replace(microsecond=0)
        since = until - timedelta(days=40)
        batch = await adapter.transactions(since, until)
        expected = sim.office.transactions(VENDOR_IDS, since, until)
    assert batch.errors == [] and [t.vendor_id for t in batch.items] == [e.id for e in expected]
    assert sum(t.amount.amount for t in batch.items) == sum(e.amount for e in expected)
    assert sim.control.requests["GET /apds/v1/transactions"] >= 2  # 31 days, then 9


async def test_a_malformed_transaction_is_an_error_and_the_rest_stand() -> None:
    async with apds(transactions_page_size=25) as (sim, adapter):
        until = sim.office.opened_at.replace(microsecond=0)
        since = until - timedelta(days=1)
        expected = sim.office.transactions(VENDOR_IDS, since, until)
        bad, gone = expected[3].id, expected[30].id
        sim.state.raw_overrides[("transactions", bad)] = {"amount": {"amount": 12.5, "currency": "EUR"}}  # a float
        sim.state.raw_overrides[("transactions", gone)] = {"paymentType": "barter", "tax": REMOVE}
        sim.state.extra_records["transactions"] = ["not a record"]
        batch = await adapter.transactions(since, until)
    assert sorted(e.record_ref for e in batch.errors) == sorted([bad, gone, f"#{len(expected)}"])
    assert len(batch.items) == len(expected) - 2
    assert "amount" in next(e.message for e in batch.errors if e.record_ref == bad)


# --- webhooks ----------------------------------------------------------------------------


def signed(body: dict[str, Any], secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    raw = orjson.dumps(body)
    timestamp = str(int(datetime.now(UTC).timestamp()))
    return {"x-apds-timestamp": timestamp, "x-apds-signature": signature(secret, timestamp, raw)}, raw


async def test_reservation_arrived_webhook_verifies_and_maps() -> None:
    async with apds() as (_, adapter):
        at = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
        headers, raw = signed(reservation_arrived(HBF, "res-abc", "BPG123", at, event_id="evt-1"))
        (event,) = adapter.verify_webhook(headers, raw, {}, datetime.now(UTC))
        headers, raw = signed(event_body("reservation.arrived", HBF, at, {"plate": "BPG123"}))
        with pytest.raises(WebhookMalformed):
            adapter.verify_webhook(headers, raw, {}, datetime.now(UTC))
    assert event.type is EventType.RESERVATION_ARRIVED and event.vendor_event_id == "evt-1"
    assert event.vendor_facility_id == HBF and event.occurred_at == at
    assert event.payload == {"reservation_id": "res-abc", "plate": "BPG123"}
