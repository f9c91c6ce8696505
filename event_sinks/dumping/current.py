"""The current tables, written when a dump commits: the whole dump in one part, or nothing of it.

:func:`materialize` copies a checked dump from the sink's ``*_dumps`` table into its ``*_current``
table (:func:`event_sinks.core.visibility.current_table`) with one ``INSERT ... SELECT`` that writes
one part (:mod:`event_sinks.clickhouse.one_part`): the dump's rows, and for every current row of the
key that the dump no longer has, a row marked ``is_deleted`` of the dump's version. Readers read the
table ``FINAL`` (per row identity the row of the greatest ``dumped_at``), so they see the previous
dump of a key or this one, never a mix, and blocks removed from a course vanish with the dump that
removed them. :func:`delete` does the same for a tombstone: every current row of the key, deleted.

Order between dumps is ``dumped_at`` (the server's clock when a dump began reading), whatever order
they commit in. A dump of a key whose newer dump is already current is left out of the statement (it
must not bring back rows the newer one dropped); one that lost that race inside the statement is
taken back by :func:`verify` (its rows re-written as deleted at its own version: of two rows of one
version, the later one wins). A dump that crashes between the two leaves rows that the next dump of
the key deletes, since it deletes every current row it does not have.

A replayed statement (the driver sends it again after a lost answer) is harmless: it carries a
token, and even where the table does not deduplicate, a second copy of the same rows at the same
version changes nothing a reader sees.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime

from ..clickhouse import Connection
from ..clickhouse.encoding import micros
from ..clickhouse.one_part import one_part_settings
from ..core import visibility
from ..core.schema import quote
from ..core.sink import Sink
from ..errors import EngineError, EngineUnavailableError, EventSinksError
from . import ledger


class _Statements:
    """The SQL of one sink's current table, rendered once per dumper."""

    def __init__(self, sink: Sink, connection: Connection):
        rows, current = sink.table(), sink.current_table()
        self.dumps = connection.renderer.qualified(rows.name)
        self.current = connection.renderer.qualified(current.name)
        self.key = quote(sink.key_field)
        self.columns = ", ".join(quote(c) for c in current.column_names)
        row_columns = [quote(c) for c in rows.column_names]
        identity = [quote(c) for c in sink.row_identity]
        self.identity = f"({', '.join(identity)})" if len(identity) > 1 else identity[0]
        numbered = visibility.DUMP_ROW.name in sink.row_identity
        if numbered:  # the rank among the key's rows with the same sorting values: 0 where they are unique
            row_columns.append(visibility.dump_row_rank(sink.row_identity))
        self.fresh_columns = ", ".join(row_columns)
        replaced = {"dump_id": "{dump_id:UUID} AS dump_id", "dumped_at": f"{_AT} AS dumped_at"}
        #: a current row re-written as deleted at this dump's version
        self.as_deleted = ", ".join(
            [replaced.get(c, quote(c)) for c in current.column_names if c != visibility.IS_DELETED.name]
            + [f"1 AS {visibility.IS_DELETED.name}"])
        newer = (f"SELECT {self.key} FROM {self.current} "  # noqa: S608 - only validated identifiers
                 f"WHERE {self.key} IN {{keys:Array(String)}} AND dumped_at > {_AT}")
        self.not_outranked = f"{self.key} IN {{keys:Array(String)}} AND {self.key} NOT IN ({newer})"
        #: the key's rows that may be live, read without FINAL (whose cost grows with the parts a
        #: backfill leaves, each spanning every key): every identity with a row not deleted, once. One
        #: whose latest row is deleted already may be deleted again at this version, which readers
        #: cannot tell from once. (Qualified: the statement's ``1 AS is_deleted`` would shadow it.)
        self.live = f"{self.not_outranked} AND NOT was.{visibility.IS_DELETED.name}"

    def materialize(self) -> str:
        this_dump = f"{self.key} IN {{keys:Array(String)}} AND dumped_at = {_AT} AND dump_id = {{dump_id:UUID}}"
        return (
            f"INSERT INTO {self.current} ({self.columns})\n{one_part_settings()}\n"  # noqa: S608 - only validated identifiers
            f"WITH fresh AS (SELECT {self.fresh_columns} FROM {self.dumps} WHERE {this_dump})\n"
            f"SELECT *, 0 FROM fresh WHERE {self.not_outranked}\n"
            f"UNION ALL\nSELECT {self.as_deleted} FROM {self.current} AS was\nWHERE {self.live}\n"
            f"    AND {self.identity} NOT IN (SELECT {self.identity} FROM fresh)\nLIMIT 1 BY {self.identity}"
        )

    def delete(self) -> str:
        return (
            f"INSERT INTO {self.current} ({self.columns})\n{one_part_settings()}\n"  # noqa: S608 - only validated identifiers
            f"SELECT {self.as_deleted} FROM {self.current} AS was\nWHERE {self.live}\nLIMIT 1 BY {self.identity}"
        )

    def held(self) -> str:
        return (
            f"SELECT {self.key}, countIf(dump_id = {{dump_id:UUID}} AND NOT {visibility.IS_DELETED.name}), "  # noqa: S608
            f"max(dumped_at) > {_AT} FROM {self.current} WHERE {self.key} IN {{keys:Array(String)}} GROUP BY {self.key}"
        )

    def live_before(self) -> str:
        return (
            f"SELECT {self.key}, count() FROM {self.current} FINAL "  # noqa: S608 - only validated identifiers
            f"WHERE {self.key} IN {{keys:Array(String)}} AND dumped_at < {_AT} GROUP BY {self.key}"
        )

    def merge(self, on_cluster: str) -> str:
        return f"OPTIMIZE TABLE {self.current}{on_cluster} FINAL"

    def take_back(self) -> str:
        return (
            f"INSERT INTO {self.current} ({self.columns})\n{one_part_settings()}\n"  # noqa: S608 - only validated identifiers
            f"SELECT {self.as_deleted} FROM {self.current}\n"
            f"WHERE {self.key} IN {{keys:Array(String)}} AND dump_id = {{dump_id:UUID}} "
            f"AND NOT {visibility.IS_DELETED.name}"
        )


