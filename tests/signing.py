"""The candidate's wallet in tests: EIP-712 signatures made by ethers (an implementation
independent of ours), or by eth-account where Node.js is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from offerseal.shared import chain

ROOT = Path(__file__).resolve().parents[1]


def ethers_sign(private_key: str, typed: dict[str, Any]) -> str:
    """`0x`-hex signature of an `eth_signTypedData_v4` payload."""
    if shutil.which("node") is None:
        return "0x" + chain.sign_typed_data(private_key, typed).hex()
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "sign-typed-data.mjs")],
        input=json.dumps({"privateKey": private_key, "typedData": typed}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()
