"""The dump runner (``event_sinks.runner``; not ``dump.py``, which the public ``dump()`` function
would shadow): serialize a key, write it in batches, then make it visible in one insert.

Invariants (docs/decisions/0001-dump-visibility.rst):

1. every row of one dump carries the same ``dump_id``, ``dumped_at`` and ``source_version``;
2. a dump is visible only once complete: its ledger row is written after its last batch;
3. a retry is a new dump, so repeating one never duplicates what readers see;
4. the current view shows the latest complete dump per key (by ``dumped_at``), so rows that
   vanished from the source vanish from the view, and a tombstone removes a whole key;
5. superseded rows (dumps that started before a newer complete dump of the same key) are deleted
   as a run goes (every 500 dumped keys, and at its end): one lightweight DELETE per 500 keys, which
   the engine applies in the background;
6. inserts name their columns and types; values are never rendered into SQL.

Rows travel column-oriented: a sink's column batches (or its rows gathered and transposed), the dump
columns added as constants, datetimes turned into ticks once per distinct value (see
:func:`prepare_columns`), then one insert per batch.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from . import ledger
from .clickhouse import Engine, get_engine
from .errors import DumpError, EngineError, EventSinksError
from .schema import quote
from .sink import ColumnBatch, Constant, Sink

log = logging.getLogger(__name__)

#: Prune statements carry their keys as an array parameter; chunk them to keep requests small.
_PRUNE_CHUNK = 500
#: Engines (by DSN) that refused the asynchronous DELETE (a server without ``lightweight_deletes_sync``):
#: they get the plain, synchronous statement.
_SYNC_DELETE_ONLY: set[str] = set()
#: How long :meth:`Dumper.wait_for_retention` waits for the engine by default, in seconds.
RETENTION_WAIT = 60.0
#: After a dump, once a dumper has inserted this many rows into the embedded engine since it last
#: did so, it asks the engine to hand the memory it freed back to the system
#: (see :meth:`Dumper._release_engine_memory`).
RELEASE_AFTER_ROWS = 20_000
#: Embedded engines (by DSN) that refused ``SYSTEM JEMALLOC PURGE``: not asked again.
_NO_PURGE: set[str] = set()


@attrs.frozen
class DumpResult:
    """What happened to one key."""

    sink: str
    key: str
    status: str  # "dumped", "deleted", "skipped", "failed", "dry-run"
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    dump_id: uuid.UUID | None = None
    source_version: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@attrs.define
class DumpSummary:
    """Totals over a run of :func:`dump`, for logs and the command's final line.

    Counts and failures are always kept; the per-key results only with ``keep_results`` (the
    library default), so a backfill of millions of keys does not hold one result per key.
    """

    keep_results: bool = True
    results: list[DumpResult] = attrs.Factory(list)
    failed: list[DumpResult] = attrs.Factory(list)
    counts: dict[str, int] = attrs.Factory(dict)
    rows: int = 0
    bytes: int = 0
    started: float = attrs.Factory(time.monotonic)
    finished: float | None = None

    def add(self, result: DumpResult) -> None:
        """Count one key's result."""
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        self.rows += result.rows
        self.bytes += result.bytes
        if result.status == "failed":
            self.failed.append(result)
        if self.keep_results:
            self.results.append(result)

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        """Keys seen by the run, whatever happened to them."""
        return sum(self.counts.values())

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def __str__(self) -> str:
        elapsed = self.elapsed
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.count('dumped')} dumped, {self.count('deleted')} deleted, {self.count('skipped')} skipped, "
            f"{len(self.failed)} failed; {self.rows} rows, {self.bytes} bytes in {elapsed:.2f}s ({rate:,.0f} rows/s)"
        )


