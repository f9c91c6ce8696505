"""A small ClickHouse-compatible HTTP server backed by the embedded chDB engine, for tests.

There is no ClickHouse server on the development and CI machines, yet the project's ClickHouse code must be
exercised through clickhouse-connect's real HTTP path (URL parameters, bound parameters, Native inserts,
compression, error headers, connection failures).  This module serves just enough of ClickHouse's HTTP
interface for that, executing every statement in chDB.

chDB allows one data directory per process, so each server is its own process:

    python tests/chhttp.py --path DATA_DIR --port PORT [--host H] [--user U --password P] [--database DB]

Once it accepts connections it prints ``LISTENING <port>`` on stdout.  ``ClickHouseHTTPServer`` (below) runs
it as a subprocess for tests and can stop, kill and restart it on the same port and data directory to
simulate outages.
"""

from __future__ import annotations

import argparse
import base64
import email.parser
import email.policy
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, quote, urlsplit

# URL parameters that steer the HTTP transport rather than the query; they never reach the engine.
TRANSPORT_PARAMS = frozenset(
    "query database default_format user password quota_key query_id session_id session_timeout "
    "session_check compress decompress buffer_size wait_end_of_query stacktrace role client_protocol_version "
    "send_progress_in_http_headers http_headers_progress_interval_ms enable_http_compression "
    "http_zlib_compression_level http_native_compression_disable_checksumming_on_decompress".split()
)
# ClickHouse's mapping of some exception codes to HTTP statuses (anything else is a 500).
HTTP_STATUS = {
    **dict.fromkeys((6, 8, 15, 26, 27, 38, 41, 44, 53, 62, 72, 117, 376), 400),
    **dict.fromkeys((46, 47, 50, 56, 60, 63, 73, 81, 115), 404),
    **dict.fromkeys((192, 193, 516), 403),
    194: 401,
    48: 501,
}
# Statements that produce a result set, which ClickHouse labels with an X-ClickHouse-Format header.
RESULT_STATEMENT = re.compile(rb"^\s*\(*\s*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CHECK)\b", re.I)
TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
# An INSERT whose data follows the statement: ``INSERT INTO t [(cols)] [SETTINGS ...] FORMAT F<data>``.
INSERT_WITH_DATA = re.compile(
    rb"""^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(?P<table>(?:`[^`]*`|"[^"]*"|[\w.])+)\s*"""
    rb"""(?P<cols>\((?:`[^`]*`|[^)`])*\))?\s*(?:SETTINGS\s+(?P<settings>[^\n]*?)\s+)?"""
    rb"""FORMAT\s+(?P<fmt>\w+)[ \t]*(?:\r?\n)?""",
    re.I,
)
ERROR_CODE = re.compile(r"Code: (\d+)\.")


