"""One time limit per dump (DUMP_TIMEOUT), over all the engine requests of the dump, enforced on the wire.

A publish makes some twenty requests, each with the driver's own timeouts, and the driver's read
timeout is per ``recv``: a slow server (each answer just under the timeout) or one that trickles
its answers a byte at a time held a dump many times its documented bound. So a dump has one
:class:`TimeLimit`, which every request draws on; the request in flight has a deadline (what is
left), and the sockets of server connections honour it on every read and write
(:func:`bounded_pool_manager`), whether they reach the server directly or through an HTTP proxy.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Per thread: ``limit``, the :class:`TimeLimit` of the dump it runs, and ``deadline``, when the
#: request it has in flight must be over (monotonic seconds); read by the sockets of server connections.
_local = threading.local()


class TimeLimit:
    """What is left of one dump's DUMP_TIMEOUT: the time it may still spend waiting for the engine.

    Only the engine's requests draw on it (reading the source is the source's time, not the
    engine's), so a slow server, or one that trickles its answers, fails the dump once ``seconds``
    are spent, however many requests it took: each request may use what is left, checked before it
    starts, sent to servers as ``max_execution_time``, and enforced on every read and write of its
    socket (a per-read timeout alone never ends a trickle).
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.left = seconds

    def renew(self) -> None:
        """Another dump starts: the full time again."""
        self.left = self.seconds


def current_limit() -> TimeLimit | None:
    """The time limit of the dump this thread runs, if any."""
    return getattr(_local, "limit", None)


@contextmanager
def limited(seconds: float) -> Iterator[TimeLimit]:
    """Bound the engine time of the requests this thread makes inside to ``seconds``.

    Inside another time limit this one is that limit: all the statements of one dump draw on one
    DUMP_TIMEOUT, whichever layer opened it.
    """
    outer = current_limit()
    if outer is not None:
        yield outer
        return
    limit = TimeLimit(seconds)
    _local.limit = limit
    try:
        yield limit
    finally:
        _local.limit = None


@contextmanager
def enforced(limit: TimeLimit) -> Iterator[None]:
    """One request made inside, which must end by what is left of ``limit``; its time is drawn from it."""
    started = time.monotonic()
    _local.deadline = started + limit.left
    try:
        yield
    finally:
        _local.deadline = None
        limit.left -= time.monotonic() - started


def request_deadline() -> float | None:
    """When the request this thread has in flight must be over (monotonic seconds), if it has a deadline."""
    return getattr(_local, "deadline", None)


def _within_deadline(sock: Any, operation: Callable[..., Any], *args: Any) -> Any:
    """Run one socket read or write so that it ends by the deadline of the request in flight."""
    deadline = request_deadline()
    if deadline is None:
        return operation(*args)
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("DUMP_TIMEOUT ran out")
    previous = sock.gettimeout()
    sock.settimeout(left if previous is None else min(previous, left))
    try:
        return operation(*args)
    finally:
        try:
            sock.settimeout(previous)
        except OSError:  # closed meanwhile
            pass


@functools.cache
def _bounded_pools() -> dict[str, Any]:
    """urllib3 pool classes whose connections honour :func:`_within_deadline` on every socket operation.

    Built on first use (urllib3 comes with clickhouse-connect, imported only when a server is used).
    The socket urllib3 opened is switched to a subclass that adds the deadline and nothing else.
    """
    import socket
    import ssl

    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Bounded:
        __slots__ = ()

        def recv(self, *args: Any) -> Any:
            return _within_deadline(self, super().recv, *args)  # type: ignore[misc]

        def recv_into(self, *args: Any) -> Any:
            return _within_deadline(self, super().recv_into, *args)  # type: ignore[misc]

        def send(self, *args: Any) -> Any:
            return _within_deadline(self, super().send, *args)  # type: ignore[misc]

        def sendall(self, *args: Any) -> Any:
            return _within_deadline(self, super().sendall, *args)  # type: ignore[misc]

    class BoundedSocket(Bounded, socket.socket):
        __slots__ = ()

    class BoundedSSLSocket(Bounded, ssl.SSLSocket):
        pass

    bounded = {socket.socket: BoundedSocket, ssl.SSLSocket: BoundedSSLSocket}

    class BoundedConnection:
        timeout: Any
        sock: Any

        def connect(self) -> None:
            deadline = request_deadline()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("DUMP_TIMEOUT ran out")
                if not isinstance(self.timeout, int | float) or self.timeout > left:
                    self.timeout = left
            super().connect()  # type: ignore[misc]
            kind = bounded.get(type(self.sock))
            if kind is not None:
                self.sock.__class__ = kind

    class BoundedHTTPConnection(BoundedConnection, HTTPConnection):
        pass

    class BoundedHTTPSConnection(BoundedConnection, HTTPSConnection):
        pass

    class BoundedHTTPPool(HTTPConnectionPool):
        ConnectionCls = BoundedHTTPConnection

    class BoundedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = BoundedHTTPSConnection

    return {"http": BoundedHTTPPool, "https": BoundedHTTPSPool}


def bounded_pool_manager(target: Any) -> Any:
    """A pool manager for one server whose sockets keep the time limit; None where it cannot be had.

    None when the environment routes the server through an HTTP proxy (the driver's own proxy
    manager is used then) or the driver lacks the helpers: time limits are then checked between
    requests and by the server (``max_execution_time``) only.
    """
    try:
        from clickhouse_connect.driver.httputil import check_env_proxy, get_pool_manager_options
        from urllib3 import PoolManager
    except ImportError:
        return None
    if check_env_proxy("https" if target.secure else "http", target.host, target.port):
        return None
    manager = PoolManager(**get_pool_manager_options())
    manager.pool_classes_by_scheme = _bounded_pools()
    return manager
