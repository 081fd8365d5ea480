"""ParkLine's back-office records as it puts them on the wire, from the world's `BackOffice`.

One `OfficeView` per ParkLine system: it sees only the car parks this vendor runs (another
vendor's record in the shared office is NOT_FOUND here) and renders snake_case, car park
codes, pence with their currency and local times with the car park's offset.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.operation_models import PaymentTarget, PaymentType, RefusalReason, RevenueCategory
from adapters.parkline.simulator.backend import ParklineBackend
from adapters.simulated.back_office import (
    BookedReservation,
    CardCharge,
    GrantedValidation,
    HeldPermit,
    OfficeRefusal,
    PostedTransaction,
    Session,
)

TENDERS = {PaymentType.CARD: "card", PaymentType.CASH: "cash", PaymentType.MOBILE: "app",
           PaymentType.INVOICE: "account"}
CATEGORIES = {RevenueCategory.TRANSIENT: "transient", RevenueCategory.RESERVATION: "prebook",
              RevenueCategory.PERMIT: "season", RevenueCategory.VALIDATION: "validation"}


def pence(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


class OfficeView:
    """Reads and writes the office for one ParkLine system: its car parks only, in its dialect."""

    def __init__(self, backend: ParklineBackend) -> None:
        self.backend = backend
        self.office = backend.office

    # --- car parks and times --------------------------------------------------------------

    def keys(self) -> list[str]:
        return [key for _, key in self.backend.garages()]

    def code(self, key: str) -> str:
        return next(code for code, known in self.backend.garages() if known == key)

    def key(self, code: Any) -> str:
        for known, key in self.backend.garages():
            if known == code:
                return key
        raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no car park {code!r}")

    def local(self, moment: datetime | None, key: str) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.backend.time_zone(self.code(key))).isoformat()

    def owned(self, record: Any, what: str) -> Any:
        """A record of one of this vendor's car parks, or NOT_FOUND (another vendor's is not ours to show)."""
        if record is None or record.garage not in self.keys():
            raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no {what}")
        return record

    # --- rendering --------------------------------------------------------------------------

    def booking(self, r: BookedReservation) -> dict[str, Any]:
        return {
            "booking_ref": r.id,
            "carpark": self.code(r.garage),
            "registration": r.plate,
            "arrive": self.local(r.starts_at, r.garage),
            "depart": self.local(r.ends_at, r.garage),
            "status": r.effective_status(self.office.clock()).value.lower(),
            "price_minor": pence(r.price),
            "currency": r.currency,
            "paid": r.paid,
            "customer_name": r.customer_name,
            "client_ref": r.reference,
            "arrived_at": self.local(r.arrived_at, r.garage),
            "created": self.local(r.created_at, r.garage),
            "updated": self.local(r.updated_at, r.garage),
            "version": r.version,
        }

    def session(self, s: Session) -> dict[str, Any]:
        return {
            "session_id": s.id,
            "carpark": self.code(s.garage),
            "registration": s.plate,
            "entered": self.local(s.entered_at, s.garage),
            "exited": self.local(s.exited_at, s.garage),
            "state": "in_car_park" if s.exited_at is None else "departed",
            "due_minor": pence(self.office.amount_due(s)),
            "paid_minor": pence(s.paid),
            "currency": self.office.terms[s.garage].currency,
            "paid_until": self.local(s.paid_until, s.garage),
            "booking_ref": s.reservation_id,
        }

    def payment(self, c: CardCharge) -> dict[str, Any]:
        target = "session_id" if c.target is PaymentTarget.SESSION else "booking_ref"
        return {
            "payment_id": c.id,
            "carpark": self.code(c.garage),
            target: c.target_id,
            "amount_minor": pence(c.amount),
            "currency": c.currency,
            "client_ref": c.reference,
            "processor_ref": c.processor_reference,
            "created": self.local(c.created_at, c.garage),
        }

    def permit(self, p: HeldPermit) -> dict[str, Any]:
        return {
            "permit_id": p.id,
            "carpark": self.code(p.garage),
            "registration": p.plate,
            "holder": p.holder_name,
            "valid_from": self.local(p.valid_from, p.garage),
            "valid_to": self.local(p.valid_until, p.garage),
            "status": p.status(self.office.clock()).value.lower(),
            "notes": p.description,
            "client_ref": p.reference,
            "created": self.local(p.created_at, p.garage),
            "updated": self.local(p.updated_at, p.garage),
            "version": p.version,
        }

    def validation(self, v: GrantedValidation) -> dict[str, Any]:
        return {
            "validation_id": v.id,
            "carpark": self.code(v.garage),
            "registration": v.plate,
            "valid_from": self.local(v.valid_from, v.garage),
            "valid_to": self.local(v.valid_until, v.garage),
            "status": v.status(self.office.clock()).value.lower(),
            "guest_name": v.guest_name,
            "source": v.source,
            "client_ref": v.reference,
            "created": self.local(v.created_at, v.garage),
        }

    def transaction(self, e: PostedTransaction) -> dict[str, Any]:
        return {
            "txn_id": e.id,
            "carpark": self.code(e.garage),
            "at": self.local(e.occurred_at, e.garage),
            "gross_minor": pence(e.amount),
            "vat_minor": pence(e.tax),
            "currency": e.currency,
            "tender": TENDERS[e.payment_type],
            "category": CATEGORIES[e.category],
            "description": e.description,
            "ref": e.reference,
        }

    def existing(self, table: dict[str, Any], reference: str) -> str | None:
        """The record made with this client_ref before, if any."""
        return next((record.id for record in table.values() if record.reference == reference), None)

