"""A local HTTP endpoint that reads every request's body and throws it away.

The anchors POST CSV to ClickHouse's HTTP interface; pointed here, they pay for building the CSV and
sending it, and no engine parses it. Runs in its own process (the benchmark's workers are separate
processes too), on the loopback interface only:

    python benchmarks/anchors/discard_server.py [--port 0]     # prints "LISTENING <port>"

Every POST gets ClickHouse's answer to an INSERT: 200, empty body. ``GET /stats`` returns what was
received so far as JSON (requests, body bytes, CSV lines), so a worker can check that every row
arrived; any other GET gets an empty 200 (the anchors' "last dumped" query finds nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 20


class Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.lines = 0


TOTALS = Totals()


class Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        left = int(self.headers.get("Content-Length") or 0)
        size = lines = 0
        while left > 0:
            chunk = self.rfile.read(min(left, CHUNK))
            if not chunk:
                break
            left -= len(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
        with TOTALS.lock:
            TOTALS.requests += 1
            TOTALS.bytes += size
            TOTALS.lines += lines
        self._answer(b"")

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/stats"):
            with TOTALS.lock:
                body = json.dumps({"requests": TOTALS.requests, "bytes": TOTALS.bytes, "lines": TOTALS.lines})
            self._answer(body.encode())
        else:
            self._answer(b"")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Discard)
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
