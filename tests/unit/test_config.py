"""Settings: typed parsing of OFFERSEAL_* variables, clear errors, and a README that lists them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from offerseal.shared.config import VARIABLES, ConfigError, load_settings, parse_duration

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(
    "text,seconds",
    [("90", 90), ("1.5", 1.5), ("500ms", 0.5), ("90s", 90), ("30m", 1800), ("48h", 172800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_values_are_typed_and_defaults_apply() -> None:
    settings = load_settings(
        {
            "OFFERSEAL_BATCH_INTERVAL": "250ms",
            "OFFERSEAL_BATCH_MAX": "100",
            "OFFERSEAL_MAX_DOCUMENT_BYTES": "1MiB",
        }
    )
    assert settings.batch_interval == 0.25
    assert settings.batch_max == 100
    assert settings.max_document_bytes == 1024 * 1024
    assert settings.evidence_port == 8101
    assert settings.broker_url == "memory://"


@pytest.mark.parametrize(
    "env",
    [
        {"OFFERSEAL_BATCH_MAX": "many"},
        {"OFFERSEAL_BATCH_INTERVAL": "soon"},
        {"OFFERSEAL_BATCH_MAX": "0"},
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="OFFERSEAL_BATCH"):
        load_settings(env)


def test_evidence_url_falls_back_to_the_local_evidence_service() -> None:
    assert load_settings({"OFFERSEAL_EVIDENCE_PORT": "9001"}).evidence_base_url == (
        "http://127.0.0.1:9001"
    )
    configured = load_settings({"OFFERSEAL_EVIDENCE_URL": "https://evidence.example/"})
    assert configured.evidence_base_url == "https://evidence.example"


def test_secrets_are_redacted() -> None:
    settings = load_settings(
        {"OFFERSEAL_SIGNER_KEY": "0xdeadbeef", "OFFERSEAL_DATABASE_URL": "postgresql://u:pw@h/db"}
    )
    shown = str(settings.redacted())
    assert "deadbeef" not in shown and "pw@" not in shown


def test_readme_documents_every_variable() -> None:
    # The README, or a page of docs/ (the README is being split into docs/ pages).
    texts = [README.read_text(), *(p.read_text() for p in (README.parent / "docs").glob("*.md"))]
    documented = set(re.findall(r"`(OFFERSEAL_[A-Z_]+)`", "\n".join(texts)))
    missing = {v.env for v in VARIABLES} - documented
    assert not missing, f"README and docs/ lack {sorted(missing)}"


def test_previous_master_keys_are_listed_and_checked(tmp_path: Path) -> None:
    import base64
    import os

    from offerseal.shared.secrets import previous_master_keys

    one, two = os.urandom(32), os.urandom(32)
    spelled = f" {base64.b64encode(one).decode()}, {base64.b64encode(two).decode()},"
    settings = load_settings({"OFFERSEAL_MASTER_KEYS_PREVIOUS": spelled}, data_dir=tmp_path)
    assert previous_master_keys(settings) == [one, two]
    assert "OFFERSEAL_MASTER_KEYS_PREVIOUS': '(set)" in str(settings.redacted())
    assert previous_master_keys(load_settings({}, data_dir=tmp_path)) == []
    bad = load_settings({"OFFERSEAL_MASTER_KEYS_PREVIOUS": "bm90IDMyIGJ5dGVz"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="OFFERSEAL_MASTER_KEYS_PREVIOUS"):
        previous_master_keys(bad)
