"""Local ports: a free one to listen on, and waiting until something listens."""

from __future__ import annotations

import collections
import random
import socket
import time
from pathlib import Path

_handed_out: collections.deque[int] = collections.deque(maxlen=512)


def ephemeral_port() -> int:
    """A port the kernel hands out for port 0, let go at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(share: int = 0, shares: int = 1) -> int:
    """A port nothing listens on, for a server started a little later (Anvil, a service).
    Taken below the kernel's ephemeral range: a port the kernel handed out for port 0 and we
    let go can be handed to anyone else binding port 0 before our server binds it. Not handed
    out twice by one process. `share` of `shares`: a slice of the range of its own for each of
    several processes picking at once (the test workers)."""
    pick = random.SystemRandom()
    high = _ephemeral_low() - 1
    low = max(1024, high - 12000)
    if shares > 1:
        span = (high - low + 1) // shares
        low += share % shares * span
        high = low + span - 1
    if high - low < 16:  # an ephemeral range that starts low: the kernel's pick it is
        return ephemeral_port()
    for _ in range(200):
        port = pick.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not listening("127.0.0.1", port):
            _handed_out.append(port)
            return port
    return ephemeral_port()


def listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(host, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")
