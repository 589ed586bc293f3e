"""HR alerts in the team's chat: a tenant's robots (`PUT /v1/alerts`, secrets sealed, never
shown again), alerts raised as events happen (a risk turned red, a check-in missed, a milestone
overdue, a breach coming due, an arrival disputed), and the worker step that posts what is
waiting, merged into one markdown message per robot, within each platform's rate limits.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..shared.auth import READ_ROLES, WRITE_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import iso, utcnow
from .adapters.chat import ChatAnswer, ChatRobot
from .domain import alerts as rules
from .models import AlertHooks, AlertPost, FollowedAgreement, HrAlert

log = logging.getLogger(__name__)

# Each platform's own webhook hosts (https only); anything else needs OFFERSEAL_CHAT_ROBOT_HOSTS.
OFFICIAL_HOSTS = {
    rules.DINGTALK: {"oapi.dingtalk.com"},
    rules.WECOM: {"qyapi.weixin.qq.com"},
    rules.FEISHU: {"open.feishu.cn", "open.larksuite.com"},
}
SIGNED = {rules.DINGTALK, rules.FEISHU}


class HookSealer:
    """AES-256-GCM under a key derived (HKDF) from the master key; the tenant is bound in as
    associated data, so one tenant's sealed robots cannot be moved onto another's."""

    def __init__(
        self, master_key: bytes, previous: Sequence[bytes] = (), info: bytes = b"offerseal-alerts"
    ) -> None:
        # `info` keeps each use's key apart (the robots; a tenant's SMS account)
        self._keys = [AESGCM(self._derive(k, info)) for k in (master_key, *previous)]

    @staticmethod
    def _derive(master: bytes, info: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
        return hkdf.derive(master)

    def seal(self, tenant: str, value: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        data = self._keys[0].encrypt(nonce, json.dumps(value).encode(), tenant.encode())
        return base64.b64encode(nonce + data).decode()

    def open(self, tenant: str, sealed: str) -> dict[str, Any]:
        raw = base64.b64decode(sealed)
        for key in self._keys:
            try:
                opened: dict[str, Any] = json.loads(
                    key.decrypt(raw[:12], raw[12:], tenant.encode())
                )
                return opened
            except Exception:  # InvalidTag: another key
                continue
        raise ValueError("sealed under a master key not configured")


def mask(url: str) -> str:
    """The URL with its credential (DingTalk's access_token, WeCom's key, Feishu's hook id)
    cut to its first four characters."""
    parts = urllib.parse.urlsplit(url)
    query = "&".join(  # the ellipsis as written: `access_token=dt-a…`
        f"{urllib.parse.quote(k)}={urllib.parse.quote(v[:4]) + '…' if v else ''}"
        for k, v in urllib.parse.parse_qsl(parts.query)
    )
    path = parts.path
    if "/hook/" in path:
        head, _, token = path.rpartition("/")
        path = f"{head}/{token[:4]}…"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


class AlertService:
    def __init__(
        self,
        db: Database,
        sealer: HookSealer,
        *,
        console_url: str = "",
        extra_hosts: Sequence[str] = (),
        robot: Callable[[str, str, str], ChatRobot] = ChatRobot,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.console_url = console_url.rstrip("/")
        self.extra_hosts = set(extra_hosts)
        self.robot = robot
        self.clock = clock

    # ---- settings (PUT/GET /v1/alerts) ---------------------------------------------------

    def _check_url(self, platform: str, url: Any) -> str:
        name = f"{platform}.url"
        if not isinstance(url, str) or len(url) > 500 or any(c.isspace() for c in url):
            raise ValidationFailed(name, "the robot's webhook URL")
        parts = urllib.parse.urlsplit(url)
        official = parts.scheme == "https" and parts.hostname in OFFICIAL_HOSTS[platform]
        if not official and parts.netloc not in self.extra_hosts:
            hosts = ", ".join(sorted(OFFICIAL_HOSTS[platform]))
            raise ValidationFailed(name, f"an https:// webhook of {hosts}")
        if parts.username or parts.password or parts.fragment:
            raise ValidationFailed(name, "no user, password or fragment")
        return url

    def put(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        """Replaces the robots: a platform left out (or null) is removed. A platform given
        without `url` keeps its stored robot (its secret too, unless a new one is given), as
        neither can be read back to send again."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            stored, _ = self._robots(session, principal.tenant)
        robots: dict[str, dict[str, str]] = {}
        for platform in rules.PLATFORMS:
            given = body.get(platform)
            if given is None:
                continue
            url, secret = given.get("url"), given.get("secret")
            kept = stored.get(platform)
            if url is None and kept is None:
                raise ValidationFailed(f"{platform}.url", "the robot's webhook URL")
            robot = {"url": kept["url"] if url is None and kept else self._check_url(platform, url)}
            if platform in SIGNED:
                if secret is None and url is None and kept is not None:
                    secret = kept.get("secret")
                if not isinstance(secret, str) or not 8 <= len(secret) <= 200:
                    raise ValidationFailed(
                        f"{platform}.secret", "the robot's signing secret (加签 / 签名校验)"
                    )
                robot["secret"] = secret
            elif secret is not None:
                raise ValidationFailed(f"{platform}.secret", "WeCom robots have no secret")
            robots[platform] = robot
        language = body.get("language") or "zh-CN"
        with self.db.transaction() as session:
            row = session.get(AlertHooks, principal.tenant)
            if not robots:
                if row is not None:
                    session.delete(row)
            else:
                if row is None:
                    row = AlertHooks(tenant=principal.tenant)
                    session.add(row)
                row.sealed = self.sealer.seal(principal.tenant, robots)
                row.platforms = sorted(robots)
                row.language = language
                row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get(principal)

    def _robots(self, session: Session, tenant: str) -> tuple[dict[str, dict[str, str]], str]:
        row = session.get(AlertHooks, tenant)
        if row is None:
            return {}, "zh-CN"
        return self.sealer.open(tenant, row.sealed), row.language

    def get(self, principal: Principal) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        with self.db.sessions() as session:
            robots, language = self._robots(session, principal.tenant)
            row = session.get(AlertHooks, principal.tenant)
        out: dict[str, Any] = {
            p: {"url": mask(r["url"]), "signed": bool(r.get("secret"))} for p, r in robots.items()
        }
        out["language"] = language
        out["updated_at"] = iso(row.updated_at) if row else None
        return out

    def test(self, principal: Principal) -> dict[str, Any]:
        """Post a test message to each robot now; answers what each platform said."""
        principal.require(*WRITE_ROLES)
        with self.db.sessions() as session:
            robots, language = self._robots(session, principal.tenant)
        if not robots:
            raise ValidationFailed("alerts", "no chat robot is set (PUT /v1/alerts)")
        alert = rules.Alert(
            rules.TEST, "", "", self.console_url + "/console" if self.console_url else ""
        )
        title, text = rules.render([alert], language)
        results = {}
        now = self.clock()
        for platform, robot in robots.items():
            with self.db.sessions() as session:
                may = self._may_post(session, principal.tenant, platform, now)
            if not may:  # at the platform's limit (or throttled): not posted now
                results[platform] = {"outcome": "waiting", "code": ""}
                continue
            answer = self._post(principal.tenant, platform, robot, title, text, [])
            results[platform] = {"outcome": answer.outcome, "code": answer.code}
        return results

    # ---- raising and posting alerts ------------------------------------------------------

    def raise_alert(
        self,
        session: Session,
        tenant: str,
        kind: str,
        agreement_id: str,
        detail: str | Callable[[str], str] = "",
    ) -> None:
        """Queue an alert, in the caller's transaction, for every robot the tenant set;
        `detail` may be written in the tenant's alert language (a function of it)."""
        hooks = session.get(AlertHooks, tenant)
        if hooks is None or not hooks.platforms:
            return
        if callable(detail):
            detail = detail(hooks.language)
        followed = session.get(FollowedAgreement, agreement_id)
        session.add(
            HrAlert(
                tenant=tenant,
                kind=kind,
                agreement_id=agreement_id,
                candidate_ref=followed.candidate_ref if followed else "",
                position=followed.position if followed else "",
                detail=detail[:300],
                created_at=utcnow(),
                pending=list(hooks.platforms),
                state="pending",
            )
        )

    def _link(self, agreement_id: str) -> str:
        return f"{self.console_url}/console/agreements/{agreement_id}" if self.console_url else ""

    def _post(
        self,
        tenant: str,
        platform: str,
        robot: dict[str, str],
        title: str,
        text: str,
        alert_ids: list[int],
    ) -> ChatAnswer:
        answer = self.robot(platform, robot["url"], robot.get("secret", "")).post(title, text)
        with self.db.transaction() as session:
            session.add(
                AlertPost(
                    tenant=tenant,
                    platform=platform,
                    at=self.clock(),
                    outcome=answer.outcome,
                    code=answer.code[:32],
                    alerts=alert_ids,
                    answer=answer.raw,
                )
            )
        return answer

    def _may_post(self, session: Session, tenant: str, platform: str, now: dt.datetime) -> bool:
        since = now - dt.timedelta(seconds=max(rules.THROTTLED_PAUSE.values()))
        posts = session.execute(
            select(AlertPost.at, AlertPost.outcome).where(
                AlertPost.tenant == tenant, AlertPost.platform == platform, AlertPost.at > since
            )
        ).all()
        times = [_aware(at) for at, _ in posts]
        for at, outcome in posts:
            pause = rules.THROTTLED_PAUSE[platform] if outcome == "throttled" else 0.0
            if outcome == "unavailable":
                pause = 30.0
            if _aware(at) + dt.timedelta(seconds=pause) > now:
                return False
        return rules.next_post_at(platform, times, now) <= now

    def send_due(self) -> int:
        """Post what is waiting: per tenant and robot one message; returns how many alerts
        reached a robot."""
        now = self.clock()
        with self.db.sessions() as session:
            waiting = list(
                session.execute(
                    select(HrAlert)
                    .where(HrAlert.state == "pending")
                    .order_by(HrAlert.id)
                    .limit(500)
                ).scalars()
            )
        by_tenant: dict[str, list[HrAlert]] = {}
        for alert in waiting:
            by_tenant.setdefault(alert.tenant, []).append(alert)
        reached = 0
        for tenant, alerts in by_tenant.items():
            with self.db.sessions() as session:
                try:
                    robots, language = self._robots(session, tenant)
                except ValueError as exc:
                    log.warning("alerts of a tenant cannot be posted: %s", exc)
                    continue
                allowed = {p for p in robots if self._may_post(session, tenant, p, now)}
            done: dict[int, set[str]] = {}
            for platform in rules.PLATFORMS:
                mine = [a for a in alerts if platform in a.pending]
                if not mine:
                    continue
                if platform not in robots:  # the robot was removed: nothing to wait for
                    for a in mine:
                        done.setdefault(a.id, set()).add(platform)
                    continue
                if platform not in allowed:
                    continue
                title, text = rules.render(
                    [
                        rules.Alert(
                            a.kind,
                            a.candidate_ref,
                            a.position,
                            self._link(a.agreement_id),
                            a.detail,
                        )
                        for a in mine
                    ],
                    language,
                )
                answer = self._post(
                    tenant, platform, robots[platform], title, text, [a.id for a in mine]
                )
                if answer.outcome in ("accepted", "refused"):  # refused: recorded, not retried
                    for a in mine:
                        done.setdefault(a.id, set()).add(platform)
                    if answer.outcome == "accepted":
                        reached += len(mine)
                else:
                    log.info(
                        "alert robot %s of a tenant: %s %s", platform, answer.outcome, answer.code
                    )
            if done:
                with self.db.transaction() as session:
                    for alert_id, platforms in done.items():
                        row = session.get(HrAlert, alert_id)
                        if row is None:
                            continue
                        row.pending = [p for p in row.pending if p not in platforms]
                        if not row.pending:
                            row.state = "done"
        return reached


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
