"""The Sink base class: one declaration gives the rows *and* the ClickHouse schema.

A sink is a named stream of rows kept in sync with a source, dumped one *key* at a time (a course
key for the course sinks). Subclasses declare:

- ``name``: unique, a plain identifier; it names the table and the view;
- ``row_type``: an attrs class whose fields carry ClickHouse column types (see :func:`column`);
- ``key_field``: the row field that holds the key the sink is dumped by;
- ``order_by``: extra sorting-key columns after the key;
- ``identity``: optional, columns whose values no two rows of a dump share, nor two rows of different
  keys (the current table keeps one row per identity, so an identity must name its key); they sort the
  current table (default: the key, ``order_by``, and a number telling apart rows that share those); the
  course outline says ``("location",)`` (a location names its course) so that a lookup by location is
  a primary-key lookup;
- ``triggers``: the signals that make a key dirty (see :mod:`event_sinks.core.triggers`);

and implement the hooks ``keys()``, ``serialize(key)`` and optionally ``version(key)``,
``normalize_key(key)`` and ``schema()``. Mistakes in the declaration raise
:class:`SinkDefinitionError` when the class is created, not at the first publish in production.

Large sinks may also implement the optional fast path ``serialize_columns(key, batch_size)``: the
same rows as column batches (:class:`ColumnBatch`), built column by column, with the columns that hold
one value on every row (the key, the org) given once as a :class:`Constant`. The dumper then writes
them without a tuple per row and without transposing rows into columns.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any, ClassVar

from ..errors import EventSinksError, SinkDefinitionError, UnsafeIdentifierError
from . import visibility
from .columns import ColumnBatch, joined, row_columns
from .schema import Column, Schema, Table, View, identifier
from .triggers import Trigger


def check_sink_name(cls: type) -> str:
    """Check that a sink class has a plain-identifier ``name``; returns its dotted path for messages."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    name = getattr(cls, "name", None)
    if not name:
        raise SinkDefinitionError(f"{where}: a sink needs a class attribute `name` (a plain identifier)")
    try:
        identifier(name, "sink name")
    except UnsafeIdentifierError as exc:
        raise SinkDefinitionError(f"{where}: {exc}") from None
    return where


def check_columns(where: str, names: Sequence[str], key_field: object, order_by: Sequence[str],
                  identity: Sequence[str] | None = None) -> None:
    """Check a sink's columns against its ``key_field`` and ``order_by``, and that no name is reserved.

    The one validation of a declaration's columns, for sinks with a row type (at class creation)
    and for model sinks (when their model is resolved).
    """
    reserved = sorted({c.name for c in (*visibility.DUMP_COLUMNS, visibility.IS_DELETED, visibility.DUMP_ROW)}
                      & set(names))
    if reserved:
        raise SinkDefinitionError(
            f"{where}: columns {reserved} are reserved for the dump columns; rename or leave them out"
        )
    if len(set(names)) != len(names):
        raise SinkDefinitionError(f"{where}: duplicate column names in {list(names)}")
    if key_field not in names:
        raise SinkDefinitionError(
            f"{where}: `key_field` must name a column (one of {list(names)}), found {key_field!r}"
        )
    unknown = [c for c in order_by if c not in names]
    if unknown:
        raise SinkDefinitionError(f"{where}: `order_by` names unknown columns {unknown}")
    if identity is not None:
        if not isinstance(identity, tuple) or not identity or any(c not in names for c in identity):
            raise SinkDefinitionError(
                f"{where}: `identity` must be a non-empty tuple of column names (of {list(names)}), found {identity!r}"
            )


