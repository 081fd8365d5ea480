"""ParkLine's back office (bookings, sessions, payments, permits, validations, transactions):
the adapter against the ParkLine simulator over real HTTP, checked against the world's office.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from adapters.base import SystemSpec
from adapters.models import Money, SystemKind
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
from adapters.parkline import ParklineAdapter
from adapters.parkline.simulator import ParklineSimulator, create_simulator
from adapters.simulated.world import World
from tests.support.servers import serve

KEY = "pl-test-key-7f3a"
KX, SB = "london-kings-cross", "london-southbank"
LONDON = ZoneInfo("Europe/London")


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def sim() -> ParklineSimulator:
    return create_simulator(World(seed=7), "parcs-london", {"api_key": KEY})


@asynccontextmanager
async def connected(sim: ParklineSimulator, page_size: int = 100
                    ) -> AsyncIterator[tuple[ParklineAdapter, httpx.AsyncClient]]:
    """The simulator on loopback, an adapter for it, and a raw client to read the wire itself."""
    async with serve(sim.app) as url, httpx.AsyncClient(base_url=url, headers={"X-Api-Key": KEY}) as raw:
        adapter = ParklineAdapter(SystemSpec(id="parcs-london", kind=SystemKind.PARCS, dialect="parkline",
                                             base_url=url, credentials={"api_key": KEY},
                                             options={"page_size": page_size}))
        try:
            yield adapter, raw
        finally:
            await adapter.aclose()


def booking(reference: str, *, code: str = "KX01", plate: str = "AB12CDE", hours: int = 2,
            expected: Money | None = None) -> ReservationRequest:
    start = now() + timedelta(hours=1)
    return ReservationRequest(code, plate, start, start + timedelta(hours=hours), reference, "Ada Lovelace", expected)


async def refusal_of(call) -> VendorRefused:
    with pytest.raises(VendorRefused) as caught:
        await call
    return caught.value


# --- bookings ---------------------------------------------------------------------------------


async def test_a_booking_is_listed_readable_and_in_the_office(sim: ParklineSimulator) -> None:
    request = booking("client-1:key-1", expected=gbp("8.00"))  # 2 h at King's Cross: 800 p
    async with connected(sim, page_size=1) as (adapter, raw):
        made = await adapter.create_reservation(request)
        listed = await adapter.reservations()
        mine = await adapter.reservations(plate="AB12CDE")
        others = await adapter.reservations(plate="ZZ99ZZZ")
        read = await adapter.reservation(made.vendor_id)
        wire = (await raw.get(f"/v2/bookings/{made.vendor_id}")).json()

    assert made.status is ReservationStatus.BOOKED and made.price == gbp("8.00")
    assert (made.vendor_facility_id, made.plate, made.reference) == ("KX01", "AB12CDE", "client-1:key-1")
    assert (made.starts_at, made.ends_at, made.customer_name) == (request.starts_at, request.ends_at, "Ada Lovelace")
    assert listed.errors == [] and [r.vendor_id for r in listed.items] == [made.vendor_id]
    assert [r.vendor_id for r in mine.items] == [made.vendor_id] and others.items == []
    assert read == made
    kept = sim.office.reservations[made.vendor_id]
    assert (kept.garage, kept.reference, kept.price) == (KX, "client-1:key-1", Decimal("8.00"))
    # ParkLine's dialect: pence, local time with its offset, lower-case status
    assert wire["price_minor"] == 800 and wire["currency"] == "GBP" and wire["status"] == "booked"
    assert wire["arrive"] == request.starts_at.astimezone(LONDON).isoformat()


async def test_the_same_client_ref_twice_books_once_and_returns_the_first(sim: ParklineSimulator) -> None:
    async with connected(sim) as (adapter, raw):
        first = await adapter.create_reservation(booking("retry-me"))
        again = await adapter.create_reservation(booking("retry-me", hours=3))  # a retry, even if changed
        duplicate = await raw.post("/v2/bookings", json={"carpark": "KX01", "registration": "AB12CDE",
                                                         "arrive": "2030-01-01T10:00:00+00:00",
                                                         "depart": "2030-01-01T12:00:00+00:00",
                                                         "client_ref": "retry-me"})
    assert again == first
    assert len(sim.office.reservations) == 1
    assert duplicate.status_code == 409
    assert duplicate.json()["reason"] == "duplicate_client_ref" and duplicate.json()["booking_ref"] == first.vendor_id
    assert sim.control.requests["POST /v2/bookings"] == 3


async def test_a_fully_booked_car_park_refuses(sim: ParklineSimulator) -> None:
    request = booking("one-too-many", code="SB02")
    for n in range(sim.office.terms[SB].reservable):  # Southbank: 26 reservable spaces
        sim.office.book(SB, plate=f"FILL{n}", starts_at=request.starts_at, ends_at=request.ends_at, reference=f"f{n}")
    async with connected(sim) as (adapter, raw):
        refused = await refusal_of(adapter.create_reservation(request))
        kx = await adapter.create_reservation(booking("elsewhere"))  # King's Cross has room
    assert refused.reason is RefusalReason.FULLY_BOOKED and refused.status == 422
    assert kx.status is ReservationStatus.BOOKED


async def test_a_closed_car_park_takes_no_bookings(sim: ParklineSimulator) -> None:
    sim.backend.closed.add("SB02")
    async with connected(sim) as (adapter, raw):
        refused = await refusal_of(adapter.create_reservation(booking("closed-1", code="SB02")))
        assert SB in sim.office.closed
        sim.backend.closed.discard("SB02")
        reopened = await adapter.create_reservation(booking("closed-2", code="SB02"))
        unknown = await refusal_of(adapter.create_reservation(booking("nowhere", code="XX01")))
    assert refused.reason is RefusalReason.CLOSED and refused.status == 422
    assert reopened.status is ReservationStatus.BOOKED and SB not in sim.office.closed
    assert unknown.reason is RefusalReason.NOT_FOUND


async def test_a_booking_is_modified_and_repriced(sim: ParklineSimulator) -> None:
    async with connected(sim) as (adapter, raw):
        made = await adapter.create_reservation(booking("modify-1"))
        longer = await adapter.modify_reservation(made.vendor_id, ReservationChange(
            ends_at=made.starts_at + timedelta(hours=4), plate="CD34EFG"))
        reversed_ = await refusal_of(adapter.modify_reservation(made.vendor_id, ReservationChange(
            ends_at=made.starts_at - timedelta(hours=1))))
        price_changed = await refusal_of(adapter.create_reservation(booking("modify-2", expected=gbp("1.00"))))
    assert longer.price == gbp("14.00") and longer.plate == "CD34EFG" and longer.version == made.version + 1
    assert longer.ends_at == made.starts_at + timedelta(hours=4)
    assert reversed_.reason is RefusalReason.INVALID_WINDOW
    assert price_changed.reason is RefusalReason.PRICE_CHANGED


async def test_cancelling_twice_returns_the_cancelled_booking(sim: ParklineSimulator) -> None:
    async with connected(sim) as (adapter, raw):
        made = await adapter.create_reservation(booking("cancel-1"))
        cancelled = await adapter.cancel_reservation(made.vendor_id)
        again = await adapter.cancel_reservation(made.vendor_id)
        missing = await refusal_of(adapter.cancel_reservation("R9999999"))
        unknown = await refusal_of(adapter.reservation("R9999999"))
        changed = await refusal_of(adapter.modify_reservation(made.vendor_id, ReservationChange(plate="XY1")))
    assert cancelled.status is ReservationStatus.CANCELLED and again == cancelled
    assert missing.reason is RefusalReason.NOT_FOUND and missing.status == 404
    assert unknown.reason is RefusalReason.NOT_FOUND
    assert changed.reason is RefusalReason.WRONG_STATE


# --- sessions and payments ----------------------------------------------------------------------


async def test_a_session_owes_its_stay_and_an_exact_payment_settles_it(sim: ParklineSimulator) -> None:
    session, _ = sim.office.vehicle_entered(KX, "AB12 CDE", at=now() - timedelta(minutes=90))
    async with connected(sim) as (adapter, raw):
        listed = await adapter.sessions("AB12CDE")
        payment = await adapter.pay(PaymentRequest("KX01", PaymentTarget.SESSION, session.id, gbp("8.00"),
                                                   "tok_visa", "pay-1"))
        again = await adapter.pay(PaymentRequest("KX01", PaymentTarget.SESSION, session.id, gbp("8.00"),
                                                 "tok_visa", "pay-1"))
        after = await adapter.session(session.id)
        missing = await refusal_of(adapter.session("S0"))
    assert listed.errors == []
    [before] = listed.items
    assert before.vendor_id == session.id and before.status is SessionStatus.OPEN
    assert before.amount_due == gbp("8.00") and before.amount_paid == gbp("0.00")  # 90 min: the 2 h band
    assert (payment.target, payment.target_id, payment.amount) == (PaymentTarget.SESSION, session.id, gbp("8.00"))
    assert payment.processor_reference and again == payment
    assert len(sim.office.charges) == 1
    assert after.amount_due == gbp("0.00") and after.amount_paid == gbp("8.00") and after.paid_until is not None
    assert missing.reason is RefusalReason.NOT_FOUND


async def test_a_wrong_amount_and_a_declined_token_are_refused(sim: ParklineSimulator) -> None:
    session, _ = sim.office.vehicle_entered(KX, "AB12CDE", at=now() - timedelta(minutes=30))
    async with connected(sim) as (adapter, raw):
        wrong = await refusal_of(adapter.pay(PaymentRequest("KX01", PaymentTarget.SESSION, session.id, gbp("1.00"),
                                                            "tok_visa", "pay-wrong")))
        declined = await refusal_of(adapter.pay(PaymentRequest("KX01", PaymentTarget.SESSION, session.id,
                                                               gbp("4.50"), "tok_chargeDeclined", "pay-declined")))
        still = await adapter.session(session.id)
    assert wrong.reason is RefusalReason.AMOUNT_MISMATCH and wrong.status == 422
    assert declined.reason is RefusalReason.DECLINED and declined.status == 402
    assert still.amount_due == gbp("4.50") and sim.office.charges == {}


async def test_a_booking_is_prepaid(sim: ParklineSimulator) -> None:
    async with connected(sim) as (adapter, raw):
        made = await adapter.create_reservation(booking("prepay"))
        paid = await adapter.pay(PaymentRequest("KX01", PaymentTarget.RESERVATION, made.vendor_id, gbp("8.00"),
                                                "tok_visa", "prepay-1"))
        twice = await refusal_of(adapter.pay(PaymentRequest("KX01", PaymentTarget.RESERVATION, made.vendor_id,
                                                            gbp("8.00"), "tok_visa", "prepay-2")))
        read = await adapter.reservation(made.vendor_id)
    assert (paid.target, paid.target_id) == (PaymentTarget.RESERVATION, made.vendor_id)
    assert read.paid and twice.reason is RefusalReason.WRONG_STATE


# --- permits and validations -----------------------------------------------------------------------


async def test_permits_are_issued_listed_changed_and_revoked(sim: ParklineSimulator) -> None:
    start = now()
    request = PermitRequest("SB02", "PERMIT1", "Acme Ltd", start, start + timedelta(days=30), "permit-1", "Bay 4")
    async with connected(sim) as (adapter, raw):
        issued = await adapter.create_permit(request)
        again = await adapter.create_permit(request)
        listed = await adapter.permits()
        by_plate = await adapter.permits(plate="PERMIT1")
        changed = await adapter.update_permit(issued.vendor_id, PermitChange(holder_name="Acme Group",
                                                                             valid_until=start + timedelta(days=60)))
        revoked = await adapter.revoke_permit(issued.vendor_id)
        revoked_again = await adapter.revoke_permit(issued.vendor_id)
        frozen = await refusal_of(adapter.update_permit(issued.vendor_id, PermitChange(holder_name="Late")))
        missing = await refusal_of(adapter.revoke_permit("PM0"))
    assert issued.status is PermitStatus.ACTIVE and again == issued and len(sim.office.permits) == 1
    assert (issued.plate, issued.holder_name, issued.description) == ("PERMIT1", "Acme Ltd", "Bay 4")
    assert [p.vendor_id for p in listed.items] == [issued.vendor_id] == [p.vendor_id for p in by_plate.items]
    assert changed.holder_name == "Acme Group" and changed.valid_until == start + timedelta(days=60)
    assert changed.version == issued.version + 1
    assert revoked.status is PermitStatus.REVOKED and revoked_again == revoked
    assert frozen.reason is RefusalReason.WRONG_STATE and missing.reason is RefusalReason.NOT_FOUND


async def test_validations_are_granted_and_listed(sim: ParklineSimulator) -> None:
    start = now()
    request = ValidationRequest("SB02", "GUEST1", start, start + timedelta(hours=20), "stay-77", "Grace Hopper",
                                "pms:77")
    async with connected(sim) as (adapter, raw):
        granted = await adapter.create_validation(request)
        again = await adapter.create_validation(request)
        listed = await adapter.validations(plate="GUEST1")
        backwards = await refusal_of(adapter.create_validation(ValidationRequest(
            "SB02", "GUEST2", start, start - timedelta(hours=1), "stay-78")))
        session, _ = sim.office.vehicle_entered(SB, "GUEST1")
        covered = await adapter.session(session.id)
    assert granted.status is ValidationStatus.ACTIVE and again == granted
    assert (granted.guest_name, granted.source, granted.valid_until) == ("Grace Hopper", "pms:77", request.valid_until)
    assert [v.vendor_id for v in listed.items] == [granted.vendor_id]
    assert backwards.reason is RefusalReason.INVALID
    assert covered.amount_due == gbp("0.00")  # the hotel pays for its guest


# --- transactions ---------------------------------------------------------------------------------


async def test_transactions_follow_every_page_and_add_up_to_the_office(sim: ParklineSimulator) -> None:
    until = now()
    since = until - timedelta(days=40)
    expected = sim.office.transactions([KX, SB], since, until)
    async with connected(sim) as (adapter, raw):
        batch = await adapter.transactions(since, until)
    assert batch.errors == []
    assert len(expected) > 1000  # more than two pages of 500
    assert sim.control.requests["GET /v2/transactions"] == -(-len(expected) // 500)
    assert [t.vendor_id for t in batch.items] == [e.id for e in expected]
    assert sum(t.amount.amount for t in batch.items) == sum(e.amount for e in expected)
    assert sum(t.tax.amount for t in batch.items) == sum(e.tax for e in expected)
    by_id = {e.id: e for e in expected}
    for t in batch.items:
        entry = by_id[t.vendor_id]
        assert (t.occurred_at, t.payment_type, t.revenue_category) == (entry.occurred_at, entry.payment_type,
                                                                        entry.category)
        assert t.vendor_facility_id == {KX: "KX01", SB: "SB02"}[entry.garage] and t.amount.currency == "GBP"
    seen = {(t.payment_type, t.revenue_category) for t in batch.items}
    assert (PaymentType.MOBILE, RevenueCategory.TRANSIENT) in seen  # "app" / "transient"
    assert (PaymentType.INVOICE, RevenueCategory.VALIDATION) in seen  # "account" / "validation" (a hotel)


async def test_a_malformed_transaction_is_one_record_error(sim: ParklineSimulator) -> None:
    until = now()
    since = until - timedelta(days=2)
    sim.backend.extra_transactions.append({"txn_id": "BAD1", "carpark": "KX01", "at": "yesterday",
                                           "gross_minor": 450, "vat_minor": 75, "currency": "GBP",
                                           "tender": "card", "category": "transient"})
    sim.backend.extra_transactions.append({"txn_id": "BAD2", "carpark": "KX01", "at": until.isoformat(),
                                           "gross_minor": "4.50", "vat_minor": 75, "currency": "GBP",
                                           "tender": "card", "category": "transient"})
    expected = sim.office.transactions([KX, SB], since, until)
    async with connected(sim) as (adapter, raw):
        batch = await adapter.transactions(since, until)
    assert [e.record_ref for e in batch.errors] == ["BAD1", "BAD2"]
    assert [t.vendor_id for t in batch.items] == [e.id for e in expected]