_AT = "fromUnixTimestamp64Micro({at:Int64}, 'UTC')"
#: A run that dumped at least this many keys merges the current table down (:meth:`CurrentTable.merge`).
MERGE_AFTER_KEYS = 100
#: How long a merge after a backfill may take, in seconds (it goes on in the server after a timeout).
MERGE_TIMEOUT = 600.0
#: Keys per statement: statement parameters travel in the request's URL, which servers and proxies bound.
KEYS_PER_STATEMENT = 500


class CurrentTable:
    """Writes and checks one sink's current table for a dumper."""

    def __init__(self, sink: Sink, connection: Connection):
        self.sink = sink
        self.connection = connection
        self.sql = _Statements(sink, connection)

    def materialize(self, keys: list[str], dump_id: uuid.UUID, dumped_at: datetime, counts: Mapping[str, int]) -> None:
        """Make a checked dump of ``keys`` current, then check that it is (raises :class:`EngineError`).

        :data:`KEYS_PER_STATEMENT` keys per statement: each key is made current whole (the keys of a
        dump of many small keys may become current a statement apart).
        """
        for start in range(0, len(keys), KEYS_PER_STATEMENT):
            chunk = keys[start : start + KEYS_PER_STATEMENT]
            params = {"keys": chunk, "dump_id": dump_id, "at": micros(dumped_at), "token": f"{dump_id}-current-{start}"}
            try:
                self.connection.command(self.sql.materialize(), params)
            except EngineUnavailableError as lost:
                # The answer may have been lost after the server wrote the part: reading back tells.
                try:
                    self.verify(chunk, dump_id, dumped_at, counts)
                except EventSinksError:
                    raise lost from None
                continue
            self.verify(chunk, dump_id, dumped_at, counts)

    def verify(self, keys: list[str], dump_id: uuid.UUID, dumped_at: datetime, counts: Mapping[str, int]) -> None:
        """Raise unless the current table holds the dump's rows of every key no newer dump outranks.

        The keys a newer dump outranks are taken back (see the module docstring): the newer dump's
        rows stay what readers see.
        """
        params = {"keys": list(keys), "dump_id": dump_id, "at": micros(dumped_at)}
        waits = iter(ledger.REPLICA_WAITS if self.connection.settings.cluster else ())
        while True:
            found = {key: (held, newer) for key, held, newer in self.connection.query(self.sql.held(), params)}
            outranked = [key for key in keys if found.get(key, (0, False))[1]]
            wrong = [(key, found.get(key, (0, False))[0], counts.get(key, 0)) for key in keys
                     if key not in outranked and found.get(key, (0, False))[0] != counts.get(key, 0)]
            pause = next(waits, None) if wrong else None
            if pause is None:
                break
            time.sleep(pause)  # a replica may not have fetched the part yet
        if outranked:
            self.connection.command(self.sql.take_back(), {**params, "keys": outranked, "token": f"{dump_id}-back"})
        if wrong:
            key, held, sent = wrong[0]
            raise EngineError(
                f"ClickHouse at {self.connection.target.masked} holds {held} current rows of dump {dump_id} of "
                f"{key!r} in {self.sink.current_table_name}, which wrote {sent}: the copy into the current "
                "table was acknowledged but not applied (by something other than the server, or "
                "asynchronously)" + (f" ({len(wrong)} keys differ)" if len(wrong) > 1 else "")
                + "; the dump is not committed and the previous dump stays visible"
            )

    def merge(self) -> None:
        """Merge the current table into one part per partition (``OPTIMIZE ... FINAL``); raises :class:`EngineError`.

        Readers read the table ``FINAL``, which merges on the fly the parts whose key ranges overlap. A
        publish writes one small part that overlaps only its course; a backfill writes parts that
        each span every course, so until the background merges catch up -- they may not, at several
        versions per row -- every read merges them all (a count of 5,000 courses: 497 ms instead of
        3 ms, docs/decisions/0007-current-tables.rst). A run that dumped many keys merges once at its end.
        """
        self.connection.command(self.sql.merge(self.connection.renderer.on_cluster))

    def delete(self, keys: list[str], dump_id: uuid.UUID, at: datetime) -> None:
        """Delete every current row of ``keys`` (a tombstone of version ``at``), then check it."""
        for start in range(0, len(keys), KEYS_PER_STATEMENT):
            chunk = keys[start : start + KEYS_PER_STATEMENT]
            params = {"keys": chunk, "dump_id": dump_id, "at": micros(at), "token": f"{dump_id}-current-{start}"}
            self.connection.command(self.sql.delete(), params)
            waits = iter(ledger.REPLICA_WAITS if self.connection.settings.cluster else ())
            while (left := self.connection.query(self.sql.live_before(), params)) and (pause := next(waits, None)):
                time.sleep(pause)  # a replica may not have fetched the part yet
            if left:
                key, count = left[0]
                raise EngineError(
                    f"ClickHouse at {self.connection.target.masked} still shows {count} rows of {key!r} in "
                    f"{self.sink.current_table_name} after the tombstone {dump_id} was acknowledged: the delete "
                    "was not applied (by something other than the server, or asynchronously); the key stays visible"
                )
