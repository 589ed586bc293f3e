"""Retention: which operational rows are deleted once they are older than OFFERSEAL_RETENTION,
and the sweep that deletes them. Evidence is never deleted: documents and their bytes, intake
receipts, batches and proofs, agreements and their chain operations, touchpoints and the record
of each one's delivery (sent, failed, skipped) stay as proof.

Deleted once older than the retention age:
- outbox rows already published (`sent_at`);
- handled-message ids (the broker redelivers within minutes, never after days);
- idempotency records (a key reused later is a new request);
- delivery attempts that only said "try again later", "quiet hours" or "a provider's limit"
  (`retry`, `deferred`, `moved`);
- HR alerts already posted to the tenant's chat robots, and the robots' answers to each post
  (the SMS providers' answers, `notify_sms_sends`, stay: proof of notice);
- used reply tokens, once every link they came from has expired too (link TTL);
- short links, once expired for longer than the retention age (they answer 410 until then).

Tables of services are named here, not imported: this module imports no service.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import and_, column, delete, table

from .db import Database
from .models import utcnow

log = logging.getLogger(__name__)

_outbox = table("outbox", column("sent_at"))
_handled = table("handled_messages", column("handled_at"))
_idempotency = table("idempotency_keys", column("created_at"))
_attempts = table("touchpoint_attempts", column("at"), column("outcome"))
_used_tokens = table("notify_used_tokens", column("used_at"))
_short_links = table("short_links", column("expires_at"))

_alerts = table("notify_alerts", column("created_at"), column("state"))
_alert_posts = table("notify_alert_posts", column("at"))

TRANSIENT_ATTEMPTS = ("retry", "deferred", "moved")


def sweep(
    db: Database, retention: float, link_ttl: float, now: dt.datetime | None = None
) -> dict[str, int]:
    """Delete what is past its retention. Returns rows deleted per table."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=retention)
    token_cutoff = now - dt.timedelta(seconds=max(retention, link_ttl))
    statements = {
        "outbox": delete(_outbox).where(
            and_(_outbox.c.sent_at.is_not(None), _outbox.c.sent_at < cutoff)
        ),
        "handled_messages": delete(_handled).where(_handled.c.handled_at < cutoff),
        "idempotency_keys": delete(_idempotency).where(_idempotency.c.created_at < cutoff),
        "touchpoint_attempts": delete(_attempts).where(
            and_(_attempts.c.outcome.in_(TRANSIENT_ATTEMPTS), _attempts.c.at < cutoff)
        ),
        "notify_used_tokens": delete(_used_tokens).where(_used_tokens.c.used_at < token_cutoff),
        "short_links": delete(_short_links).where(_short_links.c.expires_at < cutoff),
        "notify_alerts": delete(_alerts).where(
            and_(_alerts.c.state == "done", _alerts.c.created_at < cutoff)
        ),
        "notify_alert_posts": delete(_alert_posts).where(_alert_posts.c.at < cutoff),
    }
    deleted: dict[str, int] = {}
    for name, statement in statements.items():
        with db.transaction() as session:
            deleted[name] = int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
    if any(deleted.values()):
        log.info("retention: deleted %s", ", ".join(f"{n} {t}" for t, n in deleted.items() if n))
    return deleted