class QueryError(Exception):
    """An error to report the way ClickHouse does: numeric code plus ``Code: N. DB::Exception: ...`` text."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code

    @classmethod
    def make(cls, code: int, name: str, text: str) -> QueryError:
        return cls(code, f"Code: {code}. DB::Exception: {text}. ({name})")


def _decompress(data: bytes, encoding: str) -> bytes:
    """Undo a request Content-Encoding; clickhouse-connect compresses insert bodies with lz4 by default."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "lz4":
        import lz4.frame  # the client writes one frame per block, and lz4.frame.decompress stops at the first

        parts = []
        while data:
            decoder = lz4.frame.LZ4FrameDecompressor()
            parts.append(decoder.decompress(data))
            data = decoder.unused_data
        return b"".join(parts)
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return zstd.decompress(data)
    raise QueryError.make(48, "NOT_IMPLEMENTED", f"Unsupported Content-Encoding {encoding!r}")


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _content_type(fmt: str) -> str:
    lowered = fmt.lower()
    if lowered.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if lowered.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if lowered.startswith("json"):
        return "application/json; charset=UTF-8"
    if lowered.startswith(("pretty", "vertical", "markdown", "values")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


class Engine:
    """The process's chDB engine.  Calls are serialized by one lock.

    Each request runs on a fresh connection handle: USE and SET are per handle in chDB, so per-request
    database and settings cannot leak into other requests (and there is nothing to restore afterwards).
    The primary handle stays open for the life of the process to keep the engine up.
    """

    def __init__(self, path: str):
        import chdb  # imported here so that the helper class below does not need chdb

        self.path = path
        self.lock = threading.Lock()
        self.chdb = chdb
        self.primary = chdb.connect(path)
        info = self.primary.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().split()
        self.version, self.timezone = info
        names = self.primary.query("SELECT name FROM system.settings", "TabSeparated").bytes().decode()
        self.setting_names = frozenset(names.split())

    def run(
        self,
        sql: bytes,
        insert: re.Match[bytes] | None,
        fmt: str,
        database: str,
        settings: dict[str, str],
        params: dict[str, str],
    ):
        """Execute one statement; an INSERT with inline data (``insert``) is fed to the engine from a file."""
        with self.lock:
            conn = self.chdb.connect(self.path)
            tmp_name = None
            try:
                if database:
                    conn.query(f"USE `{database.replace('`', '``')}`", "TabSeparated")
                for name, value in settings.items():
                    conn.query(f"SET {name} = {_sql_string(value)}", "TabSeparated")
                if insert:
                    fd, tmp_name = tempfile.mkstemp(prefix="chhttp-insert-")
                    with os.fdopen(fd, "wb") as tmp:
                        tmp.write(sql[insert.end() :])
                    g = {k: (v or b"").decode() for k, v in insert.groupdict().items()}
                    statement = f"INSERT INTO {g['table']} {g['cols']} FROM INFILE {_sql_string(tmp_name)}"
                    statement += f" SETTINGS {g['settings']}" if g["settings"] else ""
                    return conn.query(f"{statement} FORMAT {g['fmt']}", "TabSeparated", params=params)
                return conn.query(sql, fmt, params=params)
            except Exception as ex:  # chDB raises ChdbError/RuntimeError carrying ClickHouse's message text
                message = str(ex).strip()
                message = message[message.find("Code: ") :] if "Code: " in message else message
                found = ERROR_CODE.search(message)
                if not found:
                    raise QueryError.make(1001, "STD_EXCEPTION", message) from ex
                raise QueryError(int(found.group(1)), message) from ex
            finally:
                conn.close()
                if tmp_name:
                    os.unlink(tmp_name)

    def close(self) -> None:
        if self.lock.acquire(timeout=5):
            self.primary.close()


class Handler(BaseHTTPRequestHandler):
    """Translates one ClickHouse HTTP request into an engine call."""

    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect pools connections
    server_version = "chhttp"
    engine: Engine
    credentials: tuple[str, str] | None

    def log_message(self, format, *args):  # noqa: A002 - quiet: the test output is the interesting part
        pass

    def setup(self):
        super().setup()
        # Small responses must not wait for Nagle's algorithm (~40 ms per statement otherwise).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):  # noqa: N802
        self._handle()

    def do_POST(self):  # noqa: N802
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():  # streamed insert bodies
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, query_id: str) -> None:
        if "(version " not in message:
            message = f"{message} (version {self.engine.version})"
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(code),
            "X-ClickHouse-Server-Display-Name": "chhttp",
            "X-ClickHouse-Query-Id": query_id,
        }
        self._reply(HTTP_STATUS.get(code, 500), (message + "\n").encode(), headers)

    def _authenticate(self, params: dict[str, str]) -> str | None:
        """Return the failing user name, or None if the request may proceed."""
        user = params.get("user") or self.headers.get("X-ClickHouse-User") or "default"
        password = params.get("password") or self.headers.get("X-ClickHouse-Key") or ""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if self.credentials is None or (user, password) == self.credentials:
            return None
        return user

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/ping" or (url.path == "/" and not url.query and not body):
            return self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            if url.path != "/":
                raise QueryError.make(1001, "STD_EXCEPTION", f"No handler for path {url.path}")
            failed_user = self._authenticate(params)
            if failed_user is not None:
                text = "Authentication failed: password is incorrect, or there is no user with such name"
                raise QueryError.make(516, "AUTHENTICATION_FAILED", f"{failed_user}: {text}")
            body = _decompress(body, self.headers.get("Content-Encoding", ""))
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):  # large bound parameters travel as a form
                params.update(self._form_fields(content_type, body))
                body = b""
            query = params.get("query", "").encode()
            sql = query + b"\n" + body if query and body else query or body
            fmt = params.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
            database = params.get("database") or self.headers.get("X-ClickHouse-Database") or ""
            bound = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            settings = {}
            for name, value in params.items():
                if name in TRANSPORT_PARAMS or name.startswith("param_"):
                    continue
                if name in self.engine.setting_names:
                    settings[name] = value
                else:
                    print(f"chhttp: ignoring unknown setting {name}={value!r}", file=sys.stderr)
            insert = INSERT_WITH_DATA.match(sql[:65536])
            started = time.monotonic_ns()
            result = self.engine.run(sql, insert, fmt, database, settings, bound)
        except QueryError as ex:
            return self._error(ex.code, str(ex), query_id)
        except Exception as ex:  # e.g. a corrupt compressed body: still answer like ClickHouse, don't hang up
            return self._error(1001, str(QueryError.make(1001, "STD_EXCEPTION", repr(ex))), query_id)
        data = result.bytes() or b""
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "total_rows_to_read": str(result.rows_read()),
            "result_bytes": str(len(data)),
            "elapsed_ns": str(time.monotonic_ns() - started),
        }
        headers = {
            "Content-Type": _content_type(fmt),
            "X-ClickHouse-Server-Display-Name": "chhttp",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": settings.get("session_timezone") or self.engine.timezone,
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        if not insert and RESULT_STATEMENT.match(sql):
            trailing_format = TRAILING_FORMAT.search(sql[-256:])
            fmt = trailing_format.group(1).decode() if trailing_format else fmt  # FORMAT in the query wins
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = _content_type(fmt)
        # Compress responses with what the stdlib offers; clickhouse-connect also accepts gzip/deflate.
        accept = self.headers.get("Accept-Encoding", "").lower()
        accepted = {item.split(";")[0].strip() for item in accept.split(",")}
        if data and params.get("enable_http_compression", "1") != "0" and accepted & {"gzip", "deflate"}:
            encoding = "gzip" if "gzip" in accepted else "deflate"
            data = gzip.compress(data, 1) if encoding == "gzip" else zlib.compress(data, 1)
            headers["Content-Encoding"] = encoding
        self._reply(200, data, headers)

    @staticmethod
    def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        fields = {}
        for part in message.iter_parts():
            if part.get_filename():
                raise QueryError.make(48, "NOT_IMPLEMENTED", "External data is not supported")
            name = part.get_param("name", header="content-disposition")
            fields[name] = part.get_payload(decode=True).decode()
        return fields


class Server(ThreadingHTTPServer):
    """SO_REUSEADDR (inherited) lets a restarted server bind the port its predecessor used."""

    allow_reuse_address = True
    daemon_threads = True


def main(argv: list[str] | None = None) -> None:
    """Run one server until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="chDB data directory (one per process)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default="")
    parser.add_argument("--database", action="append", default=[], help="create this database at startup")
    parser.add_argument("--timezone", default="UTC", help="server time zone (chDB takes it from $TZ)")
    args = parser.parse_args(argv)

    os.environ["TZ"] = args.timezone  # else a TZ inherited from the tests (Django sets one) leaks in
    time.tzset()
    Path(args.path).mkdir(parents=True, exist_ok=True)
    engine = Engine(args.path)
    for name in args.database:
        engine.primary.query(f"CREATE DATABASE IF NOT EXISTS `{name.replace('`', '``')}`", "TabSeparated")
    handler = type("BoundHandler", (Handler,), {"engine": engine})
    handler.credentials = (args.user, args.password) if args.user is not None else None
    server = Server((args.host, args.port), handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"LISTENING {server.server_address[1]}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads stdout any more: never block on it
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.close()


class ClickHouseHTTPServer:
    """Runs ``tests/chhttp.py`` as a subprocess; start/stop/kill/restart it to simulate outages.

    ``port`` is fixed after the first start (``port=0`` picks a free one), so ``restart()`` comes back on the
    same port and data directory and existing DSNs keep working.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        user: str = "default",
        password: str = "password",
        database: str = "event_sinks",
        create_database: bool = True,
        startup_timeout: float = 60.0,
    ):
        self._path = Path(path)
        self._port = port
        self.host = host
        self.user = user
        self.password = password
        self.database = database
        self.create_database = create_database
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def dsn(self) -> str:
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"http://{credentials}@{self.host}:{self._port}/{self.database}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ClickHouseHTTPServer:
        """Launch the server and wait for its ``LISTENING`` line."""
        if self.running:
            return self
        command = [sys.executable, "-P", str(Path(__file__).resolve()), "--path", str(self._path)]
        command += ["--port", str(self._port), "--host", self.host, "--user", self.user]
        command += ["--password", self.password]
        if self.create_database and self.database:
            command += ["--database", self.database]
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: an unread pipe could block the server
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr)
        output: list[str] = []

        def read_until_listening(stdout: IO[bytes]) -> None:
            for raw in stdout:
                output.append(raw.decode(errors="replace"))
                if output[-1].startswith("LISTENING "):
                    return

        reader = threading.Thread(target=read_until_listening, args=(self.process.stdout,), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        line = output[-1] if output else ""
        if not line.startswith("LISTENING "):
            self.kill()
            self._stderr.seek(0)
            stderr = self._stderr.read().decode(errors="replace")
            raise RuntimeError(
                f"chhttp server did not start within {self.startup_timeout}s "
                f"(stdout: {''.join(output)!r}); stderr:\n{stderr}"
            )
        self._port = int(line.split()[1])
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate gracefully (SIGTERM), escalating to SIGKILL after ``timeout`` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL immediately, like a crash."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._cleanup()

    def restart(self) -> ClickHouseHTTPServer:
        """Stop (if running) and start again on the same port and data directory."""
        self.stop()
        return self.start()

    def _cleanup(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> ClickHouseHTTPServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


if __name__ == "__main__":
    main()
