"""SM3 against GB/T 32905-2016's own examples, in every place it is computed: OpenSSL through
hashlib, the verifier's plain-Python fallback, and the verify page's JavaScript (run by node)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from offerseal_verify import sm3 as sm3_module
from offerseal_verify.sm3 import sm3_hex, sm3_python
from tests.conftest import IN_CI, ROOT

# GB/T 32905-2016, appendix A: example 1 ("abc") and example 2 ("abcd" sixteen times, 512 bits).
VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@pytest.mark.parametrize(("message", "digest"), VECTORS)
def test_the_standard_vectors_hold_in_openssl_and_in_python(message: bytes, digest: str) -> None:
    assert hashlib.new("sm3", message).hexdigest() == digest
    assert sm3_python(message).hex() == digest
    assert sm3_hex(message) == "0x" + digest


def test_the_fallback_agrees_with_openssl_at_every_padding_length() -> None:
    for size in [*range(0, 130), 1000, 4097]:
        data = os.urandom(size)
        assert sm3_python(data) == hashlib.new("sm3", data).digest(), size


def test_without_openssl_sm3_the_fallback_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sm3_module, "OPENSSL", False)
    assert sm3_hex(b"abc") == "0x" + VECTORS[0][1]


def test_the_verify_pages_sm3_gives_the_same_digests() -> None:
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is needed to check the verify page's SM3")
        pytest.skip("node is not installed")
    inputs = [m.hex() for m, _ in VECTORS] + [os.urandom(n).hex() for n in (0, 55, 56, 64, 999)]
    script = (
        "import { sm3Hex } from './web/src/verify/sm3.js';"
        "let text = '';"
        "process.stdin.on('data', (c) => (text += c));"
        "process.stdin.on('end', () => {"
        "  const hexes = JSON.parse(text);"
        "  const out = hexes.map((h) => sm3Hex(Uint8Array.from(Buffer.from(h, 'hex'))));"
        "  process.stdout.write(JSON.stringify(out));"
        "});"
    )
    answer = subprocess.run(
        [node, "--no-warnings", "--input-type=module", "-e", script],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    expected = ["0x" + hashlib.new("sm3", bytes.fromhex(h)).hexdigest() for h in inputs]
    assert json.loads(answer.stdout) == expected
    assert expected[:2] == ["0x" + d for _, d in VECTORS]
