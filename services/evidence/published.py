"""The published formats: versioned JSON Schemas (draft 2020-12) of the proof bundle and of the
agreement dossier's manifest, shipped in `schemas/` beside this module and served at
`GET /v1/schemas/<name>`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).with_name("schemas")
SCHEMAS = {
    "proof-bundle-1": "offerseal-proof/1",
    "proof-bundle-2": "offerseal-proof/2",
    "proof-bundle-3": "offerseal-proof/3",
    "dossier-manifest-1": "offerseal-dossier-1",
}


def schema_name(name: str) -> str | None:
    """The schema a request names (with or without `.json`), or None."""
    stem = name.removesuffix(".json")
    return stem if stem in SCHEMAS else None


@cache
def load_schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def schema_for_bundle(bundle: Any) -> str | None:
    """The schema of a bundle's (or a dossier manifest's) declared format."""
    declared = bundle.get("format") if isinstance(bundle, dict) else None
    return next((name for name, fmt in SCHEMAS.items() if fmt == declared), None)
