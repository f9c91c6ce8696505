"""A throwaway Redis server for tests: Debian's ``redis-server`` on a free loopback port in a temp dir.

Nothing is persisted (``--save ''``, ``--appendonly no``) and the server is the test's own child
process, stopped when the test ends::

    with RedisServer(tmp_path) as redis:
        redis.url  # redis://127.0.0.1:PORT/0

Readiness is checked by speaking RESP over a plain socket (``PING`` -> ``+PONG``), so this module
needs nothing but the standard library and the ``redis-server`` binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: How many ports to try when another process grabs the free port between our probe and redis' bind.
PORT_ATTEMPTS = 5


def redis_server_binary() -> str | None:
    """Path of the ``redis-server`` executable on PATH, or None when it is not installed."""
    return shutil.which("redis-server")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers ``PING`` on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` child process bound to ``host`` on a free port, data dir ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], *, host: str = "127.0.0.1",
                 startup_timeout: float = 10.0, stop_timeout: float = 5.0):
        self.directory = Path(directory)
        self.host = host
        self.port: int | None = None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = self.directory / "redis.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the Redis server is not started")
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """What the server wrote so far (its stdout and stderr), for failure messages."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING; raises RuntimeError when it cannot."""
        if self.running:
            return self
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        failures = []
        for _attempt in range(PORT_ATTEMPTS):
            port = free_port(self.host)
            if self._launch(binary, port):
                self.port = port
                return self
            failures.append(f"port {port}: {self.log().strip()[-500:] or 'no output'}")
        raise RuntimeError("redis-server did not start:\n" + "\n".join(failures))

    def _launch(self, binary: str, port: int) -> bool:
        command = [
            binary,
            "--bind", self.host,
            "--port", str(port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",  # log to stdout, which goes to redis.log
        ]
        with open(self._log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.directory)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:  # exited: port taken, bad option...
                return False
            if ping(self.host, port):
                return True
            time.sleep(0.05)
        self._terminate()
        return False

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(self.stop_timeout)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``stop_timeout``); safe to call twice."""
        self._terminate()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
