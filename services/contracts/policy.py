"""What each tenant chose where the product leaves a choice: whether the sweeper declares a
candidate's breach by itself once the chain allows it, and whether a candidate's upload through
their link confirms a milestone on chain by itself or waits for HR's review.

The defaults come from settings (OFFERSEAL_AUTO_BREACH, OFFERSEAL_CANDIDATE_UPLOADS); a tenant's
admin may override either (`PUT /v1/policy`); null goes back to the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ..shared.auth import READ_ROLES, Principal
from ..shared.db import Database
from ..shared.models import iso, utcnow
from .errors import ValidationFailed
from .models import TenantPolicy

UPLOAD_MODES = ("review", "auto")


@dataclass(frozen=True)
class Policy:
    auto_breach: bool
    candidate_uploads: str  # "review": HR confirms; "auto": the anchored upload confirms

    def __post_init__(self) -> None:
        if self.candidate_uploads not in UPLOAD_MODES:
            raise ValueError(f"candidate_uploads must be one of {UPLOAD_MODES}")


@dataclass(frozen=True)
class PolicyView:
    """A tenant's policy as it applies, the deployment's defaults, and when it was changed."""

    auto_breach: bool
    candidate_uploads: str
    defaults: Policy
    updated_at: str | None


class Policies:
    def __init__(self, db: Database, defaults: Policy) -> None:
        self.db = db
        self.defaults = defaults

    def of(self, session: Session, tenant: str) -> Policy:
        row = session.get(TenantPolicy, tenant)
        if row is None:
            return self.defaults
        return Policy(
            auto_breach=self.defaults.auto_breach if row.auto_breach is None else row.auto_breach,
            candidate_uploads=row.candidate_uploads or self.defaults.candidate_uploads,
        )

    def describe(self, principal: Principal) -> PolicyView:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            row = session.get(TenantPolicy, principal.tenant)
            policy = self.of(session, principal.tenant)
        return PolicyView(
            auto_breach=policy.auto_breach,
            candidate_uploads=policy.candidate_uploads,
            defaults=self.defaults,
            updated_at=iso(row.updated_at) if row is not None else None,
        )

    def update(self, principal: Principal, changes: dict[str, Any]) -> PolicyView:
        """Set the given fields (null: back to the default); others keep their value."""
        principal.require("admin")
        mode = changes.get("candidate_uploads")
        if mode is not None and mode not in UPLOAD_MODES:
            raise ValidationFailed("candidate_uploads", f"one of {', '.join(UPLOAD_MODES)}")
        with self.db.transaction() as session:
            row = session.get(TenantPolicy, principal.tenant)
            if row is None:
                row = TenantPolicy(tenant=principal.tenant)
                session.add(row)
            if "auto_breach" in changes:
                row.auto_breach = changes["auto_breach"]
            if "candidate_uploads" in changes:
                row.candidate_uploads = mode
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.describe(principal)
