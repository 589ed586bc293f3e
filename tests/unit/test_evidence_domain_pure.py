"""The evidence service's domain/ is its pure core: each module imports only the standard
library, the verifier's pure package (`offerseal_verify`) and its neighbours in domain/; no
Flask, SQLAlchemy, kombu or web3, and nothing else of the service."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.conftest import ROOT

DOMAIN = ROOT / "services" / "evidence" / "domain"
ALLOWED = set(sys.stdlib_module_names) | {"offerseal_verify"}


def imports_of(path: Path) -> list[str]:
    """What a module imports, spelt as written (relative imports with their leading dots)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
    return found


def test_the_evidence_domain_imports_no_framework_and_nothing_outside_it() -> None:
    modules = sorted(DOMAIN.glob("*.py"))
    assert {p.stem for p in modules} >= {"documents", "statements", "records"}
    for path in modules:
        for name in imports_of(path):
            if name.startswith("."):  # a neighbour in domain/, never the service above it
                assert not name.startswith(".."), (path.name, name)
            else:
                assert name.split(".")[0] in ALLOWED, (path.name, name)


def test_the_check_sees_a_framework_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import json\nfrom sqlalchemy import select\nfrom ..models import Document\n")
    assert imports_of(sample) == ["json", "sqlalchemy", "..models"]
