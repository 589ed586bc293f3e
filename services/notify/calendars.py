"""A tenant's holiday calendar (`PUT /v1/calendar`): off by default; `cn` makes planning and
dispatch know mainland China's public holidays and adjusted working days."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import iso, utcnow
from .adapters.calendar_cn import ChinaCalendar
from .domain.workdays import Calendar
from .models import TenantCalendar

CHOICES = ("none", "cn")
_CHINA: ChinaCalendar | None = None


def china() -> ChinaCalendar:
    global _CHINA
    if _CHINA is None:
        _CHINA = ChinaCalendar()
    return _CHINA


def calendar_of(session: Session, tenant: str) -> Calendar | None:
    row = session.get(TenantCalendar, tenant)
    return china() if row is not None and row.calendar == "cn" else None


def calendars_of(session: Session, tenants: Iterable[str]) -> dict[str, Calendar]:
    """The tenants that use a holiday calendar, one query per batch."""
    rows = session.execute(
        select(TenantCalendar.tenant).where(
            TenantCalendar.tenant.in_(set(tenants)), TenantCalendar.calendar == "cn"
        )
    ).scalars()
    return {tenant: china() for tenant in rows}


class TenantCalendars:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, principal: Principal) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            row = session.get(TenantCalendar, principal.tenant)
        calendar = row.calendar if row else "none"
        out: dict[str, Any] = {
            "calendar": calendar,
            "updated_at": iso(row.updated_at) if row else None,
        }
        if calendar == "cn":
            # years whose official arrangement is known (later ones: statutory days only)
            out["official_until"] = china().last_year
        return out

    def put(self, principal: Principal, calendar: str) -> dict[str, Any]:
        principal.require(*WRITE_ROLES)
        if calendar not in CHOICES:
            raise ValidationFailed("calendar", "`cn` (mainland China) or `none`")
        with self.db.transaction() as session:
            row = session.get(TenantCalendar, principal.tenant)
            if row is None:
                row = TenantCalendar(tenant=principal.tenant)
                session.add(row)
            row.calendar = calendar
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get(principal)
