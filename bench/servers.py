"""Private PostgreSQL and RabbitMQ servers for `make chaos`: started on free ports in a
temporary directory, so that restarting them under load disturbs nobody else on the machine
(the machine's own servers are shared by other test runs)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from offerseal.shared.net import free_port


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _as_user(user: str) -> list[str]:
    """Run as `user` when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb into `folder`), trust auth on 127.0.0.1."""

    def __init__(self) -> None:
        # its own folder: the run's temporary directory is closed to the postgres user
        folder = Path(tempfile.mkdtemp(prefix="offerseal-chaos-pg-"))
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found and shutil.which("pg_ctl") is None:
            raise RuntimeError("pg_ctl not found: install PostgreSQL or use --shared-servers")
        self.bin = Path(found[-1]).parent if found else Path(str(shutil.which("pg_ctl"))).parent
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else ""
        if self.user:
            shutil.chown(folder, self.user)
        subprocess.run(
            [*_as_user(self.user), str(self.bin / "initdb"), "-D", str(self.data),
             "--auth=trust", "-U", "postgres", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self._ctl(
            "start",
            "-o",
            f"-p {self.port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200",
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_user(self.user), str(self.bin / "pg_ctl"), "-D", str(self.data), "-w",
             "-l", str(self.folder / "postgres.log"), *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRabbit:
    """A RabbitMQ node of our own (its own name, ports and data directory)."""

    def __init__(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="offerseal-chaos-mq-"))
        self.folder = folder
        self.port = free_port()
        self.node = f"offerseal-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "plugins"),
            "RABBITMQ_PID_FILE": str(folder / "pid"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "env.conf"),
        }
        (folder / "plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text("")
        if os.geteuid() == 0:  # the server script runs the node as the rabbitmq user
            for path in (folder, folder / "plugins", folder / "rabbitmq.conf"):
                shutil.chown(path, "rabbitmq")
        with (folder / "server.out").open("ab") as out:
            self.process = subprocess.Popen(
                ["rabbitmq-server"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._ctl("wait", str(folder / "pid"), "--timeout", "90")
        _wait_port(self.port, 60)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            env=self.env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def stop_app(self) -> None:
        self._ctl("stop_app")

    def start_app(self) -> None:
        self._ctl("start_app")
        _wait_port(self.port, 60)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("stop")
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
        shutil.rmtree(self.folder, ignore_errors=True)
