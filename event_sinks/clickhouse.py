"""Engine access: one thin layer over clickhouse-connect, for the embedded engine and for servers.

``chdb:///path`` runs ClickHouse in this process (chDB); ``http(s)://`` talks to a server. Both go
through clickhouse-connect, so the library speaks one dialect and one wire format. This module adds
only what the library needs on top: DDL application once per process, columnar inserts with
explicit names and types, errors translated into plain words, and DSNs that never show a password.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import attrs

from .conf import Settings, get_settings
from .errors import ConfigurationError, EngineError, EngineUnavailableError
from .schema import Renderer, Schema

log = logging.getLogger(__name__)

# user:password@ up to the last "@" (an unencoded "@" in a password must not leak its tail).
_PASSWORD = re.compile(r"(?P<head>://[^:/@]*:)(?P<password>.*)@(?=[^@]*$)")


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***``: safe for logs, errors and listings.

    Also for malformed DSNs (no ``://``, unencoded ``@ / # ?`` in the password): everything before
    the last ``@`` after the user name is treated as secret.
    """
    if "://" not in dsn:
        return f"***@{dsn.rpartition('@')[2]}" if "@" in dsn else dsn
    return _PASSWORD.sub(lambda m: f"{m.group('head')}***@", dsn)


@attrs.frozen
class Target:
    """Where the engine is: parsed from the DSN, with the database resolved."""

    dsn: str = attrs.field(repr=False)
    embedded: bool
    database: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str = attrs.field(default="", repr=False)
    secure: bool = False

    @property
    def masked(self) -> str:
        return mask_dsn(self.dsn)


def parse_dsn(dsn: str, default_database: str) -> Target:
    """Split a DSN into an engine target; an http DSN's ``/database`` path wins over the setting.

    The credentials are split off at the *last* ``@`` before the URL is parsed, so a password with
    unencoded ``/ # ? @`` can neither leak into the host, port or database nor show up in an error.
    """
    if dsn.startswith("chdb:"):
        path = dsn[len("chdb:") :]
        path = path[2:] if path.startswith("//") else path
        if not path or path == "memory":
            path = ":memory:"
        return Target(dsn, True, default_database, path)
    problem = ConfigurationError(
        "EVENT_SINKS['DSN'] must be 'chdb:///path' or 'http(s)://user:password@host:port/database', "
        f"found {mask_dsn(dsn)!r}"
    )
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise problem
    userinfo, at, location = rest.rpartition("@")
    if not at:
        userinfo, location = "", rest
    try:
        parts = urlsplit(f"{scheme}://{location}")
        port = parts.port
    except ValueError:
        raise problem from None
    if not parts.hostname:
        raise problem
    user, _, password = userinfo.partition(":")
    database = unquote(parts.path.strip("/")) or default_database
    return Target(
        dsn, False, database, host=parts.hostname, port=port or (8443 if scheme == "https" else 8123),
        username=unquote(user) or "default", password=unquote(password), secure=scheme == "https",
    )


