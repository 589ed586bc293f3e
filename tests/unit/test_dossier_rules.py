"""The dossier's pure rules: the manifest lists what it must and refuses what it must not, the
damages against the 30% cap, safe names from the outside world, a reproducible ZIP."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile

import pytest

from offerseal.contracts.domain import dossier as d

HEAD = {
    "id": "a-1",
    "onchain_id": "0x" + "11" * 32,
    "chain_id": 31337,
    "registry": "0x" + "22" * 20,
    "state": "breached",
}


def files() -> list[d.DossierFile]:
    return [
        d.DossierFile(
            "evidence/x/1/letter.pdf", b"%PDF letter", "the letter", "evidence/x/1/proof.json"
        ),
        d.json_file("evidence/x/1/proof.json", "its proof", {"format": "offerseal-proof/2"}),
        d.json_file("agreement/agreement.json", "the agreement", {"id": "a-1"}),
    ]


def test_the_manifest_lists_every_file_by_hash_sorted_and_is_reproducible() -> None:
    raw = d.manifest_bytes(HEAD, "2026-11-26T00:00:00+00:00", files())
    assert raw == d.manifest_bytes(HEAD, "2026-11-26T00:00:00+00:00", list(reversed(files())))
    manifest = json.loads(raw)
    assert manifest["format"] == "offerseal-dossier-1" and manifest["agreement"] == HEAD
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths)
    [letter] = [f for f in manifest["files"] if f["path"].endswith("letter.pdf")]
    assert letter["sha256"] == hashlib.sha256(b"%PDF letter").hexdigest()
    assert letter["bytes"] == len(b"%PDF letter") and letter["proof"] == "evidence/x/1/proof.json"


@pytest.mark.parametrize(
    "bad",
    [
        d.DossierFile("agreement/agreement.json", b"twice", "duplicate"),
        d.DossierFile("../escape.txt", b"x", "escapes"),
        d.DossierFile("/abs.txt", b"x", "absolute"),
        d.DossierFile("a//b.txt", b"x", "empty part"),
        d.DossierFile("manifest.json", b"x", "the manifest itself"),
        d.DossierFile("cover.pdf", b"x", "outside the manifest"),
        d.DossierFile("a/b.txt", b"x", "names a missing proof", "a/missing.json"),
        d.DossierFile("a/b<script>.txt", b"x", "unsafe characters"),
    ],
)
def test_files_that_cannot_make_a_dossier_are_refused(bad: d.DossierFile) -> None:
    with pytest.raises(d.DossierInvalid):
        d.manifest_bytes(HEAD, "2026-11-26T00:00:00+00:00", [*files(), bad])


def test_damages_are_stated_against_thirty_percent_of_the_monthly_salary() -> None:
    within = d.damages_statement(
        currency="CNY", monthly_salary=3_000_000, liquidated_damages=900_000, state="breached"
    )
    assert within["cap"] == 900_000 and within["within_cap"] is True
    assert within["percent_of_monthly_salary"] == 30.0
    above = d.damages_statement(
        currency="CNY", monthly_salary=3_000_000, liquidated_damages=900_001, state="breached"
    )
    assert above["within_cap"] is False


def test_names_from_uploads_become_safe_path_parts() -> None:
    assert d.safe_name("辞职申请 (盖章).pdf", "fallback") == "辞职申请 (盖章).pdf"
    assert d.safe_name("../../etc/passwd", "fallback") == "_.._etc_passwd"
    assert d.safe_name("", "document-1") == "document-1"
    assert d.safe_name("...", "document-1") == "document-1"
    d.check_path("evidence/x/" + d.safe_name("a/b\\c:d.pdf", "f"))


def test_the_zip_holds_the_entries_in_order_with_utf8_names_and_fixed_dates() -> None:
    when = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.UTC)
    entries = [("manifest.json", b"{}"), ("evidence/辞职.pdf", b"%PDF")]
    raw = d.zip_bytes(entries, when)
    assert raw == d.zip_bytes(entries, when)
    archive = zipfile.ZipFile(io.BytesIO(raw))
    assert archive.namelist() == ["manifest.json", "evidence/辞职.pdf"]
    assert archive.getinfo("manifest.json").date_time == (2026, 11, 26, 8, 30, 0)
    with pytest.raises(d.DossierInvalid):
        d.zip_bytes([("a.txt", b"1"), ("a.txt", b"2")], when)


def test_as_of_is_the_newest_fact() -> None:
    assert d.latest(["2026-11-01T00:00:00+00:00", None, "2026-11-03T00:00:00"]) == (
        "2026-11-03T00:00:00+00:00"
    )
    assert d.latest([]) == "1970-01-01T00:00:00+00:00"


def test_names_that_extract_to_one_file_cannot_both_be_in_a_dossier() -> None:
    """Windows and macOS fold case and (macOS) Unicode forms: PROOF.json beside proof.json is
    one file once extracted, and the verifiers refuse the pair."""
    when = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.UTC)
    for twin in ("evidence/x/1/PROOF.json", "evidence/x/1/ｐｒｏｏｆ.json"):
        with pytest.raises(d.DossierInvalid):
            d.manifest_bytes(
                HEAD, "2026-11-26T00:00:00+00:00", [*files(), d.DossierFile(twin, b"x", "up")]
            )
        with pytest.raises(d.DossierInvalid):
            d.zip_bytes([("evidence/x/1/proof.json", b"1"), (twin, b"2")], when)
    with pytest.raises(d.DossierInvalid):
        d.manifest_bytes(
            HEAD, "2026-11-26T00:00:00+00:00", [*files(), d.DossierFile("COVER.pdf", b"x", "x")]
        )


def test_an_uploads_name_steps_aside_from_a_name_already_taken() -> None:
    taken = {d.path_key("proof.json")}
    assert d.distinct_name("letter.pdf", taken) == "letter.pdf"
    assert d.distinct_name("PROOF.json", taken) == "document-PROOF.json"
    assert d.distinct_name("Proof.JSON", taken | {d.path_key("document-proof.json")}) == (
        "document-2-Proof.JSON"
    )
    # an upload's name arrives in NFC whatever form its sender's system used
    assert d.safe_name("cafe\u0301.pdf", "f") == "caf\u00e9.pdf"
