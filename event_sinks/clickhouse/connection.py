"""The connection to ClickHouse: one thin layer over clickhouse-connect, embedded engine or server.

``chdb:///path`` runs ClickHouse in this process (chDB); ``http(s)://`` talks to a server. Both go
through clickhouse-connect, so the library speaks one dialect and one wire format. This module adds
only what the library needs on top: DDL that writes nothing already defined, columnar inserts with
explicit names and types that a replay cannot duplicate, errors translated into plain words
(:mod:`.diagnostics`), the server's clock (:mod:`.clock`, which orders dumps), one time limit per
dump over all its requests (:mod:`.deadline`), and what this engine can do (:class:`Capabilities`),
learnt from its error codes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import attrs

from ..conf import Settings, get_settings
from ..core import ownership
from ..core.schema import Schema, Table, View, quote
from ..errors import ConfigurationError, EngineError, EngineUnavailableError
from . import deadline, diagnostics
from .clock import ServerClock
from .ddl import DEDUPLICATION_SETTING, FINAL_SKIP_SETTING, Renderer
from .deadline import TimeLimit
from .one_part import one_part_settings

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
    #: ``insert_deduplication_token`` and friends on inserts (:meth:`Connection.insert_columns`).
    insert_tokens: bool | None = None
    #: ``max_execution_time`` on the statements of a dump (a settings profile may forbid changing it).
    execution_limit: bool | None = None
    #: :data:`.ddl.FINAL_SKIP_SETTING` (recent servers have it; older ones refuse a view naming it): learnt
    #: from ``system.settings`` when a view is to be written.
    final_skip_setting: bool | None = None


class Connection:
    """A connection to one ClickHouse database, shared by every sink of the process."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.target = self.settings.target
        self.renderer = Renderer(self.target.database, self.settings.cluster)
        self.capabilities = Capabilities()
        self._client: Any = None
        self._pool: Any = None
        self._lock = threading.Lock()
        self._schemas_applied: set[object] = set()  # statements run, and ("table"/"view", object) checked
        self.clock = ServerClock(self._read_server_clock, self.target.masked)

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

        diagnostics.quiet_driver_tracebacks()  # the loggers defined so far; the rest once connected
        try:
            if self.target.embedded:
                client = clickhouse_connect.get_client(interface="chdb", path=self.target.path)
            else:
                self._pool = self._pool or deadline.bounded_pool_manager(self.target)
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
                    **({"pool_mgr": self._pool} if self._pool is not None else {}),
                )
        except ImportError as exc:
            raise ConfigurationError(
                f"the embedded engine needs chDB: pip install 'clickhouse-connect[chdb]' ({exc})"
            ) from None
        except ConfigurationError:  # the proxy the environment names (deadline.bounded_pool_manager)
            raise
        except Exception as exc:
            raise self.translate(exc, "connecting") from None
        diagnostics.quiet_driver_tracebacks()
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
            try:
                if self._client is not None:
                    self._client.close()
            finally:
                self._client = None
                if self._pool is not None:
                    self._pool.clear()
                    self._pool = None

    # -- statements ----------------------------------------------------------------------------------

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (DDL, DELETE)."""
        return self._run(sql, lambda settings: self.client.command(sql, parameters=parameters, settings=settings))

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows as tuples. Values go in ``parameters``, never in ``sql``."""
        return self._run(sql, lambda settings: self.client.query(sql, parameters=parameters,
                                                                 settings=settings).result_rows)

    def value(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """The one value a SELECT answers (``count()``, ``EXISTS``); an engine error when no row came back.

        A server always answers such a query with a row: none means something between this host and
        the server (a proxy, a gateway) answered in its place.
        """
        rows = self.query(sql, parameters)
        if not rows or not rows[0]:
            raise EngineUnavailableError(
                f"ClickHouse at {self.target.masked} answered {diagnostics.short(sql)} with no row: something "
                "between this host and the server (a proxy, a gateway) answers in its place")
        return rows[0][0]

    def insert_columns(
        self, table: str, names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]],
        *, token: str | None = None,
    ) -> int:
        """Insert column-oriented data with explicit names and types (no DESCRIBE round trip).

        Returns the bytes the engine reports written (0 when it does not say). ``DateTime64`` values
        may be datetimes or ints (ticks), which clickhouse-connect writes without converting each one.
        With a ``token`` (unique to this data), the insert is idempotent: the driver sends an insert
        again when the connection died before its answer, and the table drops a second arrival
        (:data:`.ddl.DEDUPLICATION_WINDOW`); it is also applied before the answer (no async insert).
        """
        settings: dict[str, Any] = {}
        if token is not None and self.capabilities.insert_tokens is not False:
            settings = {"insert_deduplication_token": token, "insert_deduplicate": 1, "async_insert": 0}

        def insert(settings: dict[str, Any]) -> Any:
            client = self.client
            context = client.create_insert_context(
                table, column_names=list(names), database=self.database, column_type_names=list(types),
                column_oriented=True, settings=settings or None,
            )
            try:
                return client.insert(data=columns, context=context)
            finally:
                # clickhouse-connect's InsertContext holds a bound method of itself (a reference cycle), so
                # without this the data of every insert would stay alive until the next full garbage
                # collection -- in a dump of many batches, memory O(course) instead of O(batch).
                vars(context).pop("_next_block_data", None)

        doing = f"INSERT INTO {table}"
        try:
            summary = self._run(doing, lambda _: insert(settings), server_limit=False)
        except EngineError as exc:
            if not settings or diagnostics.error_code(exc) not in diagnostics.SETTING_REFUSED:
                raise
            log.warning("event_sinks: %s refuses deduplication tokens on inserts; an insert the driver replays "
                        "is then caught by the row count check of each dump (%s)", self.target.masked, str(exc)[:200])
            self.capabilities.insert_tokens = False
            summary = self._run(doing, lambda _: insert({}), server_limit=False)
        else:
            if settings:
                self.capabilities.insert_tokens = True
        try:
            return int(summary.written_bytes())
        except (AttributeError, TypeError, ValueError):
            return 0

    def _run(self, doing: str, call: Callable[[dict[str, Any]], Any], *, server_limit: bool = True) -> Any:
        """One engine request: drawn from this thread's time limit, its driver errors translated.

        Within a dump's time limit a server also gets ``max_execution_time`` (what is left), unless
        it refused that once (a settings profile's constraint); the request is then sent without it.
        """
        with self._request(doing) as limit, diagnostics.reporting():
            settings = {}
            if (server_limit and limit is not None and not self.target.embedded
                    and self.capabilities.execution_limit is not False):
                settings = {"max_execution_time": max(1, math.ceil(limit.left))}
            try:
                try:
                    return call(settings)
                except Exception as exc:
                    if not settings or diagnostics.error_code(exc) not in diagnostics.SETTING_REFUSED:
                        raise
                    log.info("event_sinks: %s does not take max_execution_time; dumps are bounded on this side "
                             "only (%s)", self.target.masked, str(exc)[:200])
                    self.capabilities.execution_limit = False
                    return call({})
            except Exception as exc:
                failure = self._failure(exc, doing, limit)
                if failure is exc:
                    raise
                raise failure from exc

    @contextmanager
    def _request(self, doing: str) -> Iterator[TimeLimit | None]:
        limit = deadline.current_limit()
        if limit is None:
            yield None
            return
        if limit.left <= 0:
            raise self._timed_out(limit, doing, "no time was left for it")
        with deadline.enforced(limit):
            yield limit

    def _failure(self, exc: Exception, doing: str, limit: TimeLimit | None) -> Exception:
        """What to raise for ``exc``: the time limit's error once it ran out, else the translated error.

        A :class:`ConfigurationError` (met while connecting: no chDB, a bad proxy) is raised as it is:
        the settings are at fault, not the engine, and trying again would not help.
        """
        if isinstance(exc, ConfigurationError):
            return exc
        translated = exc if isinstance(exc, EngineError) else self.translate(exc, doing)
        ends = deadline.request_deadline()
        if limit is not None and ends is not None and (
                time.monotonic() >= ends - 0.01 or diagnostics.error_code(exc) == diagnostics.TIMEOUT_EXCEEDED):
            return self._timed_out(limit, doing, str(translated))
        return translated

    def _timed_out(self, limit: TimeLimit, doing: str, detail: str) -> EngineUnavailableError:
        return EngineUnavailableError(
            f"ClickHouse at {self.target.masked} took longer than DUMP_TIMEOUT ({limit.seconds:g} s of waiting "
            f"for the engine per dump) while {diagnostics.short(doing)}: the server is too slow, or something "
            f"between it and this host holds its answers back ({diagnostics.short(detail)})"
        )

    @contextmanager
    def time_limit(self, seconds: float | None = None) -> Iterator[TimeLimit]:
        """Bound the engine time of the requests this thread makes inside to ``seconds`` (DUMP_TIMEOUT).

        Inside another time limit this one is that limit: all the statements of one dump draw on one
        DUMP_TIMEOUT, whichever layer opened it (:func:`.deadline.limited`).
        """
        with deadline.limited(self.settings.dump_timeout if seconds is None else seconds) as limit:
            yield limit

    def server_time(self) -> datetime:
        """The server's clock now, in UTC: what orders dumps (:class:`ServerClock`)."""
        return self.clock.now()

    def _read_server_clock(self) -> tuple[datetime, float, float]:
        """The server's clock, and the monotonic times just before and after the query that read it."""
        self._run("connecting", lambda _: self.client)  # connected first: the round trip is the query's alone
        before = time.monotonic()
        asked = "SELECT now64(6, 'UTC')"
        rows = self.query(asked)
        after = time.monotonic()
        value = rows[0][0] if rows and rows[0] else None
        if not isinstance(value, datetime):
            # A gateway or proxy acknowledging in the server's place: no row, or not a time.
            got = "no row" if value is None else f"{type(value).__name__} {str(value)[:60]!r}"
            raise EngineUnavailableError(
                f"ClickHouse at {self.target.masked} answered {asked} with {got}, not its clock: something "
                f"between this host and the server (a proxy, a gateway) answers in its place; no dump was written")
        return value, before, after

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
        """Create what ``schema`` lacks and bring the rest to its definition; returns the statements run.

        Nothing that already has its definition is written again: a view is replaced only when the
        definition marker in its comment (:meth:`Renderer.view_comment`) differs, since every rewrite
        of the engine's metadata can leave a damaged file behind on a full disk, and the embedded engine
        does not start again with one (:func:`.diagnostics.damaged_metadata`). A table made by an older
        version gains the columns and the deduplication window added since, before the views that read
        them. Checked once per connection (``force``: again).
        """
        renderer = self.renderer
        owned = ("owned", tuple(ownership.names(schema)))
        if force or owned not in self._schemas_applied:  # never replace or alter what is not ours
            ownership.refuse_foreign(self.query, self.database, schema)
            self._schemas_applied.add(owned)
        derived = [t for t in schema.tables if t.fill and (force or ("table", t) not in self._schemas_applied)]
        existing = self._present([t.name for t in derived]) if derived else {}
        ran = self._run_once([renderer.create_database(), *(renderer.create_table(t) for t in schema.tables)],
                             force)
        tables = [t for t in schema.tables if force or ("table", t) not in self._schemas_applied]
        views = [v for v in schema.views if force or ("view", v) not in self._schemas_applied]
        if not tables and not views:
            return ran
        present = self._present([t.name for t in tables] + [v.name for v in views])
        for table in tables:
            ran += self._upgrade_table(table, present.get(table.name))
            self._schemas_applied.add(("table", table))
        for table in derived:  # after the upgrades: they read the tables an earlier version wrote
            if table.name not in existing:  # new beside the tables an earlier version wrote: filled from them
                ran += self._fill(table)
        if self.capabilities.final_skip_setting is None and any(
                not self._defined(view, present.get(view.name)) for view in views):
            self._learn_final_settings()  # only when a view is to be written: a view in place says it already
        for view in views:
            ran += self._define_view(view, present.get(view.name))
            self._schemas_applied.add(("view", view))
        return ran

    def _learn_final_settings(self) -> None:
        """Whether views may name :data:`.ddl.FINAL_SKIP_SETTING`; an engine without it renders them without."""
        known = bool(self.value("SELECT count() FROM system.settings WHERE name = {name:String}",
                                {"name": FINAL_SKIP_SETTING}))
        self.capabilities.final_skip_setting = known
        if not known:
            log.info("event_sinks: %s has no %s; views read the current tables FINAL with its default",
                     self.target.masked, FINAL_SKIP_SETTING)
            self.renderer = attrs.evolve(self.renderer, final_skip_setting=False)

    def _fill(self, table: Table) -> list[str]:
        """Give a table just created its starting rows (:attr:`Table.fill`), in one part."""
        columns = ", ".join(quote(c) for c in table.column_names)
        select = table.fill.replace("{db}", quote(self.database))
        statement = f"INSERT INTO {self.renderer.qualified(table.name)} ({columns})\n{one_part_settings()}\n{select}"
        try:
            self.command(statement, {"token": f"fill-{table.name}"})
        except EngineError as exc:
            if "UNKNOWN_TABLE" not in str(exc):
                raise
            return []  # a new database: nothing to fill from
        log.info("event_sinks: %s.%s filled from the dumps an earlier version wrote", self.database, table.name)
        return [statement]

    def _run_once(self, statements: list[str], force: bool) -> list[str]:
        ran = []
        for statement in statements:
            if force or statement not in self._schemas_applied:
                self.command(statement)
                self._schemas_applied.add(statement)
                ran.append(statement)
        return ran

    def _present(self, names: list[str]) -> dict[str, tuple[str, str, str]]:
        """name -> (engine, engine_full, comment) of the tables and views of ``names`` that exist."""
        rows = self.query(
            "SELECT name, engine, engine_full, comment FROM system.tables "
            "WHERE database = {db:String} AND name IN {names:Array(String)}",
            {"db": self.database, "names": names})
        return {name: (engine, full, comment) for name, engine, full, comment in rows}

    def _upgrade_table(self, table: Table, present: tuple[str, str, str] | None) -> list[str]:
        """ALTER statements run to give an existing ``table`` what this version adds to its definition."""
        statements = self._add_missing_columns(table)
        if present is not None:
            engine, full, _ = present
            if not engine.startswith("Replicated") and not self.renderer.replicated(table) \
                    and DEDUPLICATION_SETTING not in full:
                statement = self.renderer.add_deduplication(table)
                self.command(statement)
                log.info("event_sinks: %s.%s, made by an earlier version, now deduplicates replayed inserts",
                         self.database, table.name)
                statements.append(statement)
        return statements

    def _defined(self, view: View, present: tuple[str, str, str] | None) -> bool:
        """Whether ``view`` exists with the definition this renderer gives it (its comment's marker)."""
        return present is not None and present[2] == self.renderer.view_comment(view)

    def _define_view(self, view: View, present: tuple[str, str, str] | None) -> list[str]:
        """(Re)create ``view`` unless it already has its definition; returns the statement run, if any."""
        if self._defined(view, present):
            return []
        statement = self.renderer.create_view(view)
        self.command(statement)
        return [statement]

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
