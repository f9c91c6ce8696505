"""Retention: delete the rows of dumps that a newer complete dump has superseded (invariant 5).

For each key, rows whose dump started before the dump of it completed last by this process are
deleted: one lightweight ``DELETE`` per 500 keys, bounded by the earliest of those dump times. Such
dumps can never become current again -- a complete dump of the key started later, and the latest
``dumped_at`` wins -- so this is safe while other dumps run, needs no look at the current dumps, and
cannot touch a complete dump that is current or could become so. The engine applies the ``DELETE``
in the background where it can (:meth:`Connection.delete`), so retention costs a dump only the statement.

The same bound compacts the ledger: the ledger rows of those keys' dumps that began before it are
deleted too, once they are :data:`LEDGER_GRACE_SECONDS` old. A dump that began earlier can never be
current again (the ledger's current dump of a key is its latest ``dumped_at``, and the bound is a dump
whose ledger row was read back), so no reader of the ledger -- the current-dumps view, the versions and
keys of current dumps, ``--resume``, a current table's fill, the Aspects sync -- answers otherwise;
:func:`.ledger.superseded` still finds the newer dump, which is never deleted. The grace keeps a row
just written (a concurrent dump that is reading its commit back, see :func:`.ledger.missing`) and the
history of the last hour (what a run's summary or an operator counts).

A run's own prune (:meth:`Retention.prune` with no keys) is **deferred** when the run was small: a
publish dumps one course, and its two DELETEs were a quarter of the engine time of a 1,000-block
dump. Its keys wait in a pool of this process (per database and sink) until :data:`DEFER_KEYS` keys
wait or the oldest has waited :data:`DEFER_SECONDS`; the next run's prune then deletes for all of them.
Readers read the current tables, so superseded ``*_dumps`` rows only take space meanwhile; keys whose
prune a process never sent (it stopped) are pruned by their next complete dump, whose bound covers
every older dump.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime

from ..clickhouse import Connection
from ..clickhouse.encoding import micros
from ..core import visibility
from ..core.schema import quote
from ..core.sink import Sink

log = logging.getLogger(__name__)

#: Keys per DELETE (they travel as an array parameter: requests stay small).
CHUNK = 500
#: How long :meth:`Retention.wait` waits for the engine by default, in seconds.
WAIT_SECONDS = 60.0
#: How old a superseded ledger row must be (its ``completed_at``, on the server clock) to be deleted.
LEDGER_GRACE_SECONDS = 3600.0
#: A run's prune is sent once this many keys of a sink wait in the process's pool...
DEFER_KEYS = 100
#: ... or once the oldest of them has waited this many seconds.
DEFER_SECONDS = 300.0


class _Pool:
    """Keys of one database and sink whose prune waits: key -> dumped_at of its last complete dump here."""

    def __init__(self) -> None:
        self.completed: dict[str, datetime] = {}
        self.since = 0.0  # monotonic time the oldest waiting key joined

    def due(self) -> bool:
        return len(self.completed) >= DEFER_KEYS or time.monotonic() - self.since >= DEFER_SECONDS


_pools: dict[tuple[str, str, str], _Pool] = {}
_pools_lock = threading.Lock()


def waiting(connection: Connection, sink: str) -> list[str]:
    """The keys of ``sink`` whose prune waits in this process (for operators and tests)."""
    with _pools_lock:
        pool = _pools.get((connection.target.masked, connection.database, sink))
        return sorted(pool.completed) if pool else []


class Retention:
    """The keys of one sink completed by this process and not yet pruned, and how to prune them."""

    def __init__(self, sink: Sink, connection: Connection):
        self.sink = sink
        self.connection = connection
        self.table = sink.table_name
        #: the tables this retention deletes from (what :meth:`wait` waits for)
        self.tables = (sink.table_name, visibility.LOG_TABLE)
        #: key -> dumped_at of the dump of it completed last (what may be pruned below)
        self.completed: dict[str, datetime] = {}

    def record(self, key: str, dumped_at: datetime) -> None:
        """Remember that a dump of ``key`` started at ``dumped_at`` is complete."""
        self.completed[key] = dumped_at

    def prune(self, keys: Iterable[str] | None = None, *, wait: bool = False) -> None:
        """Delete superseded rows and ledger rows of ``keys`` (default: every recorded key), then forget them.

        Keys with no completed dump recorded here are left alone. ``wait`` asks for synchronous
        deletes (or see :meth:`wait`). With neither, the prune may be deferred (see the module docstring).
        """
        if keys is None and not wait:
            self._defer()
            try:
                self._prune(list(self.completed), wait)
            except Exception:
                self._defer(back=True)  # what was not pruned waits again: the next run's prune retries it
                raise
            return
        self._prune(list(self.completed) if keys is None else list(dict.fromkeys(keys)), wait)

    def _prune(self, wanted: list[str], wait: bool) -> None:
        if not wanted:
            return
        known = sorted((self.completed[k], k) for k in wanted if k in self.completed)
        if len(known) < len(wanted):
            log.debug("event_sinks: %s: %d keys have no dump completed here; not pruned",
                      self.sink.name, len(wanted) - len(known))
        table = self.connection.renderer.qualified(self.table)
        key_column = quote(self.sink.key_field)
        sql = (
            f"DELETE FROM {table} WHERE {key_column} IN {{keys:Array(String)}} "  # noqa: S608 - only validated identifiers
            "AND dumped_at < fromUnixTimestamp64Micro({bound:Int64}, 'UTC')"
        )
        compact = (
            f"DELETE FROM {self.connection.renderer.qualified(visibility.LOG_TABLE)} "  # noqa: S608 - only validated identifiers
            "WHERE sink = {sink:String} AND key IN {keys:Array(String)} "
            "AND dumped_at < fromUnixTimestamp64Micro({bound:Int64}, 'UTC') "
            "AND completed_at < now64(6, 'UTC') - toIntervalMicrosecond({grace:Int64})"
        )
        grace = int(LEDGER_GRACE_SECONDS * 1_000_000)
        for start in range(0, len(known), CHUNK):
            chunk = known[start : start + CHUNK]
            params = {"keys": [k for _, k in chunk], "bound": micros(chunk[0][0])}
            self.connection.delete(sql, params, background=not wait)
            self.connection.delete(compact, {**params, "sink": self.sink.name, "grace": grace}, background=not wait)
            for _, key in chunk:  # pruned: forget them, so a long backfill holds O(batch) keys
                self.completed.pop(key, None)

    def _defer(self, *, back: bool = False) -> None:
        """Move the recorded keys to the process's pool; unless ``back``, take the whole pool when it is due."""
        with _pools_lock:
            pool = _pools.setdefault((self.connection.target.masked, self.connection.database, self.sink.name), _Pool())
            if not pool.completed:
                pool.since = time.monotonic()
            for key, dumped_at in self.completed.items():
                if key not in pool.completed or pool.completed[key] < dumped_at:
                    pool.completed[key] = dumped_at
            self.completed = {}
            if not back and pool.due():
                self.completed, pool.completed = pool.completed, {}
        if not self.completed:
            log.debug("event_sinks: %s: pruning deferred (%d keys wait)", self.sink.name, len(pool.completed))

    def wait(self, timeout: float = WAIT_SECONDS) -> bool:
        """Wait until the engine has applied every DELETE of this sink's table and the ledger; False on timeout."""
        sql = ("SELECT count() FROM system.mutations WHERE database = {db:String} AND table IN {tables:Array(String)} "
               "AND NOT is_done")
        params = {"db": self.connection.database, "tables": list(self.tables)}
        deadline = time.monotonic() + timeout
        delay = 0.01
        while self.connection.value(sql, params):
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return True
