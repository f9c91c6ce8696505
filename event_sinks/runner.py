"""The dump runner (``event_sinks.runner``; not ``dump.py``, which the public ``dump()`` function
would shadow): serialize a key, write it in batches, then make it visible in one insert.

Invariants (docs/decisions/0001-dump-visibility.rst):

1. every row of one dump carries the same ``dump_id``, ``dumped_at`` and ``source_version``;
2. a dump is visible only once complete: its ledger row is written after its last batch;
3. a retry is a new dump, so repeating one never duplicates what readers see;
4. the current view shows the latest complete dump per key (by ``dumped_at``), so rows that
   vanished from the source vanish from the view, and a tombstone removes a whole key;
5. superseded rows (dumps that started before a newer complete dump of the same key) are deleted
   right after that newer dump completes;
6. inserts name their columns and types; values are never rendered into SQL.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

import attrs

from . import ledger
from .clickhouse import Engine, get_engine
from .errors import DumpError, EngineError, EventSinksError
from .schema import quote
from .sink import Sink

log = logging.getLogger(__name__)

#: Prune statements carry their keys as an array parameter; chunk them to keep requests small.
_PRUNE_CHUNK = 500


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
    """Totals over a run of :func:`dump`, for logs and the command's final line."""

    results: list[DumpResult] = attrs.Factory(list)
    started: float = attrs.Factory(time.monotonic)
    finished: float | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def failed(self) -> list[DumpResult]:
        return [r for r in self.results if r.status == "failed"]

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

    def ensure_schema(self) -> None:
        """Create the ledger and the sink's tables and views if they are missing."""
        self.engine.apply_schema(ledger_schema() + self.sink.schema())

    # -- dumping -------------------------------------------------------------------------------------

    def dump_key(self, key: str, *, source_version: str | None = None) -> DumpResult:
        """Dump one key; raises :class:`DumpError` (the previous dump stays visible) on failure."""
        if source_version is None:
            source_version = self.sink.version(key) or ""
        return self.dump_keys([key], {key: source_version})[0]

    def dump_keys(self, keys: list[str], versions: dict[str, str]) -> list[DumpResult]:
        """Dump several keys as one dump (one dump id): for sinks with many small keys (model rows).

        The rows come from ``sink.serialize_many(keys)``; one ledger insert with a row per key
        makes all of them visible at once. Raises :class:`DumpError` if anything fails: then none
        of the keys changes in the current view.
        """
        started = time.monotonic()
        dump_id = uuid.uuid4()
        dumped_at = datetime.now(UTC)
        counts = dict.fromkeys(keys, 0)
        rows = nbytes = 0
        what = f"{self.sink.name} {keys[0]!r}" + (f" (+{len(keys) - 1} keys)" if len(keys) > 1 else "")
        try:
            source = self.sink.serialize(keys[0]) if len(keys) == 1 else self.sink.serialize_many(keys)
            for batch in _batches(self.sink.row_tuples(source), self.batch_size):
                rows += len(batch)
                nbytes += self._insert(batch, dump_id, dumped_at, versions, counts)
            self._commit(keys, dump_id, dumped_at, versions, counts, deleted=False)
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

    def _insert(self, batch: list[tuple], dump_id, dumped_at, versions: dict[str, str], counts: dict) -> int:
        n = len(batch)
        columns = [list(c) for c in zip(*batch, strict=True)] if n else [[] for _ in range(self._width)]
        if len(columns) != self._width:
            raise EventSinksError(
                f"sink {self.sink.name} yielded rows of {len(columns)} values; its row type has {self._width} fields"
            )
        key_column = columns[self._key_index]
        if len(counts) == 1:
            (only,) = counts
            if n and (key_column[0] != only or key_column[-1] != only):
                raise EventSinksError(f"sink {self.sink.name} yielded a row of key {key_column[0]!r} for {only!r}")
            counts[only] += n
            version_column = [versions.get(only, "")] * n
        else:
            for key in key_column:
                if key not in counts:
                    raise EventSinksError(f"sink {self.sink.name} yielded a row of key {key!r} it was not asked for")
                counts[key] += 1
            version_column = [versions.get(key, "") for key in key_column]
        columns += [[dump_id] * n, [dumped_at] * n, version_column]
        return self.engine.insert_columns(self.table.name, self._names, self._types, columns)

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

    def prune(self, keys: Iterable[str], before: datetime) -> None:
        """Delete rows of ``keys`` from dumps that started before ``before`` and are not current.

        Safe while other dumps run: a dump that started before ``before`` can never become current
        for a key that completed a dump at or after ``before`` (the latest ``dumped_at`` wins).
        """
        table = self.engine.renderer.qualified(self.table.name)
        current = self.engine.renderer.qualified(ledger.CURRENT_VIEW)
        key_column = quote(self.sink.key_field)
        keys = list(keys)
        for start in range(0, len(keys), _PRUNE_CHUNK):
            chunk = keys[start : start + _PRUNE_CHUNK]
            self.engine.command(
                f"DELETE FROM {table} WHERE {key_column} IN {{keys:Array(String)}} "  # noqa: S608 - only validated identifiers
                f"AND dumped_at < {{before:DateTime64(6, 'UTC')}} "
                f"AND ({key_column}, dump_id) NOT IN "
                f"(SELECT key, dump_id FROM {current} WHERE sink = {{sink:String}} AND key IN {{keys:Array(String)}})",
                parameters={"keys": chunk, "before": before, "sink": self.sink.name},
            )

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


def _batches(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        yield batch


def dump(
    sink: str | Sink,
    keys: Iterable[str] | None = None,
    *,
    engine: Engine | None = None,
    batch_size: int | None = None,
    skip_unchanged: bool = False,
    raise_errors: bool = False,
    on_result: Callable[[DumpResult], None] | None = None,
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
    summary = DumpSummary()
    before = datetime.now(UTC)
    done: list[str] = []
    if keys is not None:
        keys = list(keys)
    known = dumper.current_versions(keys) if skip_unchanged else {}
    group = max(1, sink.keys_per_dump)
    pending: dict[str, str] = {}  # key -> source version, waiting to be dumped together

    def record(result: DumpResult) -> None:
        summary.results.append(result)
        if result.status == "dumped":
            done.append(result.key)
        if on_result is not None:
            on_result(result)

    def flush() -> None:
        batch = dict(pending)
        pending.clear()
        try:
            results = dumper.dump_keys(list(batch), batch)
        except DumpError as exc:
            if raise_errors:
                raise
            results = [DumpResult(sink.name, key, "failed", error=str(exc.__cause__ or exc)) for key in batch]
        for result in results:
            record(result)

    for raw_key in sink.keys() if keys is None else keys:
        try:
            key = sink.normalize_key(raw_key)
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
        if len(pending) >= group:
            flush()
    if pending:
        flush()
    if done:
        try:
            dumper.prune(done, before)
        except EngineError as exc:  # retention is housekeeping: never fail a dump for it
            log.warning("event_sinks: pruning superseded dumps of %s failed (will retry next time): %s", sink.name, exc)
    summary.finished = time.monotonic()
    log.info("event_sinks: %s: %s", sink.name, summary)
    return summary
