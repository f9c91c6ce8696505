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
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from ..conf.dsn import mask_dsn, mask_secrets
from ..errors import ConfigurationError

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
def apart(seconds: float) -> Iterator[TimeLimit]:
    """A time limit of its own inside another (housekeeping after a run's dumps: not drawn from theirs)."""
    outer = current_limit()
    limit = TimeLimit(seconds)
    _local.limit = limit
    try:
        yield limit
    finally:
        _local.limit = outer


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
    Each socket urllib3 opens is switched to a subclass that adds the deadline and nothing else: the
    plain socket as soon as it is connected (so a proxy's ``CONNECT`` answer is bounded too), and the
    TLS socket once the handshake is done -- for TLS inside a proxy's TLS tunnel, the socket it runs on.
    """
    import socket
    import ssl

    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    try:
        from urllib3.util.ssltransport import SSLTransport

        tunnelled: tuple[type, ...] = (SSLTransport,)
    except ImportError:  # an urllib3 without TLS-in-TLS
        tunnelled = ()

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

    def bound(sock: Any) -> None:
        kind = bounded.get(type(sock))
        if kind is not None:
            sock.__class__ = kind
        elif isinstance(sock, tunnelled):
            bound(getattr(sock, "socket", None))  # its reads and writes are those of the TLS socket to the proxy

    class BoundedConnection:
        timeout: Any
        sock: Any

        def _new_conn(self) -> Any:
            sock = super()._new_conn()  # type: ignore[misc]
            bound(sock)
            return sock

        def connect(self) -> None:
            deadline = request_deadline()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("DUMP_TIMEOUT ran out")
                if not isinstance(self.timeout, int | float) or self.timeout > left:
                    self.timeout = left
            super().connect()  # type: ignore[misc]
            bound(self.sock)

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

    Through the HTTP proxy the environment names for the server (``HTTP_PROXY``/``HTTPS_PROXY``, less
    ``NO_PROXY``, read as the driver reads them) when there is one: a proxy manager whose sockets
    keep the time limit, and which gives the proxy the credentials its URL holds. None only when the
    driver lacks the helpers: time limits are then checked between requests and by the server
    (``max_execution_time``) only. Raises :class:`ConfigurationError` naming the variable when the
    proxy it names is no HTTP proxy.
    """
    try:
        from clickhouse_connect.driver.httputil import check_env_proxy, get_pool_manager_options
        from urllib3 import PoolManager
    except ImportError:
        return None
    scheme = "https" if target.secure else "http"
    proxy = check_env_proxy(scheme, target.host, target.port)
    options = get_pool_manager_options()
    manager = PoolManager(**options) if not proxy else _proxy_manager(scheme, proxy, target, options)
    manager.pool_classes_by_scheme = _bounded_pools()
    return manager


def _proxy_manager(scheme: str, proxy: str, target: Any, options: dict[str, Any]) -> Any:
    """urllib3's proxy manager for ``proxy`` (the value of ``SCHEME_proxy``), as the driver would make it."""
    from urllib3 import ProxyManager
    from urllib3.util import make_headers, parse_url

    variable = next((name for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY") if os.environ.get(name) == proxy),
                    f"{scheme.upper()}_PROXY")
    url = proxy if "://" in proxy else f"{scheme}://{proxy}"  # no scheme: read as the driver reads it
    try:
        auth = parse_url(url).auth
        headers = make_headers(proxy_basic_auth=unquote(auth)) if auth else None
        return ProxyManager(url, proxy_headers=headers, **options)
    except Exception as exc:  # an unknown scheme (socks5://), a malformed host or port
        raise ConfigurationError(
            f"{variable} (the environment variable) is {mask_dsn(proxy)!r}, which names no HTTP proxy for "
            f"ClickHouse at {target.host}:{target.port} ({type(exc).__name__}: {mask_secrets(str(exc), url)}); "
            f"expected http://[user:password@]host:port, or add {target.host} to NO_PROXY to reach the server "
            "directly"
        ) from None