class Engine:
    """A connection to one ClickHouse database, shared by every sink of the process."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.target = parse_dsn(self.settings.dsn, self.settings.database)
        self.renderer = Renderer(self.target.database, self.settings.cluster)
        self._client = None
        self._lock = threading.Lock()
        self._schemas_applied: set[str] = set()

    def __repr__(self) -> str:
        return f"<Engine {self.target.masked} database={self.target.database}>"

    @property
    def database(self) -> str:
        return self.target.database

    # -- connection ----------------------------------------------------------------------------------

    @property
    def client(self):
        """The clickhouse-connect client, created on first use (the host starts without an engine)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self):
        import clickhouse_connect

        try:
            if self.target.embedded:
                client = clickhouse_connect.get_client(interface="chdb", path=self.target.path)
            else:
                client = clickhouse_connect.get_client(
                    interface="https" if self.target.secure else "http",
                    host=self.target.host,
                    port=self.target.port,
                    username=self.target.username,
                    password=self.target.password,
                    database="default",
                    connect_timeout=self.settings.connect_timeout,
                    send_receive_timeout=self.settings.send_receive_timeout,
                    autogenerate_session_id=False,
                    query_retries=0,
                )
        except ImportError as exc:
            raise ConfigurationError(
                f"the embedded engine needs chDB: pip install 'clickhouse-connect[chdb]' ({exc})"
            ) from None
        except Exception as exc:
            raise self._translate(exc, "connecting") from None
        log.debug("connected to %s", self.target.masked)
        if self.settings.auto_create_schema:
            # Unqualified names in ad-hoc queries then resolve to the sinks' database.
            try:
                client.command(self.renderer.create_database())
                client.database = self.database
            except Exception as exc:
                client.close()
                raise self._translate(exc, "creating the database") from None
        return client

    def close(self) -> None:
        """Release the client (for the embedded engine: the data directory lock)."""
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None

    # -- statements ----------------------------------------------------------------------------------

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (DDL, DELETE)."""
        try:
            return self.client.command(sql, parameters=parameters)
        except EngineError:
            raise
        except Exception as exc:
            raise self._translate(exc, sql) from exc

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows as tuples. Values go in ``parameters``, never in ``sql``."""
        try:
            return self.client.query(sql, parameters=parameters).result_rows
        except EngineError:
            raise
        except Exception as exc:
            raise self._translate(exc, sql) from exc

    def insert_columns(
        self, table: str, names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> int:
        """Insert column-oriented data with explicit names and types (no DESCRIBE round trip).

        Returns the bytes the engine reports written (0 when it does not say). ``DateTime64`` values
        may be datetimes or ints (ticks), which clickhouse-connect writes without converting each one.
        """
        try:
            client = self.client
            context = client.create_insert_context(
                table, column_names=list(names), database=self.database, column_type_names=list(types),
                column_oriented=True,
            )
            try:
                summary = client.insert(data=columns, context=context)
            finally:
                # clickhouse-connect's InsertContext holds a bound method of itself (a reference cycle), so
                # without this the data of every insert would stay alive until the next full garbage
                # collection -- in a dump of many batches, memory O(course) instead of O(batch).
                vars(context).pop("_next_block_data", None)
        except EngineError:
            raise
        except Exception as exc:
            raise self._translate(exc, f"INSERT INTO {table}") from exc
        try:
            return int(summary.written_bytes())
        except (AttributeError, TypeError, ValueError):
            return 0

    # -- schema --------------------------------------------------------------------------------------

    def apply_schema(self, schema: Schema, *, force: bool = False) -> list[str]:
        """Create the database, tables and views of ``schema`` (idempotent); returns the statements."""
        statements = [self.renderer.create_database(), *self.renderer.statements(schema)]
        todo = [s for s in statements if force or s not in self._schemas_applied]
        for statement in todo:
            self.command(statement)
            self._schemas_applied.add(statement)
        return statements

    # -- errors ----------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """Remove the password, as given and URL-encoded, from a message."""
        for secret in {self.target.password, quote(self.target.password, safe="")} - {""}:
            text = text.replace(secret, "***")
        return text

    def _translate(self, exc: Exception, doing: str) -> EngineError:
        """Turn a driver error into one of ours with a message an operator can act on."""
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

        text = self._scrub(mask_dsn(str(exc)))
        where = self.target.masked
        if self.target.embedded and "Unable to open the chdb engine" in text:
            if "already initialized with path" in text:
                return EngineUnavailableError(
                    f"this process already runs the embedded ClickHouse engine on another data directory, so it "
                    f"cannot open {self.target.path} (chDB allows one data directory per process). "
                    f"Engine said: {text.strip()[:300]}"
                )
            holder = _lock_holder(self.target.path)
            if holder is not None:
                return EngineUnavailableError(
                    f"the embedded ClickHouse data directory {self.target.path} is in use by another process "
                    f"({holder}); chDB allows one process per data directory. Stop that process, use another "
                    f"DATA_DIR, or point EVENT_SINKS['DSN'] at a ClickHouse server."
                )
            return EngineUnavailableError(f"the embedded ClickHouse engine could not start: {text.strip()[:500]}")
        if isinstance(exc, OperationalError) or isinstance(exc, OSError):
            return EngineUnavailableError(f"ClickHouse at {where} is unreachable while {_short(doing)}: {text}")
        if isinstance(exc, DatabaseError | ProgrammingError):
            return EngineError(f"ClickHouse at {where} refused {_short(doing)}: {text.strip()[:2000]}")
        return EngineError(f"ClickHouse at {where} failed {_short(doing)}: {type(exc).__name__}: {text}")


def _lock_holder(path: str | None) -> str | None:
    """Describe the process holding the embedded engine's data directory, or None if it is free.

    ClickHouse keeps an exclusive ``flock`` on ``<path>/status`` while it runs; chDB reports a
    second process only as "Error initializing EmbeddedServer", so we look at the lock ourselves.
    """
    import fcntl
    import os

    status = os.path.join(path or "", "status")
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        with open(status, errors="replace") as handle:
            pid = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("PID:")), "?")
        return f"PID {pid}"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _short(sql: str) -> str:
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= 120 else one_line[:117] + "..."


_engines: dict[tuple, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the settings in force (one client per DSN and database)."""
    settings = settings or get_settings()
    key = (settings.dsn, settings.database, settings.cluster)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = Engine(settings)
        return engine


def close_engines() -> None:
    """Close every engine of this process (tests, and before handing the data directory on)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.close()
        _engines.clear()
