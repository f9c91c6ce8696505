"""A TCP proxy in front of a ClickHouse HTTP endpoint that breaks chosen requests in chosen ways.

The faults a deployment meets between the library and ClickHouse happen on the wire: a load balancer
that resets a connection after the server ran the insert, a gateway that answers for a server it never
reached, a server that answers slowly or trickles its answer. This proxy reproduces them on purpose:
it relays HTTP/1.1 requests (keep-alive, ``Content-Length`` or chunked bodies) to the upstream server
one at a time per connection, and for each request decides, from the faults injected, what to do:

``pass``     relay the request and the answer (what every request not chosen gets);
``reset``    relay the request, read the whole answer, then reset the client's connection (RST) instead
             of answering: the server did the work, the client saw the connection die;
``drop``     relay the request, swallow the answer and say nothing until the client gives up;
``ack``      answer ``200 OK`` (empty body) without relaying: a gateway answering for the server;
``delay``    wait ``seconds``, then relay and answer (a slow server);
``trickle``  relay, then send the answer ``chunk`` bytes every ``seconds`` (slow but alive).

A :class:`Fault` chooses requests with ``match`` (e.g. :func:`insert_into`), starting at the ``nth``
matching request, for ``times`` requests (None: all that follow)::

    with FaultProxy(server.port) as proxy:
        proxy.inject(Fault("reset", match=insert_into("course_outline_dumps")))
        dsn = proxy.dsn(server, database)

It is also an HTTP forward proxy (what ``HTTP_PROXY`` names): a request whose target is an absolute
URL (``POST http://host:port/?query=... HTTP/1.1``) is relayed, with the same faults, to the host and
port that URL names, as an origin-form request without the ``Proxy-*`` headers. ``CONNECT`` (tunnels
for ``https://``) is refused with ``501``: faults cannot be chosen inside TLS. ::

    with FaultProxy(server.port) as proxy:
        os.environ["HTTP_PROXY"] = f"http://127.0.0.1:{proxy.port}"  # the DSN names the server itself

``proxy.log`` lists every request relayed (or not) with the action taken, and ``proxy.forwarded``
the requests that came as a forward proxy's (their ``Proxy-Authorization``, or None), for assertions.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

ACTIONS = ("pass", "reset", "drop", "ack", "delay", "trickle")
#: How long a connection may sit idle (no request from the client, no answer from upstream) before the
#: proxy closes it; generous, so that only a proxy stop ends a ``drop`` before the client does.
IDLE_SECONDS = 600.0


@dataclass
class Request:
    """One HTTP request read from a client: what it says, and its exact bytes to relay."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    raw: bytes
    #: ``(host, port)`` named by an absolute-URL target (a forward proxy's request), else None
    authority: tuple[str, int] | None = None

    @property
    def statement(self) -> str:
        """The SQL the request carries: the ``query`` URL parameter, then the body's text.

        An insert's statement travels at the head of its (often compressed) body, before the data.
        """
        query = dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True)).get("query", "")
        head = _body_head(self.body, self.headers.get("content-encoding", ""))
        insert = INSERT_HEAD.match(head)
        if insert:
            text = insert.group(0).decode(errors="replace")
        else:
            try:
                text = head.decode()
            except UnicodeDecodeError:
                text = ""
        return f"{query}\n{text}" if query and text else query or text


#: The statement at the head of an insert's body: ``INSERT INTO t (cols) [SETTINGS ...] FORMAT Native``.
INSERT_HEAD = re.compile(rb"^\s*INSERT\s+INTO\s[^\n]*?FORMAT\s+\w+", re.I | re.S)


def _body_head(body: bytes, encoding: str) -> bytes:
    """The start of a request body, decompressed (the driver compresses insert bodies, lz4 by default)."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "lz4":
            import lz4.frame

            return lz4.frame.LZ4FrameDecompressor().decompress(body)[:65536]  # the first frame
        if encoding in ("gzip", "deflate", "zstd"):
            from .chhttp import _decompress

            return _decompress(body, encoding)[:65536]
    except Exception:  # not compressed the way it says: nothing to match
        return b""
    return body[:65536]


def every(request: Request) -> bool:
    """Every request but the driver's ``/ping``."""
    return urlsplit(request.target).path != "/ping"


