"""HR alerts in the team's chat against a local DingTalk/WeCom/Feishu stand-in that checks each
platform's documented signature: robots set (sealed, masked), a test message, alerts raised by
the agreements' events and merged into one message per robot, a throttled robot left alone and
then sent what waited, and the platforms' rate limits kept by merging."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from offerseal.notify.domain import alerts as rules
from offerseal.notify.models import AlertHooks, AlertPost, FollowedAgreement, HrAlert
from offerseal.notify.service import NotifyService
from offerseal.shared import messages
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database
from offerseal.shared.errors import Forbidden, ValidationFailed
from offerseal.shared.links import LinkSigner
from tests.chat_robots import DING_SECRET, FEISHU_SECRET, TOKEN, WECOM_KEY, Robots, serve
from tests.conftest import make_settings, start_stack

HR = Principal("key-hr", "hr", "acme")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def robots() -> Iterator[Robots]:
    with serve() as stub:
        yield stub


def setup(sqlite_url: str, robots: Robots) -> tuple[Database, NotifyService, Clock]:
    db = Database(sqlite_url)
    db.migrate()
    service = NotifyService(
        db,
        LinkSigner(b"k" * 32),
        {},
        public_url="http://127.0.0.1:1",
        evidence_url="http://127.0.0.1:1",
        checkin_interval=3600,
        quiet_hours="00:00-00:00",
        default_timezone="Asia/Shanghai",
        mail_domain="offerseal.local",
        console_url="https://offerseal.example",
        robot_hosts=(robots.netloc,),
    )
    clock = Clock()
    service.alerts.clock = clock
    with db.transaction() as session:
        for i in range(30):
            session.add(
                FollowedAgreement(
                    agreement_id=f"ag-{i}",
                    tenant="acme",
                    candidate_ref=f"cand-{i}",
                    language="zh-CN",
                    employer_name="示例科技",
                    position="高级工程师",
                    start_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
                    milestones=[],
                    state="committed",
                )
            )
    return db, service, clock


def set_all(service: NotifyService, robots: Robots, language: str = "zh-CN") -> dict[str, Any]:
    urls = robots.urls()
    return service.alerts.put(
        HR,
        {
            "dingtalk": {"url": urls["dingtalk"], "secret": DING_SECRET},
            "wecom": {"url": urls["wecom"]},
            "feishu": {"url": urls["feishu"], "secret": FEISHU_SECRET},
            "language": language,
        },
    )


def risk_red(db: Database, service: NotifyService, agreement: str) -> None:
    envelope = messages.build(
        messages.RISK_CHANGED,
        "acme",
        {
            "agreement_id": agreement,
            "candidate_ref": agreement.replace("ag", "cand"),
            "level": "red",
            "previous": "yellow",
            "reasons": ["non-compete applies"],
            "response": "backup plan",
            "score": 20,
        },
    )
    with db.transaction() as session:
        service.planning.on_risk_changed(session, messages.parse(envelope))


def test_robots_are_set_sealed_and_shown_masked(sqlite_url: str, robots: Robots) -> None:
    db, service, _ = setup(sqlite_url, robots)
    shown = set_all(service, robots)
    assert set(shown) >= {"dingtalk", "wecom", "feishu"}
    text = repr(shown)
    for secret in (DING_SECRET, FEISHU_SECRET, TOKEN, WECOM_KEY):
        assert secret not in text
    assert shown["dingtalk"]["signed"] and not shown["wecom"]["signed"]
    assert shown["dingtalk"]["url"].endswith("access_token=" + TOKEN[:4] + "…")
    with db.sessions() as session:
        row = session.get(AlertHooks, "acme")
        assert row is not None
        for secret in (DING_SECRET, FEISHU_SECRET, TOKEN, WECOM_KEY):
            assert secret not in row.sealed  # stored encrypted
    # another tenant sees nothing of it
    assert set(service.alerts.get(Principal("k2", "hr", "other"))) == {"language", "updated_at"}
    with pytest.raises(Forbidden):
        service.alerts.put(Principal("k3", "legal", "acme"), {})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"dingtalk": {"url": "https://evil.example/robot/send", "secret": "x" * 10}},
            "dingtalk.url",
        ),
        ({"wecom": {"url": "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}}, "wecom.url"),
        ({"feishu": {"url": "https://open.feishu.cn/open-apis/bot/v2/hook/x"}}, "feishu.secret"),
        (
            {"wecom": {"url": "https://qyapi.weixin.qq.com/x?key=k", "secret": "s" * 9}},
            "wecom.secret",
        ),
    ],
)
def test_a_robot_outside_the_platforms_or_without_its_secret_is_refused(
    sqlite_url: str, robots: Robots, body: dict[str, Any], field: str
) -> None:
    _, service, _ = setup(sqlite_url, robots)
    with pytest.raises(ValidationFailed) as refused:
        service.alerts.put(HR, body)
    assert field in repr(refused.value.extra) + str(refused.value)


def test_the_test_message_reaches_each_robot_signed(sqlite_url: str, robots: Robots) -> None:
    _, service, _ = setup(sqlite_url, robots)
    set_all(service, robots, language="en")
    results = service.alerts.test(HR)
    assert {p: r["outcome"] for p, r in results.items()} == {
        "dingtalk": "accepted",
        "wecom": "accepted",
        "feishu": "accepted",
    }
    assert robots.bad == {"dingtalk": 0, "wecom": 0, "feishu": 0}
    assert "Test message" in robots.texts("dingtalk")[0]


def test_a_robot_given_without_its_url_is_kept_and_its_secret_too_unless_replaced(
    sqlite_url: str, robots: Robots
) -> None:
    """Neither a URL nor a secret can be read back: a platform given without `url` keeps its
    stored robot (its secret too, unless a new one is given); one never set needs its URL."""
    _, service, _ = setup(sqlite_url, robots)
    with pytest.raises(ValidationFailed, match=r"dingtalk\.url"):
        service.alerts.put(HR, {"dingtalk": {"secret": DING_SECRET}})
    set_all(service, robots)
    shown = service.alerts.put(
        HR, {"dingtalk": {}, "wecom": {}, "feishu": {"secret": "another-feishu-secret"}}
    )
    assert set(shown) >= {"dingtalk", "wecom", "feishu"}
    results = service.alerts.test(HR)
    assert results["dingtalk"]["outcome"] == "accepted"  # its secret kept
    assert results["wecom"]["outcome"] == "accepted"
    assert results["feishu"]["outcome"] == "refused"  # the new secret is not the robot's
    assert robots.bad["dingtalk"] == 0


def test_a_wrong_secret_is_refused_by_the_platform_and_recorded(
    sqlite_url: str, robots: Robots
) -> None:
    db, service, _ = setup(sqlite_url, robots)
    urls = robots.urls()
    service.alerts.put(HR, {"dingtalk": {"url": urls["dingtalk"], "secret": "SECwrong-secret"}})
    assert service.alerts.test(HR)["dingtalk"] == {"outcome": "refused", "code": "310000"}
    assert robots.bad["dingtalk"] == 1
    with db.sessions() as session:
        post = session.execute(select(AlertPost)).scalars().one()
    assert post.outcome == "refused" and post.answer["errmsg"] == "sign not match"


def test_alerts_are_merged_into_one_message_per_robot_in_the_tenant_s_language(
    sqlite_url: str, robots: Robots
) -> None:
    db, service, _ = setup(sqlite_url, robots)
    set_all(service, robots)
    for i in range(3):
        risk_red(db, service, f"ag-{i}")
    assert service.alerts.send_due() == 9  # three alerts, three robots
    for platform in rules.PLATFORMS:
        [text] = robots.texts(platform)
        assert "风险转为红色" in text and "启动备选方案" in text and "高级工程师" in text
        assert all(f"cand-{i}" in text for i in range(3))
        assert "https://offerseal.example/console/agreements/ag-0" in text
    assert robots.bad == {"dingtalk": 0, "wecom": 0, "feishu": 0}
    with db.sessions() as session:
        assert {a.state for a in session.execute(select(HrAlert)).scalars()} == {"done"}
    assert service.alerts.send_due() == 0  # nothing twice


def test_a_throttled_robot_is_left_alone_then_gets_what_waited(
    sqlite_url: str, robots: Robots
) -> None:
    db, service, clock = setup(sqlite_url, robots)
    set_all(service, robots)
    robots.script["dingtalk"].append("throttled")
    risk_red(db, service, "ag-1")
    service.alerts.send_due()
    assert robots.texts("dingtalk") == [] and len(robots.texts("wecom")) == 1
    risk_red(db, service, "ag-2")
    clock.now += dt.timedelta(minutes=5)  # DingTalk throttles for 10 minutes: still waiting
    service.alerts.send_due()
    assert robots.texts("dingtalk") == []
    clock.now += dt.timedelta(minutes=6)
    service.alerts.send_due()
    [merged] = robots.texts("dingtalk")
    assert "cand-1" in merged and "cand-2" in merged
    with db.sessions() as session:
        assert {a.state for a in session.execute(select(HrAlert)).scalars()} == {"done"}


def test_bursts_stay_within_the_platforms_limits_by_merging(
    sqlite_url: str, robots: Robots
) -> None:
    """25 alerts a second apart: DingTalk and WeCom get at most 20 posts in the minute, Feishu
    at most 5 a second; every alert still arrives once the minute has passed."""
    db, service, clock = setup(sqlite_url, robots)
    set_all(service, robots)
    start = clock.now
    for i in range(25):
        clock.now = start + dt.timedelta(seconds=i * 2)
        risk_red(db, service, f"ag-{i}")
        service.alerts.send_due()
    assert len(robots.texts("dingtalk")) == 20 and len(robots.texts("wecom")) == 20
    assert len(robots.texts("feishu")) == 25
    clock.now = start + dt.timedelta(seconds=61)
    service.alerts.send_due()
    for platform in rules.PLATFORMS:
        text = "\n".join(robots.texts(platform))
        assert all(f"cand-{i}\n" in text or f"cand-{i}" in text for i in range(25))
    assert len(robots.texts("dingtalk")) == 21  # the five that waited, merged into one
    assert "5 条提醒" in robots.texts("dingtalk")[-1]


def test_test_messages_respect_the_limits_too(sqlite_url: str, robots: Robots) -> None:
    _, service, _ = setup(sqlite_url, robots)
    urls = robots.urls()
    service.alerts.put(HR, {"feishu": {"url": urls["feishu"], "secret": FEISHU_SECRET}})
    outcomes = [service.alerts.test(HR)["feishu"]["outcome"] for _ in range(6)]
    assert outcomes == ["accepted"] * 5 + ["waiting"]  # Feishu: 5 a second
    assert len(robots.texts("feishu")) == 5


# ---- through the real broker: contracts decides, notify posts -----------------------------


def _wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.mark.chain
def test_a_breach_coming_due_and_a_disputed_arrival_reach_the_robots_through_rabbitmq(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, amqp_url: str, robots: Robots
) -> None:
    """Contracts' sweeper and its dispute publish `agreement.breach_due` and
    `agreement.arrival_disputed` over RabbitMQ; notify's consumer raises the alerts and its
    worker posts them, signed, in the tenant's language, with the candidate, the position,
    what to do and the console's timeline."""
    from tests.integration.test_contracts_service import (
        CANDIDATE_KEY,
        body,
        contracts,
        create,
        sign_through_link,
        travel,
    )
    from tests.signing import ethers_sign

    running = start_stack(
        make_settings(
            tmp_path,
            sqlite_url,
            fresh_anvil.url,
            broker_url=amqp_url,
            chat_robot_hosts=(robots.netloc,),
            breach_alert_lead=4 * 86400,  # start plus three days of grace, less four
            dispatch_interval=0.2,
        )
    )
    try:
        urls = robots.urls()
        r = requests.put(
            running.stack.urls["notify"] + "/v1/alerts",
            headers=running.hr,
            json={
                "dingtalk": {"url": urls["dingtalk"], "secret": DING_SECRET},
                "feishu": {"url": urls["feishu"], "secret": FEISHU_SECRET},
                "language": "en",
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
        # notify's HTTP API for a tenant's own SMS account: refused by field, secret never shown
        sms_url = running.stack.urls["notify"] + "/v1/sms"
        account = {
            "provider": "aliyun",
            "access_key_id": "LTAI5tExampleKey",
            "access_key_secret": "an-own-secret-0123456789abcdef",
        }
        r = requests.put(
            sms_url,
            headers=running.hr,
            json={"account": {**account, "endpoint": "http://169.254.169.254"}},
            timeout=30,
        )
        assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json"
        assert "account.endpoint" in r.text and account["access_key_secret"] not in r.text
        r = requests.put(sms_url, headers=running.hr, json={"account": account}, timeout=30)
        assert r.status_code == 200 and r.json()["account"]["access_key_secret"] == "set"
        assert account["access_key_secret"] not in r.text
        assert (
            account["access_key_secret"]
            not in requests.get(sms_url, headers=running.hr, timeout=30).text
        )
        absent = create(running, candidate_ref="cand-absent", position="Firmware Lead")
        disputed = create(running, candidate_ref="cand-disputed")
        for a in (absent, disputed):
            assert sign_through_link(running, a["id"]).status_code == 200
        assert body()["position"] == "Senior Firmware Engineer"
        travel(running, 40 * 86400)  # the start date has come; nobody arrived yet

        def posted(platform: str, *needles: str) -> list[str]:
            return [t for t in robots.texts(platform) if all(n in t for n in needles)]

        due = _wait_for(lambda: posted("dingtalk", "Breach coming due", "cand-absent"))
        assert "Firmware Lead" in due[0] and "agree with legal" in due[0]
        assert f"/console/agreements/{absent['id']}" in due[0]
        assert "Declarable from" in due[0] and "9,000.00 CNY" in due[0]
        assert _wait_for(lambda: posted("feishu", "Breach coming due", "cand-absent"))

        typed = requests.get(
            contracts(running, f"/v1/agreements/{disputed['id']}/arrival/typed-data"),
            headers=running.hr,
            timeout=30,
        ).json()
        r = requests.post(
            contracts(running, f"/v1/agreements/{disputed['id']}/arrival"),
            headers=running.hr,
            json={
                "signature": ethers_sign(CANDIDATE_KEY, typed),
                "deadline": typed["message"]["deadline"],
            },
            timeout=60,
        )
        assert r.status_code == 200, r.text
        r = requests.post(
            contracts(running, f"/v1/agreements/{disputed['id']}/arrival/dispute"),
            headers=running.hr,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        text = _wait_for(lambda: posted("dingtalk", "Arrival disputed", "cand-disputed"))[0]
        assert "Check whether the candidate started" in text
        assert f"/console/agreements/{disputed['id']}" in text
        assert _wait_for(lambda: posted("feishu", "Arrival disputed", "cand-disputed"))
        # the disputed candidate's breach date was announced once, before the arrival
        assert len(posted("dingtalk", "Breach coming due", "cand-disputed")) <= 1
        assert robots.bad == {"dingtalk": 0, "wecom": 0, "feishu": 0}  # every post signed

        def recorded() -> bool:
            # the robot has the post before the dispatcher records it done: wait for the row
            with running.db.sessions() as session:
                rows = session.execute(select(HrAlert.kind, HrAlert.state)).all()
            return ("arrival_disputed", "done") in rows and ("breach_due", "done") in rows

        assert _wait_for(recorded)
    finally:
        running.stack.stop()
