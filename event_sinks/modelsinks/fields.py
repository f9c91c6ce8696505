"""Django fields as ClickHouse columns: the type of each field and the converter its values need."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.visibility import DATETIME
from ..errors import SinkDefinitionError

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


def text_value(value: object) -> str | None:
    """A value as its text (None stays None)."""
    return None if value is None else str(value)


def _empty_is_none(value: Any) -> Any:
    return value or None


def _none_is_empty(value: Any) -> Any:
    return "" if value is None else value


def _binary(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _microseconds(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(microseconds=1)


def _json(encoder: type[json.JSONEncoder] | None, nullable: bool) -> Callable[[Any], str | None]:
    def convert(value: Any) -> str | None:
        if value is None and nullable:
            return None
        return json.dumps(value, cls=encoder, ensure_ascii=False, separators=(",", ":"))

    return convert


def _opaque_key_field_class() -> type | None:
    try:
        from opaque_keys.edx.django.models import OpaqueKeyField
    except ImportError:  # pragma: no cover - edx-opaque-keys is a dependency of openedx-events
        return None
    return OpaqueKeyField


def field_column(field: Any) -> tuple[str, Callable[[Any], Any] | None, bool]:
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
        type_ = strip_nullable(type_)
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
        simple = SIMPLE_TYPES.get(internal)
        if simple is None:
            raise SinkDefinitionError(
                f"{_where(field)}: no ClickHouse type for {type(field).__name__} (internal type {internal}); "
                f"exclude the field, or declare its column in `types` and a convert_<column>() method"
            )
        type_ = simple
        if type_ == "String" and not type(field).__module__.startswith("django."):
            converter = text_value  # a third-party text field may hand out objects: store their text
    if nullable:
        type_ = f"Nullable({type_})"
    return type_, converter, raw


def raw_text(attname: str) -> Any:
    """A ``values_list`` argument reading the column's stored text, without the field's conversion."""
    from django.db import models

    return models.ExpressionWrapper(models.F(attname), output_field=models.TextField())


def reads_raw_text(field: Any) -> bool:
    """Whether the field's column holds its stored text (opaque keys) rather than a converted value."""
    try:
        return field_column(field)[2]
    except SinkDefinitionError:
        return False


def strip_nullable(type_: str) -> str:
    """``Nullable(T)`` -> ``T``."""
    return type_[len("Nullable("):-1] if type_.startswith("Nullable(") else type_


def _where(field: Any) -> str:
    model = getattr(field, "model", None)
    return f"{model._meta.label}.{field.name}" if model is not None else repr(field)


def updates_itself(field: Any) -> bool:
    """Whether a DateTimeField is set on every save (auto_now, or a pre_save like model_utils')."""
    from django.db import models

    return bool(getattr(field, "auto_now", False)) or type(field).pre_save is not models.DateTimeField.pre_save


def version_text(value: object) -> str:
    """A version field's value as ledger text: ISO for datetimes (UTC), else its text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return str(value)
