"""A real RFC 3161 Time-Stamp Authority for development and tests: OpenSSL's `ts -reply` with a
local CA, served over HTTP (`application/timestamp-query` in, `application/timestamp-reply` out).

`ensure_authority(dir)` creates, once, a root CA and a TSA certificate (extendedKeyUsage critical
timeStamping) signed by it, and the `openssl ts` configuration; `DevTSA(dir).start()` serves it
on a local port. Tokens are signed by OpenSSL itself; nothing here fakes a signature. Not for
production: the CA key lies beside the TSA's in the directory.

    python -m offerseal.shared.dev_tsa DIR [--port N]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import OfferSealError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_QUERY_BYTES = 16 * 1024  # a query is about 60 bytes
POLICY = "1.3.6.1.4.1.57264.99.1"  # an arbitrary private OID naming "development stamps"

_TS_CONFIG = """\
[ tsa ]
default_tsa = dev_tsa

[ dev_tsa ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

_TSA_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Authority:
    """The files of a development TSA."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def tsa_cert(self) -> Path:
        return self.directory / "tsa.crt"

    @property
    def config(self) -> Path:
        return self.directory / "openssl-ts.cnf"


def _openssl(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["openssl", *args], cwd=cwd, input=stdin, capture_output=True, check=False, timeout=30
        )
    except FileNotFoundError:
        raise OfferSealError("the development TSA needs the `openssl` command") from None
    if done.returncode != 0:
        raise OfferSealError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def ensure_authority(directory: Path, name: str = "OfferSeal development TSA") -> Authority:
    """Create the CA, the TSA key and certificate and the `openssl ts` configuration once;
    later calls reuse them (tokens issued before a restart keep verifying)."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority(directory)
    if authority.config.exists() and authority.tsa_cert.exists():
        return authority
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
        "-subj", f"/O=OfferSeal development/CN={name} root CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", f"/O=OfferSeal development/CN={name}",
        cwd=directory,
    )  # fmt: skip
    (directory / "tsa.ext").write_text(_TSA_EXTENSIONS)
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.crt", "-days", "3650", "-extfile", "tsa.ext",
        cwd=directory,
    )  # fmt: skip
    for key in ("ca.key", "tsa.key"):
        (directory / key).chmod(0o600)
    (directory / "tsaserial").write_text("01\n")
    # The token carries only the TSA certificate: OpenSSL writes a SET OF certificates in
    # insertion order, which strict DER parsers refuse; the CA is named beside the token.
    authority.config.write_text(_TS_CONFIG.format(dir=directory, policy=POLICY))
    return authority


def reply(authority: Authority, query: bytes) -> bytes:
    """`openssl ts -reply` for one DER query: the DER TimeStampResp."""
    with tempfile.TemporaryDirectory(prefix="tsq-") as tmp:
        query_file = Path(tmp) / "query.tsq"
        reply_file = Path(tmp) / "reply.tsr"
        query_file.write_bytes(query)
        _openssl(
            "ts", "-reply", "-config", str(authority.config),
            "-queryfile", str(query_file), "-out", str(reply_file),
        )  # fmt: skip
        return reply_file.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        length = int(self.headers.get("Content-Length") or 0)
        if ctype != QUERY_TYPE:
            self._answer(415, b"send application/timestamp-query", "text/plain")
            return
        if not 0 < length <= MAX_QUERY_BYTES:
            self._answer(413, b"a time-stamp query is small", "text/plain")
            return
        query = self.rfile.read(length)
        try:
            with self.server.serial_lock:  # openssl ts keeps its serial in one file
                body = reply(self.server.authority, query)
        except OfferSealError as exc:
            self._answer(400, str(exc).encode(), "text/plain")
            return
        self._answer(200, body, REPLY_TYPE)

    def _answer(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], authority: Authority) -> None:
        self.authority = authority
        self.serial_lock = threading.Lock()
        super().__init__(address, _Handler)


class DevTSA:
    """The development TSA on `host:port` (0: any free port). `start()`, `stop()`; started again
    on the same port it serves the same authority (tests take it down and bring it back)."""

    def __init__(self, directory: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.authority = ensure_authority(directory)
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> DevTSA:
        server = _Server((self.host, self.port), self.authority)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="dev-tsa", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server, self._thread = None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    tsa = DevTSA(args.directory, args.port).start()
    print(f"development TSA on {tsa.url} (CA: {tsa.authority.ca_cert})", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
