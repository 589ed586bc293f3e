"""This machine's ceiling for HTTP intake: a bare Flask endpoint that only reads the same 10 KB
multipart upload the evidence service gets and answers 201, on the same server (waitress for one
process, gunicorn's pre-fork server with the same settings for several).

Run: `python -m bench.ceiling --port P [--workers N]` (until SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

from flask import Flask, request


def create_app() -> Flask:
    app = Flask("ceiling")

    @app.post("/v1/documents")
    def upload() -> tuple[dict[str, Any], int]:
        file = request.files["file"]
        content = file.read()
        return {
            "id": str(uuid.uuid4()),
            "kind": request.form.get("kind"),
            "size": len(content),
            "pid": os.getpid(),
        }, 201

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    return app


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    if args.workers == 1:  # as `offerseal serve` with one process: waitress threads
        from offerseal.shared.server import HttpServer, wait_for_signal

        server = HttpServer(create_app(), "127.0.0.1", args.port, args.threads).start()
        wait_for_signal(server.stop)
        return 0
    from offerseal.shared.prefork import GunicornApp, server_options

    options = server_options([f"127.0.0.1:{args.port}"], args.workers, args.threads, "warning")
    GunicornApp(options, create_app).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
