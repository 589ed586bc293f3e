"""The agreement dossier (issue 11 section 5) on a real stack: Anvil, evidence, contracts and
notify over HTTP, SQLite or PostgreSQL. A breached agreement with anchored evidence gives a ZIP
whose every file is listed in a manifest anchored on chain; the cover PDF is signed; legal and
admin may download it, HR and other tenants may not; asking again reuses the anchored manifest."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.evidence.adapters.registry import Web3ChainView
from offerseal.shared import chain, secrets
from offerseal_verify.proofs import verify_bundle
from tests.conftest import RunningStack, make_settings, start_stack, upload
from tests.integration.test_certificate import IN_CI, signature_status, text_of
from tests.integration.test_cli import offerseal
from tests.integration.test_contracts_service import create, sign_through_link

pytestmark = pytest.mark.chain
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dossier"


@pytest.fixture
def stack(tmp_path: Path, database_url: str, fresh_anvil: Any) -> Iterator[RunningStack]:
    running = start_stack(make_settings(tmp_path, database_url, fresh_anvil.url))
    yield running
    running.stack.stop()


def contracts(stack: RunningStack, path: str) -> str:
    return stack.stack.urls["contracts"] + path


def get(stack: RunningStack, agreement_id: str) -> dict[str, Any]:
    answer = requests.get(
        contracts(stack, f"/v1/agreements/{agreement_id}"), headers=stack.legal, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def until(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def dossier(
    stack: RunningStack, agreement_id: str, headers: dict[str, str], **params: Any
) -> requests.Response:
    """The dossier made by POST, asking again while its manifest is being anchored (202)."""
    url = contracts(stack, f"/v1/agreements/{agreement_id}/dossier")

    def ask() -> requests.Response | None:
        answer = requests.post(url, headers=headers, params=params, timeout=120)
        return None if answer.status_code == 202 else answer

    answer: requests.Response = until(ask, "the dossier's anchoring")
    return answer


@pytest.fixture
def breached(stack: RunningStack) -> dict[str, Any]:
    """An agreement signed by the candidate, with an anchored resignation letter confirmed on
    chain, breached by the sweeper after the start date and grace passed."""
    agreement = create(stack)
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    doc = upload(
        stack,
        "辞职申请 — stamped resignation application".encode(),
        kind="resignation_application",
        candidate_ref="cand-042",
        agreement_id=agreement["id"],
        milestone="resignation_submitted",
    ).json()
    until(lambda: get(stack, agreement["id"])["milestones"][0]["confirmed_at"], "confirmation")
    w3 = chain.connect(stack.rpc_url)
    w3.provider.make_request("evm_increaseTime", [44 * 86400])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    until(lambda: get(stack, agreement["id"])["state"] == "breached", "the breach")
    return {"agreement": agreement, "document": doc}


def test_the_dossier_of_a_breached_agreement_holds_everything_under_an_anchored_manifest(
    stack: RunningStack, breached: dict[str, Any]
) -> None:
    agreement_id = breached["agreement"]["id"]
    answer = dossier(stack, agreement_id, stack.legal, lang="en")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    assert agreement_id in answer.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = set(archive.namelist())
    manifest_bytes = archive.read("manifest.json")
    manifest = json.loads(manifest_bytes)
    assert manifest["format"] == "offerseal-dossier-1"
    assert manifest["agreement"]["id"] == agreement_id
    assert manifest["agreement"]["state"] == "breached"
    assert answer.headers["X-Manifest-SHA256"] == hashlib.sha256(manifest_bytes).hexdigest()

    # Every entry but the manifest, its proof and the signed cover is listed, with its hash.
    listed = {f["path"]: f for f in manifest["files"]}
    assert names - set(listed) == {"manifest.json", "manifest.proof.json", "cover.pdf"}
    assert set(listed) <= names
    for path, entry in listed.items():
        content = archive.read(path)
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], path
        assert len(content) == entry["bytes"], path
    for expected in (
        "README.txt",
        "agreement/agreement.json",
        "agreement/text.zh-CN.txt",
        "signatures/signing-record.json",
        "chain/events.json",
        "chain/state.json",
        "notices/touchpoints.json",
        "damages.json",
        "evidence/index.json",
        "verify.html",
        "verify.en.html",
    ):
        assert expected in listed, expected

    # The agreement text is the one whose hash is on chain.
    text = archive.read("agreement/text.zh-CN.txt")
    assert "0x" + hashlib.sha256(text).hexdigest() == breached["agreement"]["terms_hash"]
    # The chain's own account: offered, committed, the milestone, the breach.
    events = [e["event"] for e in json.loads(archive.read("chain/events.json"))]
    assert events[:2] == ["Offered", "Committed"]
    assert "MilestoneConfirmed" in events and events[-1] == "Breached"
    assert json.loads(archive.read("chain/state.json"))["state"] == "breached"
    damages = json.loads(archive.read("damages.json"))
    assert damages["cap"] == 900_000 and damages["liquidated_damages"] == 900_000
    assert damages["within_cap"] is True

    # The evidence: the resignation letter's bytes beside its proof bundle.
    doc = breached["document"]
    [letter] = [p for p, f in listed.items() if f.get("proof") and doc["id"] in p]
    assert archive.read(letter) == "辞职申请 — stamped resignation application".encode()
    view = Web3ChainView(chain.connect(stack.rpc_url))
    proof = json.loads(archive.read(listed[letter]["proof"]))
    assert verify_bundle(
        proof, document_sha256="0x" + listed[letter]["sha256"], trusted_keys=None, chain=view
    ).valid

    # The manifest itself is anchored: its proof verifies against the chain.
    manifest_proof = json.loads(archive.read("manifest.proof.json"))
    verdict = verify_bundle(
        manifest_proof,
        document_sha256="0x" + hashlib.sha256(manifest_bytes).hexdigest(),
        trusted_keys=None,
        chain=view,
    )
    assert verdict.valid, verdict.as_dict()
    assert manifest_proof["document"]["kind"] == "dossier_manifest"

    # The cover is a signed PDF that states the agreement, the cap and the manifest's hash.
    cover = archive.read("cover.pdf")
    _, cert_pem = secrets.certificate_signing_pem(stack.settings)
    cert_file = stack.settings.data_dir / "cover-signer.pem"
    cert_file.write_bytes(cert_pem)
    status = signature_status(cover, cert_file)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    words = "".join(text_of(cover).split())
    for item in (agreement_id, "Agreementdossier", "Cap(30%", answer.headers["X-Manifest-SHA256"]):
        assert item.replace(" ", "") in words, item

    # Asked again (by admin, then legal, in turn): the same manifest unless a fact changed
    # meanwhile (a message sent, a document anchored; on a busy machine more than one may land
    # between two asks), so ask until two answers in a row agree; each distinct manifest is
    # deposited once.
    answers = [answer]
    deadline = time.monotonic() + 120
    while len(answers) < 3 or (
        answers[-1].headers["X-Manifest-SHA256"] != answers[-2].headers["X-Manifest-SHA256"]
    ):
        assert time.monotonic() < deadline, "the dossier's facts kept changing"
        who = stack.admin if len(answers) % 2 else stack.legal
        answers.append(dossier(stack, agreement_id, who, lang="zh-CN"))
        assert answers[-1].status_code == 200
    again = answers[1]
    shas = {r.headers["X-Manifest-SHA256"] for r in answers}
    documents = requests.get(
        stack.url("/v1/documents"),
        headers=stack.legal,
        params={"candidate_ref": "cand-042"},
        timeout=30,
    ).json()["items"]
    manifests = [d for d in documents if d["kind"] == "dossier_manifest"]
    assert {m["sha256"].removeprefix("0x") for m in manifests} == shas
    assert len(manifests) == len(shas) < len(answers)
    zh_cover = zipfile.ZipFile(io.BytesIO(again.content)).read("cover.pdf")
    assert "入职意向协议证据包" in text_of(zh_cover)
    render_for_people({"zh-CN": zh_cover, "en": cover})


def render_for_people(covers: dict[str, bytes]) -> None:
    """The covers' first pages as PNG in test-artifacts/dossier/ (pdftoppm)."""
    for lang, pdf in covers.items():
        render_first_page(pdf, f"cover-{lang}")


