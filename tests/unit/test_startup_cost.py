"""A process restarted after a crash serves again as soon as it can: importing the services
does no expensive work (make chaos measured a SIGKILL's recovery as the restart's time)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_stack_computes_no_password_hash() -> None:
    # argon2id with the library's defaults costs 64 MiB and about half a second of CPU, paid
    # by every process start while only the console's sign-in needs the dummy hash.
    probe = (
        "import argon2\n"
        "def refuse(*a, **k):\n"
        "    raise SystemExit('an argon2 hash was computed at import')\n"
        "argon2.PasswordHasher.hash = refuse\n"
        "import offerseal.shared.users, offerseal.stack, offerseal.evidence.app\n"
        "import offerseal.contracts.app, offerseal.notify.app, offerseal.web.app\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_dummy_hash_is_made_once_and_verifies_nothing() -> None:
    from offerseal.shared import users

    first = users._dummy_hash()
    assert first is users._dummy_hash() and first.startswith("$argon2id$")


# Imported at `offerseal serve` only when first used: the DKIM check of an uploaded e-mail and
# signing of outgoing mail (dkim, with dnspython), phone numbers (phonenumbers' metadata), the
# standalone verifier (its options are in a light module), PDFs (reportlab, pyHanko), the fuzzer.
NOT_AT_START = (
    "dkim",
    "dns.resolver",
    "phonenumbers",
    "offerseal_verify.cli",
    "reportlab",
    "pyhanko",
    "schemathesis",
    "hypothesis",
)


def test_serve_imports_no_heavy_module_it_does_not_need_yet() -> None:
    # What `offerseal serve evidence contracts notify` imports before it serves: the command's
    # parser and every module its stack starts with (`stack.preload`, which the pre-fork arbiter
    # runs before forking). Importing makes nothing: no thread is started.
    probe = (
        "import sys, threading\n"
        "from offerseal.cli import build_parser\n"
        "from offerseal.stack import SERVICES, preload\n"
        "build_parser().parse_args(['serve', 'evidence', 'contracts', 'notify'])\n"
        "preload(SERVICES)\n"
        f"heavy = [m for m in {NOT_AT_START!r} if m in sys.modules]\n"
        "assert not heavy, f'imported at start: {heavy}'\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert 'offerseal.contracts.app' in sys.modules and 'web3' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
