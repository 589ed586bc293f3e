"""The notary's cover (`offerseal dossier ID --for notary`) on a real stack: the dossier of a
breached agreement is downloaded with a one-page Chinese cover beside it that lists the parties,
the resignation application with its SM3 and SHA-256 and its witnesses, and the chain of custody;
the ZIP itself is unchanged (the cover is not in it). Its page is rendered to
test-artifacts/dossier/notary-cover-zh-CN.png to be looked at."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from offerseal.contracts.notary import notary_facts, sections
from offerseal_verify.sm3 import sm3
from tests.conftest import RunningStack
from tests.integration.test_certificate import text_of
from tests.integration.test_cli import offerseal
from tests.integration.test_dossier import breached, render_first_page, stack  # noqa: F401

pytestmark = pytest.mark.chain

RESIGNATION = "辞职申请 — stamped resignation application".encode()  # what `breached` uploads


def test_the_dossier_for_a_notary_comes_with_a_one_page_chinese_cover(
    stack: RunningStack,  # noqa: F811
    breached: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    agreement_id = breached["agreement"]["id"]
    out = tmp_path / "dossier.zip"
    ran = offerseal(
        "dossier",
        agreement_id,
        "--api",
        stack.stack.urls["web"],
        "--out",
        str(out),
        "--for",
        "notary",
        env={"OFFERSEAL_API_KEY": stack.legal["Authorization"].removeprefix("Bearer ")},
    )
    assert ran.returncode == 0, ran.stderr
    cover_path = tmp_path / "dossier.notary-cover.pdf"
    assert str(cover_path) in ran.stdout
    archive = zipfile.ZipFile(out)
    assert not any("notary" in name for name in archive.namelist())  # the ZIP is as anchored

    facts = notary_facts(out.read_bytes())
    (doc,) = [d for d in facts.documents if d.kind == "resignation_application"]
    assert doc.sha256 == hashlib.sha256(RESIGNATION).hexdigest()
    assert doc.sm3 == sm3(RESIGNATION).hex()
    assert doc.witnesses[0].startswith("以太坊链 ")
    manifest = json.loads(archive.read("manifest.json"))
    assert all("sm3" in entry for entry in manifest["files"])
    heads = [head for head, _ in sections(facts)]
    assert heads == [
        "一、当事人",
        "二、证据文件及其哈希值与见证",
        "三、保管链（谁在何时提交，如何封存）",
    ]

    pdf = cover_path.read_bytes()
    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = "".join(text_of(pdf).split())
    for expected in ("离职进程公证", "当事人", "保管链", "公证处核对要点", doc.sm3, doc.sha256):
        assert expected in text, expected
    render_page(pdf)


def render_page(pdf: bytes) -> None:
    render_first_page(pdf, "notary-cover-zh-CN")