def render_first_page(pdf: bytes, name: str) -> None:
    """`name`.pdf and its first page as `name`.png in test-artifacts/dossier/. Made under a
    name of this process's own and moved into place: the same test on another database runs
    at the same time on another worker."""
    if shutil.which("pdftoppm") is None:
        message = "pdftoppm is not installed (apt-get install poppler-utils)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: this test must run, not skip)")
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    work = ARTIFACTS / f".{name}-{os.getpid()}"
    work.with_suffix(".pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile",
         str(work.with_suffix(".pdf")), str(work)],
        check=True, timeout=60,
    )  # fmt: skip
    assert work.with_suffix(".png").stat().st_size > 10_000
    for suffix in (".pdf", ".png"):
        os.replace(work.with_suffix(suffix), ARTIFACTS / f"{name}{suffix}")


def test_only_legal_and_admin_of_the_tenant_get_the_dossier(
    stack: RunningStack, breached: dict[str, Any]
) -> None:
    url = contracts(stack, f"/v1/agreements/{breached['agreement']['id']}/dossier")
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers=stack.hr, timeout=30).status_code == 403
    from offerseal.shared.auth import create_key

    other_legal = {"Authorization": f"Bearer {create_key(stack.db, 'legal', 'globex')[1]}"}
    assert requests.get(url, headers=other_legal, timeout=30).status_code == 404
    bad = requests.get(url, headers=stack.legal, params={"lang": "fr"}, timeout=30)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "lang"


