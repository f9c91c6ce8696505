"""Model sinks: any Django model mirrored to ClickHouse in a few declarative lines.

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

This module is also the app's ``models.py``, which Django imports while loading apps: it defines no
Django model and imports no model. A sink's model is a lazy ``"app_label.ModelName"`` resolved at
first use, so a sink whose model is not installed here (``course_overviews`` outside Open edX) is
disabled with one warning log line instead of breaking the host's startup.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
from django.core.exceptions import ImproperlyConfigured

from . import ledger
from .errors import EventSinksError, InvalidKeyError, SinkDefinitionError, UnsafeIdentifierError
from .schema import Column, column_type
from .sink import Sink, check_sink_name, column
from .triggers import Trigger

log = logging.getLogger(__name__)

#: ``version_field`` default: use a self-updating ``modified``/``updated_at``/``changed`` timestamp.
AUTO = "auto"
VERSION_FIELD_NAMES = ("modified", "updated_at", "changed")
#: Name of the text key column added when the primary key's own column is not ``String``.
KEY_COLUMN = "pk"
#: A version read ahead for a backfill is trusted for this long (then read again).
VERSION_CACHE_SECONDS = 30.0

DATETIME = "DateTime64(6, 'UTC')"


class ModelUnavailableError(EventSinksError, LookupError):
    """The model of a model sink is not installed in this process (the sink is disabled)."""


# -- Django field -> ClickHouse column ---------------------------------------------------------------

#: ``Field.get_internal_type()`` -> ClickHouse type, for fields whose values need no conversion.
SIMPLE_TYPES = {
    "CharField": "String",
    "TextField": "String",
    "SlugField": "String",
    "EmailField": "String",
    "URLField": "String",
    "FilePathField": "String",
    "FileField": "String",
    "ImageField": "String",
    "GenericIPAddressField": "String",
    "IPAddressField": "String",
    "SmallIntegerField": "Int16",
    "IntegerField": "Int32",
    "BigIntegerField": "Int64",
    "PositiveSmallIntegerField": "UInt16",
    "PositiveIntegerField": "UInt32",
    "PositiveBigIntegerField": "UInt64",
    "SmallAutoField": "Int16",
    "AutoField": "Int32",
    "BigAutoField": "Int64",
    "FloatField": "Float64",
    "BooleanField": "Bool",
    "NullBooleanField": "Bool",
    "UUIDField": "UUID",
    "DateField": "Date32",
}


def _text(value):
    return None if value is None else str(value)


def _empty_is_none(value):
    return value or None


def _none_is_empty(value):
    return "" if value is None else value


def _binary(value):
    return None if value is None else bytes(value)


def _iso(value):
    return None if value is None else value.isoformat()


def _microseconds(value: timedelta | None):
    return None if value is None else value // timedelta(microseconds=1)


def _json(encoder, nullable: bool):
    def convert(value):
        if value is None and nullable:
            return None
        return json.dumps(value, cls=encoder, ensure_ascii=False, separators=(",", ":"))

    return convert


def _opaque_key_field_class():
    try:
        from opaque_keys.edx.django.models import OpaqueKeyField
    except ImportError:  # pragma: no cover - edx-opaque-keys is a dependency of openedx-events
        return None
    return OpaqueKeyField


def field_column(field) -> tuple[str, Callable[[Any], Any] | None, bool]:
    """The ClickHouse type of a concrete Django field, the converter its values need (or None), and
    whether to read the column's raw text instead of the field's Python value (opaque keys: their
    stored text is the key's canonical text, so parsing each one only to print it again is skipped).

    CharField/TextField/SlugField/EmailField/URLField -> String; Small/Big/IntegerField -> Int16/32/64;
    PositiveSmall/Positive/PositiveBigIntegerField -> UInt16/32/64; AutoField -> Int32, BigAutoField
    -> Int64; DecimalField -> Decimal(max_digits, decimal_places); FloatField -> Float64;
    DateTimeField -> DateTime64(6, 'UTC'); DateField -> Date32; BooleanField -> Bool; UUIDField ->
    UUID; JSONField -> String holding JSON; ForeignKey/OneToOneField -> the type of the target's
    primary key; opaque-key fields (CourseKeyField, UsageKeyField, ...) -> String; DurationField ->
    Int64 microseconds; TimeField -> String (ISO); BinaryField -> String. ``null=True`` wraps the
    type in Nullable(...). Other fields raise :class:`SinkDefinitionError`.
    """
    from django.db import models

    nullable = bool(field.null)
    converter: Callable[[Any], Any] | None = None
    raw = False
    opaque = _opaque_key_field_class()
    if field.is_relation:
        if not (field.many_to_one or field.one_to_one) or field.target_field is None:
            raise SinkDefinitionError(f"{_where(field)}: only ForeignKey and OneToOneField relations have a column")
        type_, converter, raw = field_column(field.target_field)
        type_ = _strip_nullable(type_)
        if raw:
            converter = _empty_is_none if nullable else _none_is_empty
    elif opaque is not None and isinstance(field, opaque):
        # Stored as text; a missing key is stored as '' (and read back as None by the field).
        type_, converter, raw = "String", (_empty_is_none if nullable else _none_is_empty), True
    elif isinstance(field, models.JSONField):
        type_, converter = "String", _json(field.encoder, nullable)
    elif isinstance(field, models.DateTimeField):
        type_ = DATETIME  # values are made aware (UTC) in serialize when USE_TZ is off
    elif isinstance(field, models.DecimalField):
        type_ = f"Decimal({int(field.max_digits)}, {int(field.decimal_places)})"
    elif isinstance(field, models.DurationField):
        type_, converter = "Int64", _microseconds
    elif isinstance(field, models.TimeField):
        type_, converter = "String", _iso
    elif isinstance(field, models.BinaryField):
        type_, converter = "String", _binary
    else:
        internal = field.get_internal_type()
        type_ = SIMPLE_TYPES.get(internal)
        if type_ is None:
            raise SinkDefinitionError(
                f"{_where(field)}: no ClickHouse type for {type(field).__name__} (internal type {internal}); "
                f"exclude the field, or declare its column in `types` and a convert_<column>() method"
            )
        if type_ == "String" and not type(field).__module__.startswith("django."):
            converter = _text  # a third-party text field may hand out objects: store their text
    if nullable:
        type_ = f"Nullable({type_})"
    return type_, converter, raw


def raw_text(attname: str):
    """A ``values_list`` argument reading the column's stored text, without the field's conversion."""
    from django.db import models

    return models.ExpressionWrapper(models.F(attname), output_field=models.TextField())


def _reads_raw_text(field) -> bool:
    try:
        return field_column(field)[2]
    except SinkDefinitionError:
        return False


def _strip_nullable(type_: str) -> str:
    return type_[len("Nullable("):-1] if type_.startswith("Nullable(") else type_


def _where(field) -> str:
    model = getattr(field, "model", None)
    return f"{model._meta.label}.{field.name}" if model is not None else repr(field)


def _updates_itself(field) -> bool:
    """Whether a DateTimeField is set on every save (auto_now, or a pre_save like model_utils')."""
    from django.db import models

    return bool(getattr(field, "auto_now", False)) or type(field).pre_save is not models.DateTimeField.pre_save


def _version_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return str(value)


# -- the resolved declaration ------------------------------------------------------------------------


@attrs.frozen
class ModelDeclaration:
    """What a model sink's declaration resolves to once its model is loaded."""

    model: type
    row_type: type
    columns: tuple[Column, ...]
    key_field: str
    #: ``values_list`` arguments, one per column, in column order (names, or raw_text() expressions).
    select: tuple[Any, ...]
    #: how to read the primary key as its text (``"pk"``, or raw_text("pk") for opaque keys).
    pk_select: Any
    #: (column index, converter) for columns whose Django values need converting.
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: (column index, ``convert_<column>`` method name) declared on the sink.
    methods: tuple[tuple[int, str], ...]
    #: indexes of DateTime64 columns (made aware when USE_TZ is off).
    datetimes: tuple[int, ...]
    version_attname: str | None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def pk_field(self):
        return self.model._meta.pk


class _Declared:
    """A Sink attribute that ModelSink derives from the model at first use (not at class creation)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner):
        if owner.__dict__.get("_abstract"):
            return self
        return getattr(owner.declaration(), self.name)


class _KeyField(_Declared):
    """``key_field``, which list_sinks shows even when the model is missing."""

    def __get__(self, instance, owner):
        if owner.__dict__.get("_abstract"):
            return self
        try:
            return owner.declaration().key_field
        except (ModelUnavailableError, SinkDefinitionError):
            return KEY_COLUMN


class _Description:
    """The docstring's first line, plus why the sink is unavailable when its model is missing."""

    def __get__(self, instance, owner):
        text = owner.__dict__.get("_description", "")
        if owner.__dict__.get("_abstract"):
            return text
        try:
            owner.declaration()
        except ModelUnavailableError as exc:
            return f"{text} [unavailable here: {exc}]".lstrip()
        except SinkDefinitionError as exc:
            return f"{text} [broken: {exc}]".lstrip()
        return text


# -- triggers ----------------------------------------------------------------------------------------


class _SenderSignal:
    """A Django signal bound to one sender, so ``handlers.connect_all`` connects it for that model only."""

    def __init__(self, signal, sender):
        self.signal, self.sender = signal, sender

    def connect(self, receiver, **kwargs):
        self.signal.connect(receiver, sender=self.sender, **kwargs)

    def disconnect(self, receiver=None, **kwargs):
        return self.signal.disconnect(receiver, sender=self.sender, **kwargs)


@attrs.frozen
class ModelTrigger(Trigger):
    """A model signal (post_save, post_delete) received for one model only.

    ``sender`` returns the model class; ``resolve_signal`` raises ImportError when it is not
    installed, which ``handlers.connect_all`` treats as "not available here".
    """

    sender: Callable[[], type] = attrs.field(kw_only=True, eq=False)

    def resolve_signal(self):
        signal = super().resolve_signal()
        try:
            model = self.sender()
        except ModelUnavailableError as exc:  # logged once where the model was looked up
            raise ImportError(str(exc)) from None
        except SinkDefinitionError as exc:  # the model changed under the declaration: this sink only
            log.error("event_sinks: %s; its receivers are not connected", exc)
            raise ImportError(str(exc)) from None
        return _SenderSignal(signal, model)


def _instance_key(sink_class, kwargs):
    instance = kwargs.get("instance")
    if instance is None or instance.pk is None:
        return None
    key = str(instance.pk)
    sink_class.forget_version(key)
    return key


def model_triggers(sink_class) -> tuple[ModelTrigger, ...]:
    """``post_save`` dumps the saved object, ``post_delete`` tombstones it; both for the sink's model only."""
    key = functools.partial(_instance_key, sink_class)
    return (
        ModelTrigger("django.db.models.signals.post_save", key, sender=sink_class.model_class),
        ModelTrigger("django.db.models.signals.post_delete", key, delete=True, sender=sink_class.model_class),
    )


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

    row_type = _Declared()
    columns = _Declared()
    field_names = _Declared()
    key_field = _KeyField()
    description = _Description()

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
        cls._declarations: dict[str, ModelDeclaration | ModelUnavailableError] = {}
        cls._version_cache = threading.local()

    # -- resolving the model ---------------------------------------------------------------------------

    @classmethod
    def model_path(cls) -> str:
        """The model in force: ``EVENT_SINKS["SINKS"][name]["MODEL"]`` if set, else ``model``."""
        # Read on every use (settings may change, tests override them), so read the raw dict: a full
        # get_settings() per object of a backfill would cost more than the object's row.
        from django.conf import settings

        try:
            configured = getattr(settings, "EVENT_SINKS", None) or {}
        except ImproperlyConfigured:  # no Django settings at all
            configured = {}
        options = (configured.get("SINKS") or {}).get(cls.name) or {}
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
    def model_class(cls) -> type:
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
    def _derive(cls, model) -> ModelDeclaration:
        where = f"sink {cls.name} ({model._meta.label})"
        concrete = list(model._meta.concrete_fields)
        by_name = {f.name: f for f in concrete} | {f.attname: f for f in concrete}

        def lookup(name, what):
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
        pk_raw = _reads_raw_text(pk)
        for field in chosen:
            col = cls.rename.get(field.name) or cls.rename.get(field.attname) or field.attname
            derived, converter, raw = None, None, False
            if col not in cls.types or not hasattr(cls, f"convert_{col}"):
                derived, converter, raw = field_column(field)
            type_ = cls.types.get(col, derived)
            names.append(col)
            types.append(type_)
            select.append(raw_text(field.attname) if raw else field.attname)
            if converter is not None:
                converters.append((len(names) - 1, converter))
            if type_ is not None and _strip_nullable(type_) == DATETIME:
                datetimes.append(len(names) - 1)

        key_field = cls.rename.get(pk.name) or cls.rename.get(pk.attname) or pk.attname
        if pk not in chosen or types[names.index(key_field)] != "String" or hasattr(cls, f"convert_{key_field}"):
            key_field = KEY_COLUMN
            names.insert(0, KEY_COLUMN)
            types.insert(0, "String")
            select.insert(0, raw_text("pk") if pk_raw else "pk")
            converters = [(0, _text)] + [(i + 1, c) for i, c in converters]
            datetimes = [i + 1 for i in datetimes]
        else:  # the primary key's own column is the key: it holds the key's text
            index = names.index(key_field)
            converters = [(i, c) for i, c in converters if i != index] + [(index, _text)]

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
        if len(set(names)) != len(names):
            raise SinkDefinitionError(f"{where}: duplicate column names in {names}")
        reserved = sorted({c.name for c in ledger.DUMP_COLUMNS} & set(names))
        if reserved:
            raise SinkDefinitionError(
                f"{where}: columns {reserved} are reserved for the dump runner; rename or exclude those fields"
            )
        try:
            columns = tuple(Column(n, t) for n, t in zip(names, types, strict=True))
            row_type = attrs.make_class(
                f"{cls.__name__}Row", {n: column(t, default=None) for n, t in zip(names, types, strict=True)},
            )
        except (UnsafeIdentifierError, SyntaxError, ValueError) as exc:
            raise SinkDefinitionError(f"{where}: {exc}") from None
        unknown_order = [c for c in cls.order_by if c not in names]
        if unknown_order:
            raise SinkDefinitionError(f"{where}: `order_by` names unknown columns {unknown_order}")
        return ModelDeclaration(
            model=model, row_type=row_type, columns=columns, key_field=key_field, select=tuple(select),
            converters=tuple(converters), methods=tuple(methods), datetimes=tuple(datetimes),
            pk_select=raw_text("pk") if pk_raw else "pk",
            version_attname=cls._version_attname(model, by_name, where),
        )

    @classmethod
    def _version_attname(cls, model, by_name, where) -> str | None:
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
            if isinstance(field, models.DateTimeField) and _updates_itself(field):
                return field.attname
        return None

    # -- hooks -------------------------------------------------------------------------------------------

    def schema(self):
        """The table and view; nothing where the model is not installed (the sink is disabled here)."""
        from .schema import Schema

        if not self.available():
            return Schema()
        return super().schema()

    def get_queryset(self):
        """The objects to mirror; override to filter or annotate (rows still come from ``values_list``)."""
        return self.model_class()._base_manager.all()

    def normalize_key(self, key: str) -> str:
        """The primary key's canonical text (``"007"`` -> ``"7"`` for an integer key)."""
        text = str(self._pk_value(key))
        return key if text == key else text  # the same string object: a backfill holds each key once

    def _pk_value(self, key):
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

            def aware(value):
                return value if value is None or value.tzinfo else timezone.make_aware(value, zone)

            steps += [(i, aware) for i in decl.datetimes if i not in {m[0] for m in decl.methods}]
        if not steps:
            return None
        steps.sort(key=lambda s: s[0])

        def convert(row: tuple) -> tuple:
            row = list(row)
            for i, fn in steps:
                row[i] = fn(row[i])
            return tuple(row)

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
        cache.entries = {str(pk): _version_text(v) for pk, v in rows}
        cache.filled_at = time.monotonic()
        return cache.entries.pop(key, None)

    def versions(self, keys: Iterable[str]) -> dict[str, str]:
        """Versions of many keys in a few queries (for a runner that asks per group of keys)."""
        attname = self.declaration().version_attname
        if attname is None:
            return {}
        values = list(keys)
        pk_text = self.declaration().pk_select
        found: dict[str, str] = {}
        for start in range(0, len(values), 500):
            rows = self.get_queryset().filter(pk__in=values[start:start + 500]).values_list(pk_text, attname)
            found.update((str(pk), _version_text(v)) for pk, v in rows)
        return found

    @classmethod
    def forget_version(cls, key: str) -> None:
        """Drop a version read ahead in this thread (its object was just saved or deleted)."""
        entries = getattr(cls._version_cache, "entries", None)
        if entries:
            entries.pop(key, None)