class Sink:
    """Base class of every sink. Subclass it, declare the class attributes, implement the hooks.

    Pass ``abstract=True`` in the class statement (``class Base(Sink, abstract=True)``) for
    intermediate base classes that should not be validated.
    """

    name: ClassVar[str]
    row_type: ClassVar[type]
    key_field: ClassVar[str]
    order_by: ClassVar[tuple[str, ...]] = ()
    #: columns no two rows of a dump share, nor rows of two keys; None: see :attr:`row_identity`
    identity: ClassVar[tuple[str, ...] | None] = None
    triggers: ClassVar[tuple[Trigger, ...]] = ()
    #: keys dumped together as one dump (one ledger insert) by a run of many keys: hundreds or thousands
    #: for sinks with one small row per key (a model's objects), a few dozen for big keys (courses: see
    #: ``rows_per_dump``), 1 for one dump per key. A run of one key is one dump of one key whatever it is.
    keys_per_dump: ClassVar[int] = 1
    #: None, or the rows a dump of several keys should hold about (sinks whose keys are big): a run then
    #: dumps its first key alone and sizes each dump after that from the rows per key of the one before
    #: (at most ``keys_per_dump`` keys), and a dump of n keys may wait n DUMP_TIMEOUTs for the engine,
    #: what its keys had dumped one by one.
    rows_per_dump: ClassVar[int | None] = None
    #: personal data: disabled unless the settings enable the sink explicitly.
    pii: ClassVar[bool] = False
    description: ClassVar[str] = ""

    # Filled in by __init_subclass__.
    columns: ClassVar[tuple[Column, ...]]
    field_names: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        where = check_sink_name(cls)
        row_type = getattr(cls, "row_type", None)
        if row_type is None:
            raise SinkDefinitionError(f"{where}: a sink needs `row_type`, an attrs class of typed columns")
        cls.columns = row_columns(row_type)
        cls.field_names = tuple(c.name for c in cls.columns)
        check_columns(where, cls.field_names, getattr(cls, "key_field", None), cls.order_by, cls.identity)
        if not cls.description:
            cls.description = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def available(cls) -> bool:
        """Whether the sink can work in this process (a model sink's model is installed here)."""
        return True

    # -- naming ----------------------------------------------------------------------------------

    @property
    def table_name(self) -> str:
        """The table that holds every dump's rows (readers use the view instead)."""
        return f"{self.name}_dumps"

    @property
    def view_name(self) -> str:
        """The view readers query: the rows of the latest complete dump of each key."""
        return self.name

    @property
    def current_table_name(self) -> str:
        """The table that holds the rows of the latest complete dump of each key (read through the view)."""
        return f"{self.name}_current"

    @property
    def row_identity(self) -> tuple[str, ...]:
        """The columns that tell a dump's rows apart; the current table keeps one row per identity.

        The declared ``identity``, else the key, ``order_by`` and ``dump_row``: the rank of a row
        among the rows of its key that share those values (0 where they are unique, so a row keeps
        its identity from one dump to the next).
        """
        return self.identity or (self.key_field, *self.order_by, visibility.DUMP_ROW.name)

    # -- hooks -------------------------------------------------------------------------------------

    def keys(self) -> Iterable[str]:
        """Every key a backfill should dump. Override for sinks that can enumerate their source."""
        return ()

    def keys_since(self, since: datetime) -> Iterable[str] | None:
        """Keys whose source changed at or after ``since``; None when the sink cannot tell.

        Backs ``dump_sink --since``; sinks that return None make that option an error.
        """
        return None

    def serialize(self, key: str) -> Iterable[Any]:
        """Yield the rows of ``key``: ``row_type`` instances or plain tuples in field order.

        Stream (a generator), do not build lists: the dumper batches, so memory stays O(batch).
        Tuples are the fast path for large sources.
        """
        raise NotImplementedError(f"sink {self.name} does not implement serialize()")

    def serialize_columns(self, key: str, batch_size: int) -> Iterable[ColumnBatch] | None:
        """Optional fast path: the rows of ``key`` as :class:`ColumnBatch` es of at most ``batch_size`` rows.

        Return None (the default) to have the dumper use :meth:`serialize`. A sink implementing it
        must still yield the same rows from ``serialize()`` (dry runs and library users read that).
        Memory stays O(batch) when the batches are built one after the other (a generator).
        """
        return None

    def serialize_many(self, keys: list[str]) -> Iterable[Any]:
        """Rows of several keys, for sinks with ``keys_per_dump`` > 1. Override to read them in one query."""
        for key in keys:
            yield from self.serialize(key)

    def version(self, key: str) -> str | None:
        """The source version of ``key``, or None when unknown (then the key is never skipped)."""
        return None

    def normalize_key(self, key: str) -> str:
        """Validate ``key`` and return its canonical text; raise InvalidKeyError if malformed."""
        return key

    def fan_out(self, key: str) -> Iterable[str]:
        """Other keys to dump (or tombstone) whenever ``key`` is triggered: their rows derive from its source.

        A course's CCX runs are the case in point: they have no publish of their own. Asked where a
        triggered key is dumped (the worker, or the dispatching thread), never by the receivers.
        """
        return ()

    def read_version(self, key: str, announced: str) -> str:
        """The version of the source that the rows of ``key`` just serialized were read from.

        Asked by the dumper right after it asked for the rows and before it writes any, so that a dump
        is labelled with the version of its rows even when :meth:`version` is a cheaper look that the
        source may have moved past meanwhile. Default: ``announced``, what :meth:`version` said.
        """
        return announced

    def dump_group(self) -> int:
        """The most keys one dump of a run of many keys holds here: ``keys_per_dump`` by default.

        Asked once per run (:func:`event_sinks.dumping.dump`); a sink may say less where grouping would
        cost more than it saves (a course sink whose source reads the whole course to tell its version).
        """
        return self.keys_per_dump

    def job(self) -> AbstractContextManager[object]:
        """A context around one unit of dump work: the version checks and dumps of some keys.

        Sinks that read a shared source override it so that a version check and the dump after it,
        and several sinks dumping the same key inside one job, read the source once (the course
        sinks: one course read per publish). Jobs of several sinks nest; the default does nothing.
        """
        return nullcontext()

    def table(self) -> Table:
        """The table of all dumps: the row columns plus the dump columns."""
        return Table(
            self.table_name,
            self.columns + visibility.DUMP_COLUMNS,
            order_by=(self.key_field, "dumped_at", "dump_id", *self.order_by),
            comment=f"rows of every dump of sink {self.name}; query the view {self.view_name}",
        )

    def views(self) -> tuple[View, ...]:
        """Extra views for readers. The current-rows view is always added by :meth:`schema`."""
        return ()

    def current_table(self) -> Table:
        """The table of the current rows: the dump table's columns, sorted by :attr:`row_identity`."""
        return visibility.current_table(self.table(), self.current_table_name, self.row_identity, self.key_field,
                                        self.name)

    def schema(self) -> Schema:
        """Tables and views this sink needs; derived from ``row_type`` by default."""
        table = self.table()
        current = self.current_table()
        view = visibility.current_rows_view(self.view_name, current, table.column_names, self.name)
        return Schema((table, current), (view, *self.views()))

    # -- helpers for the dumper --------------------------------------------------------------------

    def row_tuples(self, rows: Iterable[Any]) -> Iterator[tuple]:
        """Rows as tuples in field order, whatever ``serialize`` yielded."""
        getter: Callable[[Any], tuple] = operator.attrgetter(*self.field_names)
        if len(self.field_names) == 1:
            single = getter

            def getter(row: Any) -> tuple:
                return (single(row),)

        for row in rows:
            yield row if isinstance(row, tuple) else getter(row)

    def column_batches(self, keys: list[str], batch_size: int) -> Iterator[ColumnBatch]:
        """What the dumper writes for ``keys``: column batches of at most ``batch_size`` rows.

        One key of a sink with :meth:`serialize_columns` takes that fast path. Several keys of a sink
        that overrides :meth:`serialize_columns` but not :meth:`serialize_many` take it key after key,
        lazily (a key is serialized once the batches of the key before it are handed on), their
        batches joined into batches of ``batch_size`` rows (:func:`~event_sinks.core.columns.joined`):
        a dump of 50 courses of 1,000 blocks is one insert of 50,000 rows, not 50 of 1,000. Otherwise
        the rows of :meth:`serialize` (one key) or :meth:`serialize_many` (several) are gathered into
        batches and transposed, whether they are row instances or tuples.
        """
        if len(keys) == 1:
            fast = self.serialize_columns(keys[0], batch_size)
            if fast is not None:
                return iter(fast)
            return self.batch_rows(self.serialize(keys[0]), batch_size)
        cls = type(self)
        if cls.serialize_columns is not Sink.serialize_columns and cls.serialize_many is Sink.serialize_many:
            return joined(self._batches_of_each(keys, batch_size), batch_size)
        return self.batch_rows(self.serialize_many(keys), batch_size)

    def _batches_of_each(self, keys: list[str], batch_size: int) -> Iterator[ColumnBatch]:
        """The column batches of each key in turn (its rows, batched, where it has no fast path)."""
        for key in keys:
            fast = self.serialize_columns(key, batch_size)
            yield from self.batch_rows(self.serialize(key), batch_size) if fast is None else fast
            del fast  # the key's source (a course) goes before the next key's is read

    def batch_rows(self, rows: Iterable[Any], batch_size: int) -> Iterator[ColumnBatch]:
        """Rows (instances or tuples in field order) as column batches of at most ``batch_size`` rows."""
        rows = self.row_tuples(rows)
        width = len(self.field_names)
        while batch := list(itertools.islice(rows, batch_size)):
            try:
                columns = list(zip(*batch, strict=True))
            except ValueError:
                columns = None  # rows of different widths
            if columns is None or len(columns) != width:
                bad = next((row for row in batch if len(row) != width), batch[0])
                raise EventSinksError(
                    f"sink {self.name} yielded a row of {len(bad)} values; its row type has {width} fields"
                )
            yield ColumnBatch(len(batch), columns)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
