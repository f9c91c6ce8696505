"""The fault proxy (``fault_proxy.py``) with answers no server gives: garbage, a wrong status, a cut body.

:class:`Mangle` is a :class:`~tests.support.fault_proxy.Fault` that relays the chosen request and then
changes the server's answer before the client gets it:

``garbage``    bytes that are not HTTP at all, then the connection closed;
``body``       the status and headers kept, the body replaced by as many random bytes;
``status``     the body kept, the status line replaced (``status`` chooses it: 500, 503, 404, 302...);
``short``      the answer cut in the middle of its body, then the connection closed;
``exception``  a 200 answer whose body ends in a ClickHouse exception, as a server that fails mid-stream.
"""

from __future__ import annotations

import random
import socket
import threading
from dataclasses import dataclass

from .fault_proxy import Fault, FaultProxy

MANGLES = ("garbage", "body", "status", "short", "exception")
STATUSES = ("500 Internal Server Error", "503 Service Unavailable", "404 Not Found", "302 Found",
            "429 Too Many Requests", "401 Unauthorized", "204 No Content", "999 Nonsense")


@dataclass
class Mangle(Fault):
    """Relay the chosen request, then change its answer ``how`` (see the module docstring)."""

    action: str = "pass"
    how: str = "garbage"
    status: str = STATUSES[0]
    seed: int = 0


class HostileProxy(FaultProxy):
    """A FaultProxy whose :class:`Mangle` faults change the answers of the requests they choose."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        super().__init__(upstream_port, upstream_host)
        self._pending = threading.local()  # the Mangle chosen for the request this thread relays

    def _choose(self, request):
        chosen = super()._choose(request)
        self._pending.mangle = chosen if isinstance(chosen, Mangle) else None
        return chosen

    def _serve(self, client: socket.socket) -> None:
        super()._serve(_Mangling(client, self))

    def take_mangle(self) -> Mangle | None:
        mangle = getattr(self._pending, "mangle", None)
        self._pending.mangle = None
        return mangle


class _Mangling:
    """A client socket whose next answer is changed when the request it answers was chosen."""

    def __init__(self, sock: socket.socket, proxy: HostileProxy):
        self._sock = sock
        self._proxy = proxy

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def __hash__(self) -> int:
        return hash(self._sock)

    def __eq__(self, other) -> bool:
        return self._sock is (other._sock if isinstance(other, _Mangling) else other)

    def sendall(self, data: bytes) -> None:
        mangle = self._proxy.take_mangle()
        if mangle is None:
            self._sock.sendall(data)
            return
        rng = random.Random(mangle.seed)
        head, _, body = data.partition(b"\r\n\r\n")
        if mangle.how == "garbage":
            self._sock.sendall(rng.randbytes(rng.randint(1, 200)) + b"\r\n\r\n")
            self._close()
        elif mangle.how == "body":
            self._sock.sendall(head + b"\r\n\r\n" + rng.randbytes(len(body)))
        elif mangle.how == "status":
            lines = head.split(b"\r\n")
            lines[0] = b"HTTP/1.1 " + mangle.status.encode()
            self._sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        elif mangle.how == "short":
            self._sock.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
            self._close()
        else:  # exception: what a server failing mid-stream appends (no Content-Length: read to the close)
            lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length")]
            lines.append(b"Connection: close")
            self._sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body[: len(body) // 3] +
                               b"\nCode: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)\n")
            self._close()

    def _close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
