"""The candidate's portal, measured: gas of a commitment signed with a passkey (WebAuthn over
P-256, verified by the contract through the precompile) against the same commitment signed with
an Ethereum key (ECDSA); the signing round trip through the API (from the assertion leaving the
"browser" to Committed on chain, p50/p95) on Anvil; and the portal's first-load bytes.

Run alone: `.venv/bin/python -m bench.portal_bench` (writes its section of bench/RESULTS.md);
`make bench` runs it too."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

from bench.figures import machine, pct
from offerseal.contracts.domain.agreements import Terms, commitment_typed_data
from offerseal.contracts.domain.passkeys import b64url, encode_signature
from offerseal.demo.passkey import SoftwarePasskey
from offerseal.shared import chain
from offerseal.shared.chain import typed_data_digest
from offerseal.shared.config import ANVIL_DEV_KEY

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- portal:start -->", "<!-- portal:end -->"
ZERO = "0x" + "00" * 20
BENCH_CEREMONY = "0x" + "ce" * 32  # a signing ceremony's hash (any non-zero value)


def commitment_gas(rpc_url: str, count: int = 10) -> dict[str, Any]:
    """commit() gas, same terms and milestones: a passkey's assertion against an ECDSA key's."""
    w3 = chain.connect(rpc_url)
    employer = chain.account(ANVIL_DEV_KEY)
    wallet_key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
    wallet = chain.account(wallet_key)
    registry = chain.deploy(w3, employer, "EvidenceRegistry", employer.address, employer.address)
    agreements = w3.eth.contract(
        address=chain.deploy(w3, employer, "IntentAgreements", registry),
        abi=chain.artifact("IntentAgreements")["abi"],
    )

    def send(fn: Any) -> int:
        tx = fn.build_transaction(
            {"from": employer.address, "nonce": w3.eth.get_transaction_count(employer.address)}
        )
        return int(chain.send_signed(w3, employer, dict(tx))["gasUsed"])

    gas: dict[str, list[int]] = {"ecdsa": [], "passkey": [], "bind": []}
    for i in range(count):
        for kind in ("ecdsa", "passkey"):
            passkey = SoftwarePasskey()
            candidate = wallet.address if kind == "ecdsa" else passkey.public_key.address
            now = int(w3.eth.get_block("latest")["timestamp"])
            terms = Terms(
                employer.address,
                candidate,
                "0x" + "ab" * 32,
                now + 30 * 86400,
                3 * 86400,
                now + 7 * 86400,
                2_500_000,
                750_000,
            )
            milestones = [(k, now + 20 * 86400, 0) for k in (1, 2, 3, 4)]
            salt = f"portal-bench-{kind}-{i}".encode().ljust(32, b"\0")
            agreement_id = agreements.functions.agreementIdOf(employer.address, salt).call()
            if kind == "passkey":  # offered without a candidate, bound at enrolment
                unbound = replace(terms, candidate=ZERO)
                send(agreements.functions.offer(salt, unbound.as_tuple(), milestones))
                gas["bind"].append(
                    send(agreements.functions.bindCandidate(agreement_id, candidate))
                )
            else:
                send(agreements.functions.offer(salt, terms.as_tuple(), milestones))
            typed = commitment_typed_data(
                chain_id=int(w3.eth.chain_id),
                registry=agreements.address,
                agreement_id="0x" + agreement_id.hex(),
                terms=terms,
                milestones=[(k, due) for k, due, _ in milestones],
                nonce=agreements.functions.nonces(candidate).call(),
                ceremony_hash=BENCH_CEREMONY,
            )
            digest = typed_data_digest(typed)
            if kind == "ecdsa":
                signature = chain.sign_typed_data(wallet_key, typed)
            else:
                a = passkey.sign(digest)
                signature = encode_signature(
                    passkey.public_key, a.authenticator_data, a.client_data_json, a.signature
                )
            ceremony = bytes.fromhex(BENCH_CEREMONY[2:])
            gas[kind].append(send(agreements.functions.commit(agreement_id, ceremony, signature)))
    mean = lambda xs: round(sum(xs) / len(xs))  # noqa: E731
    return {
        "agreements": count,
        "ecdsa_commit_gas": mean(gas["ecdsa"]),
        "passkey_commit_gas": mean(gas["passkey"]),
        "bind_candidate_gas": mean(gas["bind"]),
        "passkey_over_ecdsa": round(mean(gas["passkey"]) / mean(gas["ecdsa"]), 2),
    }


def round_trip(rpc_url: str, count: int = 20) -> dict[str, Any]:
    """Through a real stack (SQLite, in-process broker, the web origin's gateway): from the
    assertion POSTed to the 200 that says committed (the transaction mined on Anvil)."""
    from offerseal.shared.config import ANVIL_DEV_KEY_2, load_settings
    from offerseal.stack import Stack

    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    settings = load_settings(
        {},
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'bench.db'}",
        broker_url="memory://",
        rpc_url=rpc_url,
        signer_key=ANVIL_DEV_KEY,
        contracts_signer_key=ANVIL_DEV_KEY_2,
        evidence_port=0,
        contracts_port=0,
        notify_port=0,
        web_port=0,
        log_level="WARNING",
    )
    stack = Stack(settings).start()
    stack.wait_ready()
    try:
        from offerseal.shared.auth import create_key
        from offerseal.shared.models import OutboxMessage

        hr = {"Authorization": f"Bearer {create_key(stack.db, 'hr', 'bench')[1]}"}
        web = stack.urls["web"]
        seconds: list[float] = []
        for i in range(count):
            now = dt.datetime.now(dt.UTC)
            offered = requests.post(
                web + "/v1/agreements",
                headers={**hr, "Prefer": "wait=60"},
                timeout=60,
                json={
                    "candidate_ref": f"bench-{i}",
                    "candidate_contact": {"email": f"c{i}@example.com"},
                    "employer_name": "Bench",
                    "position": "Engineer",
                    "currency": "CNY",
                    "monthly_salary": 3_000_000,
                    "liquidated_damages": 900_000,
                    "start_date": (now + dt.timedelta(days=30)).date().isoformat(),
                    "offer_expires_at": (now + dt.timedelta(days=5)).isoformat(),
                },
            ).json()
            base = f"{web}/v1/agreements/{offered['id']}"
            token = offered["signing_link"].split("token=")[1]
            q = {"token": token}
            browser = requests.Session()  # the proof of the code lives in its cookie
            browser.post(base + "/enrolment/code", params=q, json={}, timeout=30)
            # The code the e-mail carries, from the message to notify (bench only).
            with stack.db.sessions() as session:
                code = next(
                    m.body["payload"]["code"]
                    for m in session.query(OutboxMessage).filter(
                        OutboxMessage.routing_key == "candidate.code_requested.v2"
                    )
                    if m.body["payload"]["agreement_id"] == offered["id"]
                )
            browser.post(base + "/enrolment/verify", params=q, json={"code": code}, timeout=30)
            passkey = SoftwarePasskey()
            browser.post(
                base + "/enrolment/signer",
                params=q,
                timeout=60,
                json={
                    "kind": "passkey",
                    "credential_id": b64url(passkey.credential_id),
                    "public_key": b64url(passkey.spki()),
                },
            ).raise_for_status()
            typed = requests.get(base + "/typed-data", params=q, timeout=30).json()
            assertion = passkey.sign(typed_data_digest(typed)).as_json(passkey.credential_id)
            started = time.perf_counter()
            signed = requests.post(
                base + "/signature", params=q, json={"passkey": assertion}, timeout=60
            )
            seconds.append(time.perf_counter() - started)
            assert signed.status_code == 200 and signed.json()["state"] == "committed", signed.text
        return {
            "signatures": count,
            "p50_ms": round(statistics.median(seconds) * 1000, 1),
            "p95_ms": round(pct(seconds, 95) * 1000, 1),
            "mining": "instant (Anvil's default: a block per transaction)",
        }
    finally:
        stack.stop()


def first_load() -> dict[str, Any]:
    """The bytes a phone fetches to open the portal: the page's HTML, the stylesheet and the
    script (no fonts, no CDN), raw and gzipped."""
    from offerseal.shared.config import load_settings
    from offerseal.shared.db import Database
    from offerseal.web.app import create_app

    tmp = Path(tempfile.mkdtemp(prefix="portal-bytes-"))
    settings = load_settings({}, data_dir=tmp, database_url=f"sqlite:///{tmp / 'x.db'}")
    app = create_app(settings, Database(settings.database_url))
    client = app.test_client()
    page = client.get(
        "/portal/00000000-0000-4000-8000-000000000000?token=x", headers={"Accept": "text/html"}
    ).data
    css = client.get("/static/site.css").data
    js = client.get("/static/dist/portal.js").data
    served = sum(
        len(client.get(path, headers={"Accept-Encoding": "gzip"}).data)
        for path in ("/static/site.css", "/static/dist/portal.js")
    ) + len(gzip.compress(page, 9))
    parts = {"html": page, "css": css, "js": js}
    return {
        **{f"{name}_bytes": len(body) for name, body in parts.items()},
        "total_bytes": sum(len(b) for b in parts.values()),
        "total_gzip_bytes": sum(len(gzip.compress(b, 9)) for b in parts.values()),
        "served_to_a_browser_bytes": served,  # the HTML is not compressed by the app itself
    }


def markdown(r: dict[str, Any]) -> str:
    g, t, b = r["gas"], r["round_trip"], r["first_load"]
    return "\n".join(
        [
            START,
            "## The candidate's portal (passkeys)",
            "",
            f"Measured {r['date']} on {r['machine']} (`python -m bench.portal_bench`).",
            "",
            "| what | passkey (WebAuthn, P-256) | ECDSA key | ratio |",
            "|---|---:|---:|---:|",
            f"| `commit()` gas, 4 milestones (mean of {g['agreements']}) | "
            f"{g['passkey_commit_gas']:,} | {g['ecdsa_commit_gas']:,} | "
            f"{g['passkey_over_ecdsa']}x |",
            f"| `bindCandidate()` gas (an offer made before the candidate enrolled) | "
            f"{g['bind_candidate_gas']:,} | - | - |",
            "",
            f"Signing round trip through the API on the people's origin, from the assertion "
            f"POSTed to the 200 that says committed (the relayed transaction mined), "
            f"{t['signatures']} signatures, {t['mining']}: p50 {t['p50_ms']} ms, "
            f"p95 {t['p95_ms']} ms.",
            "",
            f"First load of the portal: HTML {b['html_bytes']:,} + CSS {b['css_bytes']:,} + "
            f"script {b['js_bytes']:,} = {b['total_bytes']:,} bytes "
            f"({b['total_gzip_bytes']:,} gzipped: the script and the stylesheet are gzipped at "
            f"set-up and served so to browsers that take gzip), no font, no CDN.",
            END,
        ]
    )


def run(rpc_url: str) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "gas": commitment_gas(rpc_url),
        "round_trip": round_trip(rpc_url),
        "first_load": first_load(),
    }


def write_section(results: dict[str, Any]) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    section = markdown(results)
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    from offerseal.shared.anvil import AnvilProcess
    from offerseal.shared.net import free_port

    anvil = AnvilProcess(free_port())
    try:
        results = run(anvil.url)
    finally:
        anvil.stop()
    write_section(results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
