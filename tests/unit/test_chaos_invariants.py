"""Which doubled e-mails the chaos checker lets pass: only SMTP's own window (the server took
the message within a second before a SIGKILL, the restarted dispatcher sent it again), one per
SIGKILL. Anything else counts as a duplicate."""

from __future__ import annotations

from email.message import Message

from bench.invariants import smtp_window_resends


def _mail(message_id: str, received: float) -> Message:
    message = Message()
    message["Message-ID"] = message_id
    message["X-Chaos-Received"] = f"{received:.3f}"
    return message


KILL = [("kill9", 100.0, 101.5)]  # killed at 100.0, started again at 101.5


def test_a_copy_taken_just_before_a_sigkill_and_sent_again_after_it_is_the_smtp_window() -> None:
    mail = [_mail("<a@x>", 99.99), _mail("<a@x>", 150.0)]
    assert smtp_window_resends(mail, ["<a@x>"], KILL) == {"<a@x>"}


def test_a_double_far_from_any_sigkill_is_a_duplicate() -> None:
    mail = [_mail("<b@x>", 50.0), _mail("<b@x>", 60.0)]
    assert smtp_window_resends(mail, ["<b@x>"], [*KILL, ("anvil", 55.0, 58.0)]) == set()


def test_one_message_per_sigkill_and_never_three_copies() -> None:
    mail = [_mail("<a@x>", 99.9), _mail("<a@x>", 150.0), _mail("<c@x>", 99.95)]
    mail += [_mail("<c@x>", 160.0), _mail("<d@x>", 99.8), _mail("<d@x>", 120.0)]
    mail += [_mail("<d@x>", 130.0)]
    explained = smtp_window_resends(mail, ["<a@x>", "<c@x>", "<d@x>"], KILL)
    assert explained == {"<a@x>"}  # <c@x> would need a second SIGKILL; <d@x> came three times
