"""What every step of the demo uses: its narration, the candidates' keys, and waits for a proof
or an e-mail."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

# A key the demo holds for its candidate (Anvil's fourth development account; never use it on a
# real chain). A real candidate signs in MetaMask or any EIP-712 wallet.
DEMO_CANDIDATE_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
DEMO_OTHER_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def wait_for_proof(
    base: str, headers: dict[str, str], doc_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(f"{base}/v1/documents/{doc_id}/proof", headers=headers, timeout=10)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        if response.status_code != 409:
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.text}")
        time.sleep(0.25)
    raise RuntimeError(f"no proof for {doc_id} after {timeout}s")


def wait_for_mail(folder: Path, subject: str, timeout: float = 30.0) -> Any:
    """The newest .eml in `folder` whose subject contains `subject`."""
    import email
    import email.policy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if subject in str(message["Subject"]):
                found.append(message)
        if found:
            return found[-1]
        time.sleep(0.2)
    raise RuntimeError(f"no mail about {subject!r} in {folder}")


def links_in(message: Any) -> list[str]:
    """The links a candidate taps in a message's plain text, followed: a short link
    (`/l/<code>` on the people's origin) is resolved to the signed link it stands for."""
    text = str(message.get_body(preferencelist=("plain",)).get_content())
    found = []
    for word in text.replace("\uff1a", " ").split():
        if not word.startswith("http"):
            continue
        if "/l/" in word:
            answer = requests.get(word, allow_redirects=False, timeout=10)
            answer.raise_for_status()
            word = answer.headers["Location"]
        found.append(word)
    return found