def test_the_command_line_downloads_the_dossier_through_the_peoples_origin(
    stack: RunningStack, breached: dict[str, Any], tmp_path: Path
) -> None:
    agreement_id = breached["agreement"]["id"]
    out = tmp_path / "dossier.zip"
    key = stack.legal["Authorization"].removeprefix("Bearer ")
    ran = offerseal(
        "dossier",
        agreement_id,
        "--api",
        stack.stack.urls["web"],  # the gateway: one origin for people and their tools
        "--out",
        str(out),
        env={"OFFERSEAL_API_KEY": key},
    )
    assert ran.returncode == 0, ran.stderr
    assert str(out) in ran.stdout and key not in ran.stdout + ran.stderr
    manifest = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert manifest["agreement"]["id"] == agreement_id
    refused = offerseal(
        "dossier",
        agreement_id,
        "--api",
        stack.stack.urls["web"],
        env={"OFFERSEAL_API_KEY": stack.hr["Authorization"].removeprefix("Bearer ")},
    )
    assert refused.returncode == 1 and "403" in refused.stderr
    missing = offerseal("dossier", agreement_id, env={"OFFERSEAL_API_KEY": ""})
    assert missing.returncode == 2 and "OFFERSEAL_API_KEY" in missing.stderr


def signed_in(stack: RunningStack, email: str, role: str) -> requests.Session:
    """A person of the tenant signed in to the console on the people's origin (a browser with
    its session cookie), as tests/integration/test_console.py signs people in."""
    from offerseal.shared import users
    from tests.integration.test_console import PASSWORD, csrf_of

    web = stack.stack.urls["web"]
    _, token = users.add_user(stack.db, email, role, "acme", by="test")
    browser = requests.Session()
    setup = browser.get(f"{web}/console/setup/{token}", timeout=30)
    done = browser.post(
        f"{web}/console/setup/{token}",
        data={"csrf_token": csrf_of(setup.text), "password": PASSWORD, "confirm": PASSWORD},
        timeout=30,
    )
    answer = browser.post(
        f"{web}/console/login",
        data={"csrf_token": csrf_of(done.text), "email": email, "password": PASSWORD},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.url.endswith("/console"), answer.text
    return browser


def manifests_of(stack: RunningStack) -> list[dict[str, Any]]:
    documents = requests.get(
        stack.url("/v1/documents"),
        headers=stack.legal,
        params={"candidate_ref": "cand-042"},
        timeout=30,
    ).json()["items"]
    return [d for d in documents if d["kind"] == "dossier_manifest"]


def test_a_get_never_makes_a_dossier_and_a_post_with_the_cookie_needs_its_csrf_token(
    stack: RunningStack,
) -> None:
    """A page on another site can make a signed-in person's browser GET any URL (a link, an
    image): that must not deposit and anchor a manifest. Making one is a POST, which with the
    console's cookie needs the session's CSRF token."""
    from tests.integration.test_console import csrf_of

    agreement = create(stack)
    assert sign_through_link(stack, agreement["id"]).status_code == 200
    legal = signed_in(stack, "counsel@acme.example", "legal")
    url = stack.stack.urls["web"] + f"/v1/agreements/{agreement['id']}/dossier"
    cross_site = {"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"}

    fetched = legal.get(url, headers=cross_site, params={"wait": 0}, timeout=60)
    assert fetched.status_code == 404, fetched.text
    assert fetched.headers["Content-Type"].startswith("application/problem+json")
    assert "POST" in fetched.json()["detail"]
    assert requests.get(url, headers=stack.legal, timeout=60).status_code == 404  # a key alike
    forged = legal.post(url, headers=cross_site, params={"wait": 0}, timeout=60)
    assert forged.status_code == 403, forged.text  # no CSRF token: nothing is made
    assert manifests_of(stack) == []

    page = legal.get(stack.stack.urls["web"] + f"/console/agreements/{agreement['id']}")
    token = {"X-CSRF-Token": csrf_of(page.text)}

    def made_then_fetched() -> requests.Response | None:
        # A fact may change between the two (a message sent): then make it again.
        made = legal.post(url, headers=token, timeout=120)
        if made.status_code != 200:
            return None
        again = legal.get(url, timeout=120)
        return again if again.status_code == 200 else None

    answer: requests.Response = until(made_then_fetched, "a dossier made, then fetched", 120)
    assert answer.headers["Content-Type"] == "application/zip"
    shas = {m["sha256"].removeprefix("0x") for m in manifests_of(stack)}
    assert answer.headers["X-Manifest-SHA256"] in shas
