"""The dumper: serialize keys of one sink, write their rows in batches, then commit them in one insert.

Invariants (docs/decisions/0001-dump-visibility.rst):

1. every row of one dump carries the same ``dump_id``, ``dumped_at`` and ``source_version``;
2. a dump is visible only once complete: after its last batch, and only once the engine holds exactly
   the rows the dump sent (a batch the driver replayed after a lost answer is dropped by its token;
   one counted twice, or lost, fails the dump), it is copied into the current table in one part
   (:mod:`.current`), then its ledger row is written;
3. a retry is a new dump, so repeating one never duplicates what readers see;
4. the current view shows the latest complete dump per key (by ``dumped_at``, the server's clock
   when the dump began reading: :class:`~event_sinks.clickhouse.connection.ServerClock`), so rows
   that vanished from the source vanish from the view, and a tombstone removes a whole key;
5. superseded rows are deleted as a run goes (:mod:`.retention`), once the commit is read back;
6. inserts name their columns and types; values are never rendered into SQL.

All the engine requests of one dump share one DUMP_TIMEOUT (:meth:`Connection.time_limit`).

Rows travel column-oriented: a sink's column batches (or its rows gathered and transposed), the dump
columns added as constants, datetimes encoded once per distinct value (:mod:`event_sinks.clickhouse.encoding`),
then one insert per batch.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from .. import aspects
from ..clickhouse import Connection, deadline, get_connection
from ..clickhouse.encoding import datetime64_scales, micros, prepare_columns
from ..core import visibility
from ..core.columns import ColumnBatch, Constant
from ..core.schema import quote
from ..core.sink import Sink
from ..errors import DumpError, EngineError, EventSinksError
from . import ledger
from .current import MERGE_AFTER_KEYS, MERGE_TIMEOUT, CurrentTable
from .results import DumpResult
from .retention import Retention

log = logging.getLogger(__name__)

#: Once a dumper has inserted this many rows into the embedded engine since it last did so, it asks
#: the engine to hand the memory it freed back to the system after the next commit. A purge costs
#: about a millisecond, but the engine then faults its pages in again: done after each batch it
#: slowed 100k-block dumps by 15%, so it is done once a dump is committed.
RELEASE_AFTER_ROWS = 20_000


class Dumper:
    """Dumps keys of one sink through one connection."""

    def __init__(self, sink: Sink, connection: Connection | None = None, batch_size: int | None = None):
        self.sink = sink
        self.connection = connection or get_connection()
        self.batch_size = batch_size or self.connection.settings.batch_size
        self.table = sink.table()
        self.retention = Retention(sink, self.connection)
        self.current = CurrentTable(sink, self.connection)
        self._names = self.table.column_names
        self._types = self.table.column_types
        self._width = len(sink.field_names)
        self._key_index = sink.field_names.index(sink.key_field)
        self._scales = datetime64_scales(self._types)
        self._unreleased_rows = 0  # rows inserted since the engine last returned freed memory

    def ensure_schema(self) -> None:
        """Create the ledger and the sink's tables and views if they are missing."""
        self.connection.apply_schema(visibility.ledger_schema() + self.sink.schema())

    def current_versions(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """Source version of the latest complete dump per key (tombstones excluded)."""
        return ledger.current_versions(self.connection, self.sink.name, keys)

    # -- dumping -------------------------------------------------------------------------------------

    def dump_key(self, key: str) -> DumpResult:
        """Dump one key as it is now (version read first, then the rows); raises :class:`DumpError`."""
        with self.sink.job(), self.connection.time_limit():
            dumped_at = self.connection.server_time()  # before the source is read: this orders the dump
            return self.dump_keys([key], {key: self.sink.version(key) or ""}, dumped_at=dumped_at)[0]

    def dump_keys(
        self, keys: list[str], versions: dict[str, str], *, dumped_at: datetime | None = None
    ) -> list[DumpResult]:
        """Dump ``keys`` as one dump (one dump id, one ledger insert); raises :class:`DumpError`.

        The rows come from ``sink.column_batches(keys)``. ``dumped_at`` is when the source was read
        (before ``version()``), on the server's clock; it orders dumps, so a dump delayed between
        reading and writing never outranks a dump of newer content. On failure none of the keys
        changes in the current view.
        """
        started = time.monotonic()
        dump_id = uuid.uuid4()
        counts = dict.fromkeys(keys, 0)
        rows = nbytes = 0
        visible = False  # whether readers see this dump (it was copied into the current table)
        what = f"{self.sink.name} {keys[0]!r}" + (f" (+{len(keys) - 1} keys)" if len(keys) > 1 else "")
        try:
            with self.connection.time_limit():
                dumped_at = dumped_at or self.connection.server_time()
                batches = self.sink.column_batches(keys, self.batch_size)  # the source is read here
                versions = {key: self.sink.read_version(key, versions.get(key, "")) for key in keys}
                for number, batch in enumerate(batches):
                    if batch.size:
                        rows += batch.size
                        nbytes += self._insert(batch, dump_id, dumped_at, versions, counts, number)
                        self._unreleased_rows += batch.size
                    del batch  # let this batch go before the sink builds the next one
                if rows:
                    self._check_rows(dump_id, dumped_at, counts)
                self.current.materialize(keys, dump_id, dumped_at, counts)
                visible = True
                self._commit(keys, dump_id, dumped_at, versions, counts, deleted=False)
                aspects.committed(self.connection, self.sink, keys, dump_id, dumped_at, deleted=False)  # never raises
            for key in keys:
                self.retention.record(key, dumped_at)
            if self._unreleased_rows >= RELEASE_AFTER_ROWS:
                self._unreleased_rows = 0
                self.connection.purge_allocator()
        except Exception as exc:
            log.warning(
                "event_sinks: dump of %s failed after %d rows; %s: %s", what, rows,
                "it is current but unrecorded" if visible else "the previous complete dump stays visible", exc,
            )
            raise DumpError(f"dump of {what} failed after {rows} rows: {exc}") from exc
        seconds = time.monotonic() - started
        log.info("event_sinks: dumped %s: %d rows in %.3fs (dump %s)", what, rows, seconds, dump_id)
        share = seconds / len(keys)
        return [  # the engine reports the bytes of an insert, not of a key: each key its rows' share
            DumpResult(self.sink.name, key, "dumped", counts[key], nbytes * counts[key] // rows if rows else 0, share,
                       dump_id, versions.get(key, ""))
            for key in keys
        ]

    def after_run(self, dumped: int) -> None:
        """Housekeeping once a run has dumped ``dumped`` keys: after a backfill, merge the current table.

        Never raises: the dumps are complete whatever happens here (a failed merge is logged and the
        engine's background merges do the work later).
        """
        if dumped < MERGE_AFTER_KEYS:
            return
        started = time.monotonic()
        try:
            with deadline.apart(MERGE_TIMEOUT):
                self.current.merge()
        except EventSinksError as exc:
            log.warning("event_sinks: merging %s after %d dumps failed (the engine's background merges will "
                        "catch up; reads are slower until then): %s", self.sink.current_table_name, dumped, exc)
            return
        log.info("event_sinks: merged %s after %d dumps in %.1fs", self.sink.current_table_name, dumped,
                 time.monotonic() - started)

    def delete_key(self, key: str) -> DumpResult:
        """A tombstone for one key."""
        return self.delete_keys([key])[0]

    def delete_keys(self, keys: list[str]) -> list[DumpResult]:
        """Tombstones for ``keys`` in one insert: they leave the current view (their source is gone)."""
        dump_id = uuid.uuid4()
        what = f"{self.sink.name} {keys[0]!r}" + (f" (+{len(keys) - 1} keys)" if len(keys) > 1 else "")
        copied = False  # whether the deleted rows reached the current table (readers no longer see the keys)
        try:
            with self.connection.time_limit():
                at = self.connection.server_time()
                self.current.delete(keys, dump_id, at)
                copied = True
                self._commit(keys, dump_id, at, {}, {}, deleted=True)
                aspects.committed(self.connection, self.sink, keys, dump_id, at, deleted=True)  # never raises
        except Exception as exc:
            # The delete may have been applied before its answer (or its check's) was lost: readers may
            # no longer see the keys while the ledger still names their dumps (it may lag, never lead).
            log.warning("event_sinks: tombstone of %s failed; %s: %s", what,
                        "it is applied but unrecorded" if copied else "the keys may already have left the view", exc)
            raise DumpError(f"tombstone of {what} failed: {exc}") from exc
        log.info("event_sinks: deleted %s %s from the current view (tombstone %s)", self.sink.name, keys, dump_id)
        return [DumpResult(self.sink.name, key, "deleted", dump_id=dump_id) for key in keys]

    def _check_rows(self, dump_id: uuid.UUID, dumped_at: datetime, counts: dict[str, int]) -> None:
        """Raise unless the engine holds, per key, exactly the rows this dump sent (before its commit).

        The token of each batch makes a replayed insert harmless where the engine deduplicates; this
        catches the rest -- a table or server that does not, an insert acknowledged by something
        other than the server -- so a complete dump never shows other rows than it read. Rows a
        newer complete dump pruned (:func:`.ledger.superseded`) are no fault: that dump outranks this one.
        """
        table, key = self.connection.renderer.qualified(self.table.name), quote(self.sink.key_field)
        # a declared identity is a promise of the sink's: checked (the default one is unique by construction)
        distinct = f"uniqExact({', '.join(quote(c) for c in self.sink.identity)})" if self.sink.identity else "count()"
        sql = (
            f"SELECT {key}, count(), {distinct} FROM {table} WHERE {key} IN {{keys:Array(String)}} "  # noqa: S608 - only validated identifiers
            "AND dumped_at = fromUnixTimestamp64Micro({at:Int64}, 'UTC') AND dump_id = {dump_id:UUID} "
            f"GROUP BY {key}"
        )
        params = {"keys": [k for k, n in counts.items() if n], "at": micros(dumped_at), "dump_id": dump_id}
        waits = iter(ledger.REPLICA_WAITS if self.connection.settings.cluster else ())
        while True:
            answer = self.connection.query(sql, params)
            held = {k: n for k, n, _ in answer}
            shared = [(k, n, u) for k, n, u in answer if u < n and n == counts.get(k)]
            if shared:
                k, n, u = shared[0]
                raise EventSinksError(
                    f"sink {self.sink.name} yielded {n} rows for {k!r} but only {u} distinct "
                    f"{'/'.join(self.sink.row_identity)}: the rows of a key must differ in the sink's identity "
                    "(declare `identity` or `order_by` so that they do); the dump is not committed"
                )
            wrong = [(k, held.get(k, 0), n) for k, n in counts.items() if held.get(k, 0) != n]
            pause = next(waits, None) if wrong and all(h < n for _, h, n in wrong) else None
            if pause is None:
                break
            time.sleep(pause)  # a replica may not have fetched every part yet
        if wrong and all(h < n for _, h, n in wrong):
            # A newer complete dump of a key prunes older dumps' rows, this one's too if it is still
            # writing: it can never be current then, and committing it changes nothing readers see.
            newer = ledger.superseded(self.connection, self.sink.name, [k for k, _, _ in wrong], dumped_at)
            wrong = [w for w in wrong if w[0] not in newer]
        if wrong:
            key_, held_rows, sent = wrong[0]
            how = "applied more than once (replayed after its answer was lost)" if held_rows > sent else (
                "acknowledged but not applied (by something other than the server, or asynchronously)")
            raise EngineError(
                f"ClickHouse at {self.connection.target.masked} holds {held_rows} rows of dump {dump_id} of "
                f"{key_!r} in {self.table.name}, which sent {sent}: an insert was {how}"
                + (f" ({len(wrong)} keys differ)" if len(wrong) > 1 else "")
                + "; the dump is not committed and the previous dump stays visible"
            )

    def _commit(self, keys: list[str], dump_id: uuid.UUID, dumped_at: datetime, versions: dict[str, str],
                counts: dict[str, int], *, deleted: bool) -> None:
        """Write the ledger rows of a dump, then read them back: nothing is pruned after an unseen commit.

        It follows the copy into the current table, so the ledger may lag what readers see (the key is
        dumped again) but never leads it (a version the ledger names is one readers see).
        """
        ledger.commit(self.connection, self.sink.name, keys, dump_id, dumped_at, versions, counts, deleted=deleted)
        lacking = ledger.missing(self.connection, self.sink.name, keys, dump_id, dumped_at)
        if lacking:
            raise EngineError(
                f"ClickHouse at {self.connection.target.masked} acknowledged the commit of dump {dump_id} "
                f"({visibility.LOG_TABLE} rows of {len(lacking)} of its {len(keys)} keys, e.g. {lacking[0]!r}) "
                "but does not hold it: something answered for the server, or the server queues inserts "
                f"asynchronously. The dump is current in {self.sink.view_name} (copied whole before the ledger "
                "insert), but unrecorded: the next run dumps the key again; nothing was pruned"
            )

    def _insert(
        self, batch: ColumnBatch, dump_id: uuid.UUID, dumped_at: datetime, versions: dict[str, str],
        counts: dict[str, int], number: int,
    ) -> int:
        n = batch.size
        columns = list(batch.columns)
        if len(columns) != self._width:
            raise EventSinksError(
                f"sink {self.sink.name} yielded rows of {len(columns)} values; its row type has {self._width} fields"
            )
        key_column = columns[self._key_index]
        version_column: Sequence | Constant
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
            version_column = Constant(versions.get(only, ""))
        else:
            keys = batch.column(self._key_index)
            for key in keys:
                if key not in counts:
                    raise EventSinksError(f"sink {self.sink.name} yielded a row of key {key!r} it was not asked for")
                counts[key] += 1
            version_column = [versions.get(key, "") for key in keys]
        columns += [Constant(dump_id), Constant(dumped_at), version_column]
        return self.connection.insert_columns(
            self.table.name, self._names, self._types, prepare_columns(columns, n, self._scales),
            token=f"{dump_id}-{number}",
        )