def insert_into(table: str) -> Callable[[Request], bool]:
    """Requests that insert into ``table`` (any database, quoted or not)."""
    pattern = re.compile(rf"^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(?:[`\"]?\w+[`\"]?\.)?[`\"]?{re.escape(table)}[`\"]?[\s(]",
                         re.I)
    return lambda request: bool(pattern.search(request.statement))


def statement(regex: str) -> Callable[[Request], bool]:
    """Requests whose SQL matches ``regex`` (case-insensitive search)."""
    pattern = re.compile(regex, re.I)
    return lambda request: bool(pattern.search(request.statement))


@dataclass
class Fault:
    """Break ``times`` requests (None: all) that ``match``, from the ``nth`` matching one on, with ``action``."""

    action: str
    match: Callable[[Request], bool] = every
    nth: int = 1
    times: int | None = 1
    seconds: float = 0.0
    chunk: int = 1
    seen: int = field(default=0, init=False)  # matching requests so far
    hits: int = field(default=0, init=False)  # requests broken so far

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; known: {ACTIONS}")

    def claims(self, request: Request) -> bool:
        """Whether this fault takes ``request`` (counting it); called under the proxy's lock."""
        if not self.match(request):
            return False
        self.seen += 1
        if self.seen < self.nth or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


class _Stream:
    """Buffered reads from a socket that also keep the bytes read (to relay them unchanged)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            if not self._fill():
                raise EOFError
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise EOFError
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_to_end(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data


def _read_head(stream: _Stream) -> tuple[bytes, list[bytes], dict[str, str]]:
    """The start line, the raw header lines and the headers (lower-case names) of one HTTP message."""
    start = stream.readline()
    while start in (b"\r\n", b"\n"):  # tolerate stray empty lines between messages
        start = stream.readline()
    lines, headers = [start], {}
    while True:
        line = stream.readline()
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return start, lines, headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


def _read_body(stream: _Stream, headers: dict[str, str], *, until_close: bool) -> tuple[bytes, bytes]:
    """(decoded body, raw bytes) of a message whose head is ``headers``."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw, chunks = [], []
        while True:
            size_line = stream.readline()
            raw.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = stream.readline()
                    raw.append(line)
                    if line in (b"\r\n", b"\n"):
                        return b"".join(chunks), b"".join(raw)
            data = stream.read(size)
            chunks.append(data)
            raw.append(data + stream.readline())
    if "content-length" in headers:
        data = stream.read(int(headers["content-length"]))
        return data, data
    if until_close:
        data = stream.read_to_end()
        return data, data
    return b"", b""


