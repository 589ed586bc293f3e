"""The links notify puts in a message: each verifies for its own purpose only, and lasts as long
as the configured link lifetime (OFFERSEAL_LINK_TTL), not a lifetime of notify's own. Also the
agreement states after which notify stops planning (declared once, in shared/messages.py)."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from offerseal.notify.domain import schedule
from offerseal.notify.models import FollowedAgreement, NotifyCandidate, Touchpoint
from offerseal.notify.outgoing import Composer
from offerseal.notify.service import NotifyService
from offerseal.shared.config import Settings
from offerseal.shared.errors import Unauthorized
from offerseal.shared.links import (
    PURPOSE_REPLY,
    PURPOSE_UNSUBSCRIBE,
    PURPOSE_UPLOAD,
    LinkSigner,
)
from offerseal.shared.messages import AGREEMENT_STATES, FINAL_STATES

SIGNER = LinkSigner(b"k" * 32)
TTL = 3 * 86400.0


def compose(kind: str, essential: bool, data: dict[str, str]) -> dict[str, str]:
    composer = Composer(
        SIGNER,
        public_url="https://notify.test/",
        evidence_url="https://evidence.test",
        mail_domain="offerseal.test",
        link_ttl=TTL,
    )
    tp = Touchpoint(
        id="tp-1",
        tenant="acme",
        agreement_id="ag-1",
        candidate_ref="cand-1",
        kind=kind,
        occurrence=1,
        essential=essential,
        data=data,
    )
    candidate = NotifyCandidate(
        tenant="acme", candidate_ref="cand-1", email="c@example.com", language="en"
    )
    followed = FollowedAgreement(
        agreement_id="ag-1", language="en", employer_name="Acme", position="Engineer"
    )
    links: dict[str, str] = composer.outgoing(tp, candidate, followed, {}).payload["links"]
    return links


def token_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path.rsplit("/", 1)[1]


def test_reply_and_unsubscribe_links_last_the_configured_lifetime() -> None:
    before = time.time()
    links = compose(schedule.CHECKIN, essential=False, data={})
    reply = SIGNER.verify(token_of(links["reply_on_track"]), PURPOSE_REPLY)
    assert reply.subject == "tp-1"
    assert int(before + TTL) <= reply.expires_at <= int(time.time() + TTL)
    unsubscribe = SIGNER.verify(token_of(links["unsubscribe"]), PURPOSE_UNSUBSCRIBE)
    assert unsubscribe.expires_at == reply.expires_at
    with pytest.raises(Unauthorized):
        SIGNER.verify(token_of(links["unsubscribe"]), PURPOSE_REPLY)


def test_an_upload_link_is_for_the_evidence_service_and_its_milestone() -> None:
    before = time.time()
    links = compose(schedule.MILESTONE_REQUEST, essential=True, data={"milestone": "2"})
    assert links["upload"].startswith("https://evidence.test/v1/uploads/")
    upload = SIGNER.verify(token_of(links["upload"]), PURPOSE_UPLOAD)
    assert (upload.agreement_id, upload.candidate_ref, upload.subject) == ("ag-1", "cand-1", "2")
    assert int(before + TTL) <= upload.expires_at <= int(time.time() + TTL)
    assert "unsubscribe" not in links  # essential mail


def test_the_service_defaults_to_the_settings_link_lifetime() -> None:
    service = NotifyService(
        None,  # type: ignore[arg-type]  # no database needed to compose
        SIGNER,
        {},
        public_url="https://notify.test",
        evidence_url="https://evidence.test",
        checkin_interval=3600,
        quiet_hours="00:00-00:00",
        default_timezone="UTC",
        mail_domain="offerseal.test",
    )
    assert service.dispatcher.composer.link_ttl == Settings.link_ttl == 30 * 86400


def test_final_states_are_every_agreement_state_after_the_offer_but_committed() -> None:
    ends = {"fulfilled", "breached", "employer_breached", "cancelled", "expired"}
    assert ends == FINAL_STATES == set(AGREEMENT_STATES) - {"committed"}
