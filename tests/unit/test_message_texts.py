"""What a candidate reads: every kind in both languages has a subject, a plain text with the
facts (employer, position, what is asked, by when) and one labelled link per purpose, an HTML
part with one button per purpose in the tenant's colours, and an SMS text of one segment (70
characters in UCS-2, its short link included)."""

from __future__ import annotations

import re

import pytest

from offerseal.notify.domain import schedule
from offerseal.notify.domain.overrides import FIELDS, LANGUAGES, Override
from offerseal.notify.domain.templates import (
    SMS_MAX,
    Brand,
    compose,
    format_moment,
    utf16_length,
)
from offerseal.notify.layout import contrast, ink_on, render

ORIGINS = [
    "http://127.0.0.1:8100",  # the default people's origin
    "https://offer.example.cn",  # a short production origin
    "https://people.acme-robotics.example.com",  # a long one (40 characters)
]
EMPLOYERS = ["Acme", "Acme Robotics", "北京某某智能机器人科技有限公司上海分公司研发中心", "X" * 100]


def short(origin: str, n: int = 0) -> str:
    return f"{origin}/l/Ab3x9QzK12L{n}"


def links_for(kind: str, origin: str) -> dict[str, str]:
    links: dict[str, str] = {}
    if kind in (schedule.INVITATION, schedule.AMENDMENT):
        links["sign"] = short(origin, 1)
    if kind == schedule.CHECKIN:
        links["reply"] = short(origin, 2)
        for n, answer in enumerate(("on_track", "delayed", "need_help", "withdrawing")):
            links[f"reply_{answer}"] = short(origin, 3 + n)
    if kind == schedule.MILESTONE_REQUEST:
        links["upload"] = short(origin, 7)
    if kind in (schedule.WEEKLY_UPDATE, schedule.WELCOME_PACKAGE):
        links["unsubscribe"] = short(origin, 8)
    return links