class Dumper:
    """Dumps keys of one sink into one engine."""

    def __init__(self, sink: Sink, engine: Engine | None = None, batch_size: int | None = None):
        self.sink = sink
        self.engine = engine or get_engine()
        self.batch_size = batch_size or self.engine.settings.batch_size
        self.table = sink.table()
        self._names = self.table.column_names
        self._types = self.table.column_types
        self._width = len(sink.field_names)
        self._key_index = sink.field_names.index(sink.key_field)
        self._scales = datetime64_scales(self._types)
        #: key -> dumped_at of the dump of it this dumper completed last (what retention may prune below)
        self._completed: dict[str, datetime] = {}
        self._unreleased_rows = 0  # rows inserted since the engine last returned freed memory

    def ensure_schema(self) -> None:
        """Create the ledger and the sink's tables and views if they are missing."""
        self.engine.apply_schema(ledger_schema() + self.sink.schema())

    # -- dumping -------------------------------------------------------------------------------------

    def dump_key(
        self, key: str, *, source_version: str | None = None, dumped_at: datetime | None = None
    ) -> DumpResult:
        """Dump one key; raises :class:`DumpError` (the previous dump stays visible) on failure.

        ``dumped_at`` is when the source was read (before ``version()``); it orders dumps, so a dump
        delayed between reading and writing never outranks a dump of newer content.
        """
        if source_version is None:
            dumped_at = datetime.now(UTC)
            source_version = self.sink.version(key) or ""
        return self.dump_keys([key], {key: source_version}, dumped_at=dumped_at)[0]

    def dump_keys(
        self, keys: list[str], versions: dict[str, str], *, dumped_at: datetime | None = None
    ) -> list[DumpResult]:
        """Dump several keys as one dump (one dump id): for sinks with many small keys (model rows).

        The rows come from ``sink.serialize_many(keys)``; one ledger insert with a row per key
        makes all of them visible at once. Raises :class:`DumpError` if anything fails: then none
        of the keys changes in the current view.
        """
        started = time.monotonic()
        dump_id = uuid.uuid4()
        dumped_at = dumped_at or datetime.now(UTC)
        counts = dict.fromkeys(keys, 0)
        rows = nbytes = 0
        what = f"{self.sink.name} {keys[0]!r}" + (f" (+{len(keys) - 1} keys)" if len(keys) > 1 else "")
        try:
            for batch in self.sink.column_batches(keys, self.batch_size):
                if batch.size:
                    rows += batch.size
                    nbytes += self._insert(batch, dump_id, dumped_at, versions, counts)
                    self._unreleased_rows += batch.size
                batch = None  # noqa: PLW2901 - let this batch go before the sink builds the next one
            self._commit(keys, dump_id, dumped_at, versions, counts, deleted=False)
            for key in keys:
                self._completed[key] = dumped_at
            if self._unreleased_rows >= RELEASE_AFTER_ROWS:
                self._release_engine_memory()
        except Exception as exc:
            log.warning(
                "event_sinks: dump of %s failed after %d rows; the previous complete dump stays visible: %s",
                what, rows, exc,
            )
            raise DumpError(f"dump of {what} failed after {rows} rows: {exc}") from exc
        seconds = time.monotonic() - started
        log.info("event_sinks: dumped %s: %d rows in %.3fs (dump %s)", what, rows, seconds, dump_id)
        share = seconds / len(keys)
        return [
            DumpResult(self.sink.name, key, "dumped", counts[key], nbytes if len(keys) == 1 else 0, share,
                       dump_id, versions.get(key, ""))
            for key in keys
        ]

    def delete_key(self, key: str) -> DumpResult:
        """Write a tombstone: the key leaves the current view (its source no longer exists)."""
        return self.delete_keys([key])[0]

    def delete_keys(self, keys: list[str]) -> list[DumpResult]:
        """Tombstones for ``keys`` in one insert."""
        dump_id = uuid.uuid4()
        self._commit(keys, dump_id, datetime.now(UTC), {}, {}, deleted=True)
        log.info("event_sinks: deleted %s %s from the current view (tombstone %s)", self.sink.name, keys, dump_id)
        return [DumpResult(self.sink.name, key, "deleted", dump_id=dump_id) for key in keys]

    def _insert(self, batch: ColumnBatch, dump_id, dumped_at, versions: dict[str, str], counts: dict) -> int:
        n = batch.size
        columns = list(batch.columns)
        if len(columns) != self._width:
            raise EventSinksError(
                f"sink {self.sink.name} yielded rows of {len(columns)} values; its row type has {self._width} fields"
            )
        key_column = columns[self._key_index]
        if len(counts) == 1:
            (only,) = counts
            if isinstance(key_column, Constant):
                wrong = key_column.value != only
            elif isinstance(key_column, list | tuple):
                wrong = key_column.count(only) != n
            else:
                wrong = key_column[0] != only or key_column[-1] != only
            if wrong:
                other = key_column.value if isinstance(key_column, Constant) else next(
                    (k for k in key_column if k != only), key_column[0])
                raise EventSinksError(f"sink {self.sink.name} yielded a row of key {other!r} for {only!r}")
            counts[only] += n
            version_column: Sequence | Constant = Constant(versions.get(only, ""))
        else:
            key_column = batch.column(self._key_index)
            for key in key_column:
                if key not in counts:
                    raise EventSinksError(f"sink {self.sink.name} yielded a row of key {key!r} it was not asked for")
                counts[key] += 1
            version_column = [versions.get(key, "") for key in key_column]
        columns += [Constant(dump_id), Constant(dumped_at), version_column]
        return self.engine.insert_columns(
            self.table.name, self._names, self._types, prepare_columns(columns, n, self._scales)
        )

    def _release_engine_memory(self) -> None:
        """After large inserts into the embedded engine, return the memory it freed to the system.

        chDB's allocator (jemalloc) keeps freed pages for seconds, so the process's RSS would grow
        with every batch the engine wrote, dump after dump. A purge costs about a millisecond, but
        the engine then faults its pages in again: done after each batch it slowed 100k-block dumps
        by 15%, so it is done once a dump is committed. A server's memory is not this process's.
        """
        self._unreleased_rows = 0
        target = self.engine.target
        if not target.embedded or target.dsn in _NO_PURGE:
            return
        try:
            self.engine.command("SYSTEM JEMALLOC PURGE")
        except EngineError as exc:
            _NO_PURGE.add(target.dsn)
            log.debug("event_sinks: the embedded engine does not purge its allocator (%s); not asked again", exc)

    def _commit(self, keys, dump_id, dumped_at, versions, counts, *, deleted: bool) -> None:
        """The insert that makes a dump visible (invariant 2): one ledger row per key, all at once."""
        n = len(keys)
        completed = datetime.now(UTC)
        self.engine.insert_columns(
            ledger.LOG_TABLE,
            ledger.LOG.column_names,
            ledger.LOG.column_types,
            [[self.sink.name] * n, list(keys), [dump_id] * n, [dumped_at] * n, [completed] * n,
             [versions.get(k, "") for k in keys], [counts.get(k, 0) for k in keys], [deleted] * n],
        )

    # -- retention -----------------------------------------------------------------------------------

    def prune(self, keys: Iterable[str], before: datetime | None = None, *, wait: bool = False) -> None:
        """Delete the rows of ``keys`` that belong to dumps superseded by a dump this dumper completed.

        For each key, rows whose dump started before the dump of it this dumper completed last (and
        before ``before``, when given) are deleted: one lightweight DELETE per 500 keys, bounded by
        the earliest of those dump times. Such dumps can never become current again -- a complete dump
        of the key started later, and the latest ``dumped_at`` wins -- so this is safe while other dumps
        run, needs no look at the current dumps, and cannot touch a complete dump that is current or
        could become so. Keys this dumper has not completed a dump of are left alone.

        The engine applies the DELETE in the background (``lightweight_deletes_sync = 0``), so retention
        costs the dump only the statement; ``wait`` (or :meth:`wait_for_retention`) waits for it.
        Servers that do not know the setting get the synchronous statement.
        """
        table = self.engine.renderer.qualified(self.table.name)
        key_column = quote(self.sink.key_field)
        keys = list(dict.fromkeys(keys))
        known = sorted((self._completed[k], k) for k in keys if k in self._completed)
        if len(known) < len(keys):
            log.debug("event_sinks: %s: %d keys have no dump completed by this dumper; not pruned",
                      self.sink.name, len(keys) - len(known))
        dsn = self.engine.target.dsn
        for start in range(0, len(known), _PRUNE_CHUNK):
            chunk = known[start : start + _PRUNE_CHUNK]
            bound = chunk[0][0] if before is None else min(chunk[0][0], before)
            sql = (
                f"DELETE FROM {table} WHERE {key_column} IN {{keys:Array(String)}} "  # noqa: S608 - only validated identifiers
                "AND dumped_at < fromUnixTimestamp64Micro({bound:Int64}, 'UTC')"
            )
            params = {"keys": [k for _, k in chunk], "bound": _micros(bound)}
            if wait or dsn in _SYNC_DELETE_ONLY:
                self.engine.command(sql, parameters=params)
                continue
            try:
                self.engine.command(sql + " SETTINGS lightweight_deletes_sync = 0", parameters=params)
            except EngineError as exc:
                text = str(exc)
                if "lightweight_deletes_sync" not in text and "SETTINGS" not in text.upper():
                    raise
                log.info("event_sinks: %s does not take asynchronous DELETEs; pruning synchronously (%s)",
                         self.engine.target.masked, text[:200])
                _SYNC_DELETE_ONLY.add(dsn)
                self.engine.command(sql, parameters=params)
        for _, key in known:  # pruned: forget them, so a long backfill holds O(batch) keys
            self._completed.pop(key, None)

    def wait_for_retention(self, timeout: float = RETENTION_WAIT) -> bool:
        """Wait until the engine has applied every DELETE of this sink's table; False on timeout."""
        sql = ("SELECT count() FROM system.mutations WHERE database = {db:String} AND table = {table:String} "
               "AND NOT is_done")
        params = {"db": self.engine.database, "table": self.table.name}
        deadline = time.monotonic() + timeout
        delay = 0.01
        while self.engine.query(sql, params)[0][0]:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return True

    # -- reading the ledger ----------------------------------------------------------------------------

    def current_versions(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """Source version of the latest complete dump per key (tombstones excluded)."""
        sql = (
            f"SELECT key, source_version FROM {self.engine.renderer.qualified(ledger.CURRENT_VIEW)} "  # noqa: S608 - only validated identifiers
            "WHERE sink = {sink:String} AND NOT deleted"
        )
        params: dict = {"sink": self.sink.name}
        if keys is not None:
            sql += " AND key IN {keys:Array(String)}"
            params["keys"] = list(keys)
        return dict(self.engine.query(sql, params))


def ledger_schema():
    """The ledger's table and view, shared by every sink."""
    from .schema import Schema

    return Schema((ledger.LOG,), (ledger.CURRENT,))


_DATETIME64 = re.compile(r"^(?:Nullable\()?DateTime64\((\d+)")


def datetime64_scales(types: Sequence[str]) -> dict[int, int]:
    """Column index -> tick scale (10 ** precision) of the ``DateTime64`` columns among ``types``."""
    scales = {}
    for i, type_name in enumerate(types):
        match = _DATETIME64.match(type_name)
        if match:
            scales[i] = 10 ** int(match.group(1))
    return scales


def prepare_columns(columns: list, n: int, scales: dict[int, int]) -> list[Sequence[Any]]:
    """Columns ready for the driver: constants repeated ``n`` times, datetimes as ticks.

    clickhouse-connect writes ``DateTime64`` values given as ints (ticks) as they are, but converts
    each datetime object on its own; here each *distinct* datetime of a column is converted once, with
    the driver's own formula (so naive datetimes keep the driver's meaning), and the column mapped.
    """
    out = []
    for i, column in enumerate(columns):
        scale = scales.get(i)
        if isinstance(column, Constant):
            value = column.value
            if scale is not None and type(value) is datetime and _driver_uses_timestamp(value):
                value = _ticks(value, scale)
            out.append([value] * n)
        elif scale is not None:
            out.append(_tick_column(column, scale))
        else:
            out.append(column)
    return out


def _driver_uses_timestamp(value: datetime) -> bool:
    """Whether the driver would write ``value`` with ``value.timestamp()`` (unless told to use the server's zone)."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return True
    from clickhouse_connect import common

    return common.get_setting("naive_datetime_insert") != "server"


def _ticks(value: datetime, scale: int) -> int:
    """clickhouse-connect's ``DateTime64._datetime64_ticks`` for a plain datetime, outside server mode."""
    return ((math.floor(value.timestamp()) * 1_000_000 + value.microsecond) * scale) // 1_000_000


def _tick_column(column: Sequence[Any], scale: int) -> Sequence[Any]:
    """A column of datetimes (and None) as ticks; anything else is left to the driver."""
    ticks: dict[Any, Any] = {None: None}
    try:
        distinct = set(column)
    except TypeError:  # unhashable values: not datetimes
        return column
    for value in distinct:
        if value is None:
            continue
        if type(value) is not datetime or not _driver_uses_timestamp(value):
            return column  # ints already, strings, pandas timestamps...: the driver knows them
        ticks[value] = _ticks(value, scale)
    return list(map(ticks.__getitem__, column))


def _micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime.resolution


def dump(
    sink: str | Sink,
    keys: Iterable[str] | None = None,
    *,
    engine: Engine | None = None,
    batch_size: int | None = None,
    skip_unchanged: bool = False,
    raise_errors: bool = False,
    on_result: Callable[[DumpResult], None] | None = None,
    keep_results: bool = True,
) -> DumpSummary:
    """Dump ``keys`` of ``sink`` (all of ``sink.keys()`` when None) and return the summary.

    The library entry point for other plugins: ``dump("course_outline", keys=[...])``. A failing
    key is reported in the summary and the others go on, unless ``raise_errors`` is set.
    """
    from .registry import get_sink

    sink = get_sink(sink) if isinstance(sink, str) else sink
    dumper = Dumper(sink, engine, batch_size)
    if dumper.engine.settings.auto_create_schema:
        dumper.ensure_schema()
    summary = DumpSummary(keep_results=keep_results)
    done: list[str] = []  # dumped keys not yet pruned; pruned every _PRUNE_CHUNK keys to stay O(batch)
    if keys is not None:
        keys = list(keys)
    known = dumper.current_versions(keys) if skip_unchanged else {}
    group = max(1, sink.keys_per_dump)
    pending: dict[str, str] = {}  # key -> source version, waiting to be dumped together
    read_at: list[datetime] = []  # when each pending key's source was read

    def prune() -> None:
        try:
            dumper.prune(done)
        except EngineError as exc:  # retention is housekeeping: never fail a dump for it
            log.warning("event_sinks: pruning superseded dumps of %s failed (will retry next time): %s", sink.name, exc)
        done.clear()

    def record(result: DumpResult) -> None:
        summary.add(result)
        if result.status == "dumped":
            done.append(result.key)
            if len(done) >= max(_PRUNE_CHUNK, group):
                prune()
        if on_result is not None:
            on_result(result)

    def flush() -> None:
        batch, first_read = dict(pending), min(read_at)
        pending.clear()
        read_at.clear()
        try:
            results = dumper.dump_keys(list(batch), batch, dumped_at=first_read)
        except DumpError as exc:
            if raise_errors:
                raise
            results = [DumpResult(sink.name, key, "failed", error=str(exc.__cause__ or exc)) for key in batch]
        for result in results:
            record(result)

    for raw_key in sink.keys() if keys is None else keys:
        try:
            key = sink.normalize_key(raw_key)
            reading = datetime.now(UTC)  # before the source is read: this orders the dump
            version = sink.version(key) or ""
        except Exception as exc:
            if raise_errors:
                raise
            log.warning("event_sinks: %s %r failed: %s: %s", sink.name, raw_key, type(exc).__name__, exc)
            record(DumpResult(sink.name, str(raw_key), "failed", error=f"{type(exc).__name__}: {exc}"))
            continue
        if skip_unchanged and version and known.get(key) == version:
            record(DumpResult(sink.name, key, "skipped", source_version=version))
            continue
        pending[key] = version
        read_at.append(reading)
        if len(pending) >= group:
            flush()
    if pending:
        flush()
    if done:
        prune()
    summary.finished = time.monotonic()
    log.info("event_sinks: %s: %s", sink.name, summary)
    return summary
