"""ModelSink: any Django model mirrored to ClickHouse in a few declarative lines.

::

    class UserProfileSink(ModelSink):
        '''Learner profiles.'''
        name = "user_profiles"
        model = "student.UserProfile"
        exclude = ("meta",)
        pii = True

The columns come from the model's fields (see :func:`field_column` for the type of each Django
field), the key is the primary key (as text in the ledger), every ``post_save`` and ``post_delete``
of the model dumps or tombstones its object through the configured dispatch strategy, and
``dump_sink <name> --all`` backfills the table, many objects per dump.

A sink's model is a lazy ``"app_label.ModelName"`` resolved at first use, so a sink whose model is
not installed here (``course_overviews`` outside Open edX) is disabled with one warning log line
instead of breaking the host's startup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ..conf import sink_options
from ..core.columns import column
from ..core.schema import Column, Schema, column_type
from ..core.sink import Sink, check_columns, check_sink_name
from ..core.visibility import DATETIME
from ..errors import InvalidKeyError, SinkDefinitionError, UnsafeIdentifierError
from .declaration import (
    KEY_COLUMN,
    Declared,
    DeclaredDescription,
    DeclaredKeyField,
    ModelDeclaration,
    ModelUnavailableError,
)
from .fields import (
    field_column,
    raw_text,
    reads_raw_text,
    strip_nullable,
    text_value,
    updates_itself,
    version_text,
)
from .triggers import model_triggers

log = logging.getLogger(__name__)

#: ``version_field`` default: use a self-updating ``modified``/``updated_at``/``changed`` timestamp.
AUTO = "auto"
VERSION_FIELD_NAMES = ("modified", "updated_at", "changed")
#: A version read ahead for a backfill is trusted for this long (then read again).
VERSION_CACHE_SECONDS = 30.0


# -- the sink ----------------------------------------------------------------------------------------


class ModelSink(Sink, abstract=True):
    """A sink mirroring one Django model: one row per object, keyed by its primary key.

    Declare ``name`` and ``model`` (``"app_label.ModelName"``, resolved lazily; settings can point
    it elsewhere with ``EVENT_SINKS["SINKS"][name]["MODEL"]``) and optionally:

    - ``fields``: the model fields to mirror, in column order (names or attnames; default: all
      concrete fields); ``exclude``: fields to leave out;
    - ``rename``: ``{"field": "column"}``; ``types``: ``{"column": "ClickHouse type"}`` overriding
      the derived type (e.g. ``LowCardinality(String)``);
    - ``convert_<column>(self, value)`` methods: turn the field's value into the column's value;
    - ``version_field``: the field whose value is the object's source version (skip-unchanged);
      default: a ``modified``/``updated_at``/``changed`` DateTimeField that updates itself on save;
      None: no version (every dump writes);
    - ``get_queryset()``: the objects to mirror (default: every object of the model).

    The key column is the primary key's column when its type is ``String``; otherwise a ``pk``
    String column holding the primary key as text is added first (the ledger's keys are text).
    """

    _abstract: ClassVar[bool] = True
    model: ClassVar[str]
    fields: ClassVar[tuple[str, ...] | None] = None
    exclude: ClassVar[tuple[str, ...]] = ()
    rename: ClassVar[Mapping[str, str]] = {}
    types: ClassVar[Mapping[str, str]] = {}
    version_field: ClassVar[str | None] = AUTO
    #: objects per dump (one ledger insert): a backfill of 200,000 objects is 40 dumps.
    keys_per_dump = 5000
    #: rows fetched per database round trip.
    chunk_size: ClassVar[int] = 2000
    #: a hint added to the "model not installed" message.
    unavailable_hint: ClassVar[str] = ""
    #: level of the one log line when the model is missing: INFO for sinks whose model is only
    #: expected inside Open edX, so the command line outside it stays quiet.
    missing_model_log_level: ClassVar[int] = logging.WARNING

    _declarations: ClassVar[dict[str, ModelDeclaration | ModelUnavailableError]]
    _version_cache: ClassVar[threading.local]
    _description: ClassVar[str]

    row_type = Declared()
    columns = Declared()
    field_names = Declared()
    key_field = DeclaredKeyField()
    description = DeclaredDescription()

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        # The row type needs the model, which may not be loaded yet (or not installed at all): the
        # base class's validation at class creation is replaced by ours, and the model-dependent
        # part runs at first use (declaration()).
        super().__init_subclass__(abstract=True, **kwargs)
        cls._abstract = abstract
        declared = cls.__dict__.get("description")
        if isinstance(declared, str):
            delattr(cls, "description")  # keep the descriptor, which adds why a sink is unavailable
        cls._description = declared or ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        if abstract:
            return
        where = check_sink_name(cls)
        model = getattr(cls, "model", None)
        if not isinstance(model, str) or model.count(".") != 1 or not all(model.split(".")):
            raise SinkDefinitionError(f"{where}: `model` must be 'app_label.ModelName', found {model!r}")
        for attr in ("fields", "exclude"):
            value = getattr(cls, attr)
            if isinstance(value, str) or (value is not None and not all(isinstance(v, str) for v in value)):
                raise SinkDefinitionError(f"{where}: `{attr}` must be a tuple of field names, found {value!r}")
        for attr in ("rename", "types"):
            if not isinstance(getattr(cls, attr), Mapping):
                raise SinkDefinitionError(f"{where}: `{attr}` must be a dict, found {getattr(cls, attr)!r}")
        try:
            for type_ in cls.types.values():
                column_type(type_)
        except UnsafeIdentifierError as exc:
            raise SinkDefinitionError(f"{where}: `types`: {exc}") from None
        if cls.keys_per_dump < 1 or cls.chunk_size < 1:
            raise SinkDefinitionError(f"{where}: `keys_per_dump` and `chunk_size` must be at least 1")
        if "triggers" not in cls.__dict__:
            cls.triggers = model_triggers(cls)
        cls._declarations = {}
        cls._version_cache = threading.local()

    # -- resolving the model ---------------------------------------------------------------------------

    @classmethod
    def model_path(cls) -> str:
        """The model in force: ``EVENT_SINKS["SINKS"][name]["MODEL"]`` if set, else ``model``."""
        # Read on every use (settings may change, tests override them), cheaply: a full
        # get_settings() per object of a backfill would cost more than the object's row.
        options = sink_options(cls.name)
        return options.get("MODEL") or cls.model

    @classmethod
    def declaration(cls) -> ModelDeclaration:
        """Resolve the model and derive the columns (once per model path; raises ModelUnavailableError)."""
        path = cls.model_path()
        found = cls._declarations.get(path)
        if found is None:
            found = cls._declarations[path] = cls._declare(path)
        if isinstance(found, ModelUnavailableError):
            raise found
        return found

    @classmethod
    def model_class(cls) -> Any:
        """The Django model class (raises ModelUnavailableError when it is not installed here)."""
        return cls.declaration().model

    @classmethod
    def available(cls) -> bool:
        """Whether the model is installed here; an unavailable sink is logged once, never raised."""
        try:
            cls.declaration()
        except ModelUnavailableError:
            return False
        return True

    @classmethod
    def _declare(cls, path: str) -> ModelDeclaration | ModelUnavailableError:
        from django.apps import apps
        from django.core.exceptions import AppRegistryNotReady

        try:
            model = apps.get_model(path)
        except AppRegistryNotReady:
            raise ModelUnavailableError(
                f"sink {cls.name}: Django apps are not loaded yet, so model {path!r} cannot be resolved"
            ) from None  # not remembered: it can work later
        except (LookupError, ValueError) as exc:
            hint = f" ({cls.unavailable_hint})" if cls.unavailable_hint else ""
            error = ModelUnavailableError(
                f"model {path!r} is not installed here{hint}: {exc} Point the sink at another model with "
                f"EVENT_SINKS['SINKS']['{cls.name}']['MODEL'] or switch it off with ['ENABLED'] = False"
            )
            log.log(cls.missing_model_log_level, "event_sinks: sink %s is disabled: %s", cls.name, error)
            return error
        return cls._derive(model)

    @classmethod
    def _derive(cls, model: Any) -> ModelDeclaration:
        where = f"sink {cls.name} ({model._meta.label})"
        concrete = list(model._meta.concrete_fields)
        by_name = {f.name: f for f in concrete} | {f.attname: f for f in concrete}

        def lookup(name: str, what: str) -> Any:
            try:
                return by_name[name]
            except KeyError:
                known = ", ".join(f.name for f in concrete)
                raise SinkDefinitionError(f"{where}: {what} names unknown field {name!r}; fields: {known}") from None

        chosen = [lookup(n, "`fields`") for n in cls.fields] if cls.fields is not None else concrete
        excluded = {lookup(n, "`exclude`") for n in cls.exclude}
        for original in cls.rename:
            lookup(original, "`rename`")
        chosen = [f for f in chosen if f not in excluded]

        names, types, select, converters, datetimes = [], [], [], [], []
        pk = model._meta.pk
        pk_raw = reads_raw_text(pk)
        for field in chosen:
            col = cls.rename.get(field.name) or cls.rename.get(field.attname) or field.attname
            if col in cls.types and hasattr(cls, f"convert_{col}"):  # declared: the field's own type is moot
                type_, converter, raw = cls.types[col], None, False
            else:
                derived, converter, raw = field_column(field)
                type_ = cls.types.get(col, derived)
            names.append(col)
            types.append(type_)
            select.append(raw_text(field.attname) if raw else field.attname)
            if converter is not None:
                converters.append((len(names) - 1, converter))
            if type_ is not None and strip_nullable(type_) == DATETIME:
                datetimes.append(len(names) - 1)

        key_field = cls.rename.get(pk.name) or cls.rename.get(pk.attname) or pk.attname
        if pk not in chosen or types[names.index(key_field)] != "String" or hasattr(cls, f"convert_{key_field}"):
            key_field = KEY_COLUMN
            names.insert(0, KEY_COLUMN)
            types.insert(0, "String")
            select.insert(0, raw_text("pk") if pk_raw else "pk")
            converters = [(0, text_value)] + [(i + 1, c) for i, c in converters]
            datetimes = [i + 1 for i in datetimes]
        else:  # the primary key's own column is the key: it holds the key's text
            index = names.index(key_field)
            converters = [(i, c) for i, c in converters if i != index] + [(index, text_value)]

        methods = []
        for i, col in enumerate(names):
            if hasattr(cls, f"convert_{col}"):
                if col == key_field:
                    raise SinkDefinitionError(f"{where}: the key column {col!r} cannot have a convert_{col}()")
                methods.append((i, f"convert_{col}"))
        converters = [(i, c) for i, c in converters if i not in {m[0] for m in methods}]
        unknown = sorted(set(cls.types) - set(names))
        if unknown:
            raise SinkDefinitionError(f"{where}: `types` names unknown columns {unknown}; columns: {names}")
        stray = sorted(a[len("convert_"):] for a in dir(cls) if a.startswith("convert_") and a[8:] not in names)
        if stray:
            raise SinkDefinitionError(f"{where}: convert_* methods for unknown columns {stray}; columns: {names}")
        check_columns(where, names, key_field, cls.order_by)
        try:
            columns = tuple(Column(n, t) for n, t in zip(names, types, strict=True))
            row_type = attrs.make_class(
                f"{cls.__name__}Row", {n: column(t, default=None) for n, t in zip(names, types, strict=True)},
            )
        except (UnsafeIdentifierError, SyntaxError, ValueError) as exc:
            raise SinkDefinitionError(f"{where}: {exc}") from None
        return ModelDeclaration(
            model=model, row_type=row_type, columns=columns, key_field=key_field, select=tuple(select),
            converters=tuple(converters), methods=tuple(methods), datetimes=tuple(datetimes),
            pk_select=raw_text("pk") if pk_raw else "pk",
            version_attname=cls._version_attname(model, by_name, where),
        )

    @classmethod
    def _version_attname(cls, model: Any, by_name: Mapping[str, Any], where: str) -> str | None:
        from django.db import models

        if cls.version_field is None:
            return None
        if cls.version_field != AUTO:
            field = by_name.get(cls.version_field)
            if field is None:
                raise SinkDefinitionError(f"{where}: `version_field` names unknown field {cls.version_field!r}")
            return field.attname
        for name in VERSION_FIELD_NAMES:
            field = by_name.get(name)
            if isinstance(field, models.DateTimeField) and updates_itself(field):
                return field.attname
        return None

    # -- hooks -------------------------------------------------------------------------------------------

    def schema(self) -> Schema:
        """The table and view; nothing where the model is not installed (the sink is disabled here)."""
        if not self.available():
            return Schema()
        return super().schema()

    def get_queryset(self) -> Any:
        """The objects to mirror; override to filter or annotate (rows still come from ``values_list``)."""
        return self.model_class()._base_manager.all()

    def normalize_key(self, key: str) -> str:
        """The primary key's canonical text (``"007"`` -> ``"7"`` for an integer key)."""
        text = str(self._pk_value(key))
        return key if text == key else text  # the same string object: a backfill holds each key once

    def _pk_value(self, key: str) -> Any:
        pk = self.declaration().pk_field
        try:
            value = pk.to_python(key)
        except Exception as exc:  # ValidationError, opaque_keys' InvalidKeyError, ...
            raise InvalidKeyError(f"sink {self.name}: {key!r} is not a primary key of {pk.model._meta.label}: "
                                  f"{exc}") from None
        if value is None or value == "":
            raise InvalidKeyError(f"sink {self.name}: empty primary key {key!r}")
        return value

    def keys(self) -> Iterator[str]:
        """Every primary key, in order, streamed from the database."""
        pk = self.declaration().pk_select
        rows = self.get_queryset().order_by("pk").values_list(pk, flat=True).iterator(chunk_size=self.chunk_size)
        for value in rows:
            yield str(value)

    def keys_since(self, since: datetime) -> Iterator[str] | None:
        """Objects whose version field (a DateTimeField) is at or after ``since``; None without one."""
        from django.db import models

        attname = self.declaration().version_attname
        if attname is None:
            return None
        field = self.declaration().model._meta.get_field(attname)
        if not isinstance(field, models.DateTimeField):
            return None
        pk = self.declaration().pk_select
        return (str(value) for value in self.get_queryset().filter(**{f"{attname}__gte": since})
                .order_by("pk").values_list(pk, flat=True).iterator(chunk_size=self.chunk_size))

    def serialize(self, key: str) -> Iterator[tuple]:
        """The row of one object (none if it no longer exists)."""
        return self.serialize_many([key])

    def serialize_many(self, keys: list[str]) -> Iterator[tuple]:
        """The rows of ``keys``, fetched with ``values_list`` in chunks (no model instances)."""
        from django.db import connections

        decl = self.declaration()
        values = list(keys)  # normalized keys: the field prepares them for the query
        queryset = self.get_queryset().order_by("pk")
        limit = connections[queryset.db].features.max_query_params or 0
        step = max(1, min(self.chunk_size, limit - 10 if limit > 10 else self.chunk_size))
        convert = self._row_converter(decl)
        for start in range(0, len(values), step):
            rows = (queryset.filter(pk__in=values[start:start + step]).values_list(*decl.select)
                    .iterator(chunk_size=self.chunk_size))
            yield from map(convert, rows) if convert else rows

    def _row_converter(self, decl: ModelDeclaration) -> Callable[[tuple], tuple] | None:
        from django.conf import settings
        from django.utils import timezone

        steps = list(decl.converters) + [(i, getattr(self, name)) for i, name in decl.methods]
        if not settings.USE_TZ:  # naive datetimes are in the default time zone: make them aware
            zone = timezone.get_default_timezone()

            def aware(value: Any) -> Any:
                return value if value is None or value.tzinfo else timezone.make_aware(value, zone)

            steps += [(i, aware) for i in decl.datetimes if i not in {m[0] for m in decl.methods}]
        if not steps:
            return None
        steps.sort(key=lambda s: s[0])

        def convert(row: tuple) -> tuple:
            values = list(row)
            for i, fn in steps:
                values[i] = fn(values[i])
            return tuple(values)

        return convert

    # -- versions ----------------------------------------------------------------------------------------

    def version(self, key: str) -> str | None:
        """The version field's value of ``key`` (ISO text for timestamps), or None without one.

        A backfill asks for every key in primary-key order, so consecutive requests read the
        following keys' versions ahead (up to ``keys_per_dump`` per query) instead of one query per
        object; a single dispatched key costs one small query.
        """
        attname = self.declaration().version_attname
        if attname is None:
            return None
        cache = self._version_cache
        entries = getattr(cache, "entries", None)
        if entries and time.monotonic() - cache.filled_at < VERSION_CACHE_SECONDS and key in entries:
            return entries.pop(key)
        value = self._pk_value(key)
        last = getattr(cache, "last", None)
        try:
            sequential = last is not None and value > last
        except TypeError:
            sequential = False
        size = min(max(1, getattr(cache, "size", 0)) * 2, self.keys_per_dump) if sequential else 1
        cache.last, cache.size = value, size
        queryset = self.get_queryset()
        pk_text = self.declaration().pk_select
        if size == 1:
            rows = queryset.filter(pk=value).values_list(pk_text, attname)
        else:
            rows = queryset.filter(pk__gte=value).order_by("pk").values_list(pk_text, attname)[:size]
        cache.entries = {str(pk): version_text(v) for pk, v in rows}
        cache.filled_at = time.monotonic()
        return cache.entries.pop(key, None)

    @classmethod
    def forget_version(cls, key: str) -> None:
        """Drop a version read ahead in this thread (its object was just saved or deleted)."""
        entries = getattr(cls._version_cache, "entries", None)
        if entries:
            entries.pop(key, None)
