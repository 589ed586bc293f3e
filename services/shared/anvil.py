"""Starts the Anvil binary that the npm package @foundry-rs/anvil ships in node_modules."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

from .chain import wait_for_rpc
from .errors import OfferSealError

ROOT = Path(__file__).resolve().parents[2]


def anvil_binary() -> Path:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = {"linux": "linux", "darwin": "darwin"}.get(platform.system().lower(), "unknown")
    candidate = (
        ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil"
    )
    if candidate.exists():
        return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise OfferSealError(
        f"Anvil not found at {candidate}; run `npm ci` (the Makefile does) or set OFFERSEAL_RPC_URL"
    )


def _genesis_time(state_file: Path) -> int:
    """The genesis timestamp of the chain kept in `state_file`, pinned in a file beside it at
    its first start. Anvil started again from saved state makes a genesis block of its own,
    stamped with the time of that start, and keeps it beside the loaded ones: block 0 would
    answer with another hash after each restart, as if the chain had been reset."""
    pinned = state_file.with_name(state_file.name + ".genesis")
    try:
        return int(pinned.read_text().strip())
    except (FileNotFoundError, ValueError):
        now = int(time.time())
        pinned.parent.mkdir(parents=True, exist_ok=True)
        pinned.write_text(f"{now}\n")
        return now


class AnvilProcess:
    """A running Anvil; `stop()` ends it (and dumps its state when a state file was given)."""

    def __init__(
        self,
        port: int,
        state_file: Path | None = None,
        log_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.state_file = state_file
        args = [
            str(anvil_binary()),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--chain-id",
            "31337",
            *extra_args,
        ]
        if state_file is not None:
            args += ["--timestamp", str(_genesis_time(state_file)), "--state", str(state_file)]
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if log_file:
            out.close()  # type: ignore[union-attr]
        try:
            wait_for_rpc(self.url, timeout=30)
            if self.process.poll() is not None:  # someone else's node answered on this port
                raise OfferSealError(f"anvil exited at start: port {port} is taken")
        except Exception:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """End it; with a state file, mining stops first and the block being mined is let
        finish: Anvil dumps its state as it ends, and a block mined meanwhile left its
        transactions' effects in the dump without the block (measured under load: the sender's
        nonce one ahead of its transactions in the kept blocks after 3 restarts in 8)."""
        if self.process.poll() is None:
            if self.state_file is not None:
                self._stop_mining()
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _stop_mining(self) -> None:
        import requests

        def call(method: str, *params: object) -> object:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
            return requests.post(self.url, json=body, timeout=5).json().get("result")

        with contextlib.suppress(requests.RequestException, ValueError):  # not answering
            call("evm_setAutomine", False)
            # a block being mined as mining stopped is let finish: the head stays put
            deadline, head = time.monotonic() + 2.0, call("eth_blockNumber")
            while time.monotonic() < deadline:
                time.sleep(0.05)
                now = call("eth_blockNumber")
                if now == head:
                    break
                head = now

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, 9)
            self.process.wait()


def wait_port_free(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)
