"""The candidate's wallet in tests: EIP-712 signatures made by ethers (an implementation
independent of ours), or by eth-account where Node.js is missing.

One Node process (scripts/sign-typed-data.mjs --lines) per test process signs every payload:
starting Node and loading ethers for each signature cost about half a second of CPU."""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from offerseal.shared import chain

ROOT = Path(__file__).resolve().parents[1]

_lock = threading.Lock()
_signer: subprocess.Popen[str] | None = None


def _stop_signer() -> None:
    if _signer is not None and _signer.poll() is None:
        assert _signer.stdin is not None
        _signer.stdin.close()
        try:
            _signer.wait(10)
        except subprocess.TimeoutExpired:
            _signer.kill()


def _node_signer() -> subprocess.Popen[str]:
    global _signer
    if _signer is None or _signer.poll() is not None:
        _signer = subprocess.Popen(
            ["node", str(ROOT / "scripts" / "sign-typed-data.mjs"), "--lines"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        atexit.register(_stop_signer)
    return _signer


def ethers_sign(private_key: str, typed: dict[str, Any]) -> str:
    """`0x`-hex signature of an `eth_signTypedData_v4` payload."""
    if shutil.which("node") is None:
        return "0x" + chain.sign_typed_data(private_key, typed).hex()
    request = json.dumps({"privateKey": private_key, "typedData": typed}) + "\n"
    with _lock:  # one request and its answer at a time on the one pipe
        signer = _node_signer()
        assert signer.stdin is not None and signer.stdout is not None
        signer.stdin.write(request)
        signer.stdin.flush()
        answer = signer.stdout.readline().strip()
    if not answer.startswith("0x"):
        raise RuntimeError(f"the Node signer failed: {answer or 'no answer'}")
    return answer
