"""The connection to ClickHouse: one thin layer over clickhouse-connect, embedded engine or server.

``chdb:///path`` runs ClickHouse in this process (chDB); ``http(s)://`` talks to a server. Both go
through clickhouse-connect, so the library speaks one dialect and one wire format. This module adds
only what the library needs on top: DDL applied once per process, columnar inserts with explicit
names and types, errors translated into plain words (:mod:`.diagnostics`), and what this engine
can do (:class:`Capabilities`), learnt from its error codes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

import attrs

from ..conf import Settings, get_settings
from ..core.schema import Schema, Table
from ..errors import ConfigurationError, EngineError
from . import diagnostics
from .ddl import Renderer

log = logging.getLogger(__name__)


@attrs.define
class Capabilities:
    """What this engine offers beyond plain SQL; None until an attempt has told.

    Decided by ClickHouse's error codes (:data:`.diagnostics.UNSUPPORTED`), once per connection.
    """

    #: ``DELETE ... SETTINGS lightweight_deletes_sync = 0`` (applied in the background).
    background_delete: bool | None = None
    #: ``SYSTEM JEMALLOC PURGE`` (the embedded engine handing freed memory back to the system).
    allocator_purge: bool | None = None


class Connection:
    """A connection to one ClickHouse database, shared by every sink of the process."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.target = self.settings.target
        self.renderer = Renderer(self.target.database, self.settings.cluster)
        self.capabilities = Capabilities()
        self._client: Any = None
        self._lock = threading.Lock()
        self._schemas_applied: set[object] = set()  # statements run, and ("columns", table) checked

    def __repr__(self) -> str:
        return f"<Connection {self.target.masked} database={self.target.database}>"

    @property
    def database(self) -> str:
        """The database holding the sinks' tables and views."""
        return self.target.database

    # -- connection ----------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The clickhouse-connect client, created on first use (the host starts without an engine)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
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
                    # whole seconds, rounded up, so 0.5 does not become "no timeout"
                    connect_timeout=math.ceil(self.settings.connect_timeout),
                    send_receive_timeout=math.ceil(self.settings.send_receive_timeout),
                    autogenerate_session_id=False,
                    query_retries=0,
                )
        except ImportError as exc:
            raise ConfigurationError(
                f"the embedded engine needs chDB: pip install 'clickhouse-connect[chdb]' ({exc})"
            ) from None
        except Exception as exc:
            raise self.translate(exc, "connecting") from None
        log.debug("connected to %s", self.target.masked)
        if self.settings.auto_create_schema:
            # Unqualified names in ad-hoc queries then resolve to the sinks' database.
            try:
                client.command(self.renderer.create_database())
                client.database = self.database
            except Exception as exc:
                client.close()
                raise self.translate(exc, "creating the database") from None
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
            raise self.translate(exc, sql) from exc

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows as tuples. Values go in ``parameters``, never in ``sql``."""
        try:
            return self.client.query(sql, parameters=parameters).result_rows
        except EngineError:
            raise
        except Exception as exc:
            raise self.translate(exc, sql) from exc

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
            raise self.translate(exc, f"INSERT INTO {table}") from exc
        try:
            return int(summary.written_bytes())
        except (AttributeError, TypeError, ValueError):
            return 0

    def delete(self, sql: str, parameters: dict[str, Any] | None = None, *, background: bool = True) -> None:
        """Run a lightweight ``DELETE``; with ``background``, let the engine apply it asynchronously.

        Engines that do not know ``lightweight_deletes_sync`` (an older server) say so with an error
        code; they get the plain, synchronous statement from then on.
        """
        if background and self.capabilities.background_delete is not False:
            try:
                self.command(sql + " SETTINGS lightweight_deletes_sync = 0", parameters=parameters)
            except EngineError as exc:
                if diagnostics.error_code(exc) not in diagnostics.UNSUPPORTED:
                    raise
                log.info("event_sinks: %s does not take background DELETEs; deleting synchronously (%s)",
                         self.target.masked, str(exc)[:200])
                self.capabilities.background_delete = False
            else:
                self.capabilities.background_delete = True
                return
        self.command(sql, parameters=parameters)

    def purge_allocator(self) -> None:
        """Ask the embedded engine to return the memory it freed to the system (no-op for servers).

        chDB's allocator (jemalloc) keeps freed pages for seconds, so without this the process's RSS
        would grow with every batch the engine wrote. A server's memory is not this process's.
        """
        if not self.target.embedded or self.capabilities.allocator_purge is False:
            return
        try:
            self.command("SYSTEM JEMALLOC PURGE")
        except EngineError as exc:
            if diagnostics.error_code(exc) not in diagnostics.UNSUPPORTED:
                raise
            self.capabilities.allocator_purge = False
            log.debug("event_sinks: the embedded engine does not purge its allocator (%s); not asked again", exc)
        else:
            self.capabilities.allocator_purge = True

    def translate(self, exc: BaseException, doing: str) -> EngineError:
        """A driver error as one of ours, in plain words, without the password."""
        return diagnostics.translate(exc, self.target, doing)

    # -- schema --------------------------------------------------------------------------------------

    def apply_schema(self, schema: Schema, *, force: bool = False) -> list[str]:
        """Create the database, tables and views of ``schema`` (idempotent); returns the statements.

        A table made by an older version lacks the columns added since: they are added (with their
        type's default for the rows already there) before the views, which may read them.
        """
        renderer = self.renderer
        tables = [renderer.create_database(), *(renderer.create_table(t) for t in schema.tables)]
        views = [renderer.create_view(v) for v in schema.views]
        self._run_once(tables, force)
        added = []
        for table in schema.tables:
            if force or ("columns", table) not in self._schemas_applied:
                added += self._add_missing_columns(table)
                self._schemas_applied.add(("columns", table))
        self._run_once(views, force)
        return tables + added + views

    def _run_once(self, statements: list[str], force: bool) -> None:
        for statement in statements:
            if force or statement not in self._schemas_applied:
                self.command(statement)
                self._schemas_applied.add(statement)

    def _add_missing_columns(self, table: Table) -> list[str]:
        """ALTER statements run to give an existing ``table`` the columns it lacks, in declaration order."""
        present = {row[0] for row in self.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            {"db": self.database, "t": table.name})}
        statements = []
        previous = None
        for column in table.columns:
            if column.name not in present:
                statement = self.renderer.add_column(table, column, after=previous)
                self.command(statement)
                log.info("event_sinks: added column %s (%s) to %s.%s, made by an earlier version",
                         column.name, column.type, self.database, table.name)
                statements.append(statement)
            previous = column.name
        return statements

_connections: dict[tuple, Connection] = {}
_connections_lock = threading.Lock()


def get_connection(settings: Settings | None = None) -> Connection:
    """The process-wide connection for the settings in force (one client per DSN, database, cluster)."""
    settings = settings or get_settings()
    key = (settings.dsn, settings.database, settings.cluster)
    with _connections_lock:
        connection = _connections.get(key)
        if connection is None:
            connection = _connections[key] = Connection(settings)
        return connection


def close_connections() -> None:
    """Close every connection of this process (tests, and before handing the data directory on)."""
    with _connections_lock:
        for connection in _connections.values():
            connection.close()
        _connections.clear()