def data_for(kind: str, employer: str, language: str) -> dict[str, str]:
    due = "2026-12-05T10:00:00+00:00"
    return {
        "employer": employer,
        "position": "Senior Firmware Engineer",
        "milestone": "resignation_accepted",
        "due_at": format_moment(due, "Asia/Shanghai", language),
        "due_short": format_moment(due, "Asia/Shanghai", language, short=True),
        "start_at": format_moment("2027-01-11", "Asia/Shanghai", language),
        "start_short": format_moment("2027-01-11", "Asia/Shanghai", language, short=True),
        "state": "employer_breached",
        "reason": "a longer handover",
        "stage": "committed",
    }


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("employer", EMPLOYERS)
@pytest.mark.parametrize("kind", list(FIELDS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_fits_one_segment_with_its_short_link(
    kind: str, language: str, employer: str, origin: str
) -> None:
    content = compose(kind, language, data_for(kind, employer, language), links_for(kind, origin))
    assert 0 < utf16_length(content.sms) <= SMS_MAX, content.sms
    if kind in (schedule.INVITATION, schedule.AMENDMENT, schedule.MILESTONE_REQUEST):
        assert content.sms.endswith(content.actions[0].url)
    if kind == schedule.CHECKIN:  # the reply page: four answers, one link
        assert content.sms.endswith(short(origin, 2))
    assert "token" not in content.sms


def test_the_sms_names_the_employer_and_the_deadline_when_they_fit() -> None:
    zh = compose(
        schedule.INVITATION,
        "zh-CN",
        data_for(schedule.INVITATION, "Acme", "zh-CN"),
        links_for(schedule.INVITATION, ORIGINS[1]),
    )
    assert zh.sms == f"【Acme】请在12月5日前阅读并签署入职意向书：{short(ORIGINS[1], 1)}"
    long_name = compose(
        schedule.INVITATION,
        "zh-CN",
        data_for(schedule.INVITATION, "X" * 100, "zh-CN"),
        links_for(schedule.INVITATION, ORIGINS[0]),
    )
    assert long_name.sms.startswith("【XXXXXXXX")  # the name shortened, the link kept whole
    assert "…】" in long_name.sms and long_name.sms.endswith(short(ORIGINS[0], 1))


@pytest.mark.parametrize("kind", list(FIELDS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plain_text_reads_well_on_its_own(kind: str, language: str) -> None:
    data = data_for(kind, "Acme Robotics", language)
    links = links_for(kind, ORIGINS[0])
    rendered = render(kind, language, data, links)
    assert "Acme Robotics" in rendered.text
    purpose_links = [v for k, v in links.items() if k not in ("reply", "unsubscribe")]
    for url in purpose_links:  # each on a line of its own, after its label
        assert re.search(rf"^\S.*[:：] ?{re.escape(url)}$", rendered.text, re.MULTILINE), url
    if purpose_links:  # something is asked: the facts say what, and by when
        assert data["due_at"] in rendered.text or kind == schedule.AMENDMENT
        assert ("What we ask" if language == "en" else "需要您") in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_check_in_has_four_buttons_and_an_invitation_one(language: str) -> None:
    checkin = render(
        schedule.CHECKIN,
        language,
        data_for(schedule.CHECKIN, "Acme", language),
        links_for(schedule.CHECKIN, ORIGINS[0]),
    )
    assert checkin.html.count('class="button-link"') == 4
    invitation = render(
        schedule.INVITATION,
        language,
        data_for(schedule.INVITATION, "Acme", language),
        links_for(schedule.INVITATION, ORIGINS[0]),
    )
    assert invitation.html.count('class="button-link"') == 1
    assert f'lang="{language}"' in invitation.html


def test_the_stylesheet_is_inlined_and_the_brand_applied() -> None:
    brand = Brand("Acme Robotics", "https://acme.example/logo.png", "#00703c", "hr@acme.example")
    rendered = render(
        schedule.INVITATION,
        "en",
        data_for(schedule.INVITATION, "Acme Robotics Co., Ltd.", "en"),
        links_for(schedule.INVITATION, ORIGINS[0]),
        brand=brand,
    )
    assert 'src="https://acme.example/logo.png"' in rendered.html
    assert "background-color: #00703c" in rendered.html
    assert re.search(r'<h1 class="heading" style="[^"]*font-size: 24px', rendered.html)
    assert "@media" in rendered.html  # the phone rules stay in <style>
    assert "Acme Robotics" in rendered.text and "Reply to this e-mail" in rendered.text


def test_a_tenant_template_keeps_the_layout_and_its_own_words() -> None:
    override = Override("{employer}: sign please", "Dear candidate,\n\nSign here: {sign_link}")
    links = links_for(schedule.INVITATION, ORIGINS[0])
    rendered = render(
        schedule.INVITATION,
        "en",
        data_for(schedule.INVITATION, "Acme <b>", "en"),
        links,
        override,
        Brand(accent_colour="#d4351c"),
    )
    assert rendered.subject == "Acme <b>: sign please"
    assert rendered.text == f"Dear candidate,\n\nSign here: {links['sign']}\n"
    assert "Dear candidate," in rendered.html and "Acme &lt;b&gt;" in rendered.html
    assert "Sign here" not in rendered.html  # the link line became the layout's button
    assert rendered.html.count('class="button-link"') == 1
    assert "background-color: #d4351c" in rendered.html


def test_button_text_stays_readable_on_any_accent() -> None:
    for accent in ("#1d70b8", "#00703c", "#ffdd00", "#f3f2f1", "#0b0c0c", "#d4351c"):
        assert contrast(accent, ink_on(accent)) >= 4.4, accent


def test_dates_read_as_people_write_them() -> None:
    moment = "2026-12-05T10:00:00+00:00"
    assert format_moment(moment, "Asia/Shanghai", "zh-CN") == "2026年12月5日 18:00"
    assert format_moment(moment, "Asia/Shanghai", "en") == "5 Dec 2026, 18:00"
    assert format_moment("2027-01-11", "Asia/Shanghai", "en", short=True) == "11 Jan"
    assert format_moment("2027-01-11", "Europe/Berlin", "zh-CN") == "2027年1月11日"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"display_name": "Acme\nBcc: x"}, "display_name"),
        ({"display_name": '<img src="x">'}, "display_name"),
        ({"logo_url": "http://acme.example/logo.png"}, "logo_url"),
        ({"logo_url": "javascript:alert(1)"}, "logo_url"),
        ({"accent_colour": "green"}, "accent_colour"),
        ({"accent_colour": "#777777"}, "accent_colour"),  # no text reads on it
        ({"reply_to": "hr at acme"}, "reply_to"),
        ({"reply_to": "hr@acme.example\u0000"}, "reply_to"),
    ],
)
def test_branding_is_refused_naming_the_field(changes: dict[str, str], field: str) -> None:
    from offerseal.notify.tenant_templates import check_branding
    from offerseal.shared.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        check_branding(changes)
    assert str(info.value).startswith(f"{field}: ")


def test_good_branding_passes() -> None:
    from offerseal.notify.tenant_templates import check_branding

    check_branding(
        {
            "display_name": "Acme Robotics 北京",
            "logo_url": "https://acme.example/logo.png",
            "accent_colour": "#00703C",
            "reply_to": "hr@acme.example",
        }
    )