def _forwarded(method: str, target: str, lines: list[bytes]) -> tuple[tuple[str, int] | None, str, list[bytes]]:
    """A forward proxy's request as the origin server must get it: (authority, target, head lines).

    An absolute-URL ``target`` becomes origin-form and the ``Proxy-*`` headers are dropped (they are
    for the proxy); any other request is left as it is, with a None authority.
    """
    url = urlsplit(target)
    if url.scheme.lower() != "http" or not url.hostname:
        return None, target, lines
    origin = (url.path or "/") + (f"?{url.query}" if url.query else "")
    version = lines[0].split()[2] if len(lines[0].split()) > 2 else b"HTTP/1.1"
    start = f"{method} {origin} ".encode("latin-1") + version + b"\r\n"
    kept = [line for line in lines[1:] if not line.lower().startswith(b"proxy-")]
    return (url.hostname, url.port or 80), origin, [start, *kept]


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (SO_LINGER 0), as a load balancer dropping a connection does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    """A threaded proxy on ``127.0.0.1`` to ``upstream_host:upstream_port``; see the module docstring."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str]] = []  # (action, first 120 characters of the statement)
        self.forwarded: list[str | None] = []  # Proxy-Authorization of each forward proxy's request
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._listener: socket.socket | None = None
        self.port = 0

    # -- control -----------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every connection (a request held by a fault ends with it)."""
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def inject(self, *faults: Fault) -> None:
        """Add faults; the first fault that claims a request decides its fate."""
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        """Remove every fault: requests pass from now on."""
        with self._lock:
            self.faults.clear()

    def dsn(self, server, database: str) -> str:
        """A DSN for ``server``'s credentials that goes through this proxy."""
        credentials = f"{quote(server.user, safe='')}:{quote(server.password, safe='')}"
        return f"http://{credentials}@127.0.0.1:{self.port}/{database}"

    def actions(self, action: str) -> list[str]:
        """The statements that got ``action`` so far."""
        with self._lock:
            return [text for done, text in self.log if done == action]

    # -- relaying ----------------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopped.is_set():
                sock.close()
                raise OSError("proxy stopped")
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                self._track(client)
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True).start()

    def _choose(self, request: Request) -> Fault | None:
        with self._lock:
            chosen = next((fault for fault in self.faults if fault.claims(request)), None)
            self.log.append((chosen.action if chosen else "pass", " ".join(request.statement.split())[:120]))
            return chosen

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(IDLE_SECONDS)
        upstream: socket.socket | None = None
        upstream_stream: _Stream | None = None
        upstream_at: tuple[str, int] | None = None
        stream = _Stream(client)
        try:
            while not self._stopped.is_set():
                try:
                    start, lines, headers = _read_head(stream)
                    body, raw_body = _read_body(stream, headers, until_close=False)
                except (EOFError, OSError):
                    return
                method, target = start.decode("latin-1").split()[:2]
                if method.upper() == "CONNECT":
                    refusal = b"the fault proxy does not tunnel (TLS)\n"
                    client.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                                   b"Content-Length: %d\r\n\r\n%s" % (len(refusal), refusal))
                    return
                authority, target, lines = _forwarded(method, target, lines)
                request = Request(method, target, headers, body, b"".join(lines) + raw_body, authority)
                if authority is not None:
                    with self._lock:
                        self.forwarded.append(headers.get("proxy-authorization"))
                fault = self._choose(request)
                action = fault.action if fault else "pass"
                if action == "ack":
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                                   b"Content-Length: 0\r\n\r\n")
                    continue
                if action == "delay":
                    time.sleep(fault.seconds)
                wanted = authority or self.upstream
                if upstream is not None and wanted != upstream_at:  # a forward proxy's next request elsewhere
                    self._untrack(upstream)
                    upstream = None
                if upstream is None:
                    upstream = socket.create_connection(wanted, timeout=IDLE_SECONDS)
                    upstream_at = wanted
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._track(upstream)
                    upstream_stream = _Stream(upstream)
                assert upstream_stream is not None
                upstream.sendall(request.raw)
                status, answer_lines, answer_headers = _read_head(upstream_stream)
                _, raw_answer = _read_body(upstream_stream, answer_headers,
                                           until_close="content-length" not in answer_headers
                                           and "chunked" not in answer_headers.get("transfer-encoding", ""))
                answer = b"".join(answer_lines) + raw_answer
                if action == "reset":
                    self._untrack_reset(client)
                    return
                if action == "drop":
                    try:
                        while client.recv(65536):  # silent until the client hangs up
                            pass
                    except OSError:
                        pass
                    return
                if action == "trickle":
                    for i in range(0, len(answer), max(1, fault.chunk)):
                        if self._stopped.wait(fault.seconds):
                            return
                        client.sendall(answer[i : i + max(1, fault.chunk)])
                else:
                    client.sendall(answer)
                if answer_headers.get("connection", "").lower() == "close" or status.startswith(b"HTTP/1.0"):
                    return
        except OSError:
            return
        finally:
            self._untrack(upstream)
            self._untrack(client)

    def _untrack_reset(self, client: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(client)
        _reset(client)
