"""What a model sink's declaration resolves to once its model is loaded, and the lazy attributes it feeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..core.schema import Column
from ..errors import EventSinksError, SinkDefinitionError

#: Name of the text key column added when the primary key's own column is not ``String``.
KEY_COLUMN = "pk"


class ModelUnavailableError(EventSinksError, LookupError):
    """The model of a model sink is not installed in this process (the sink is disabled)."""


@attrs.frozen
class ModelDeclaration:
    """What a model sink's declaration resolves to once its model is loaded."""

    model: Any
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
    def pk_field(self) -> Any:
        return self.model._meta.pk


class Declared:
    """A Sink attribute that ModelSink derives from the model at first use (not at class creation)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: Any) -> Any:
        if owner.__dict__.get("_abstract"):
            return self
        return getattr(owner.declaration(), self.name)


class DeclaredKeyField(Declared):
    """``key_field``, which list_sinks shows even when the model is missing."""

    def __get__(self, instance: object, owner: Any) -> Any:
        if owner.__dict__.get("_abstract"):
            return self
        try:
            return owner.declaration().key_field
        except (ModelUnavailableError, SinkDefinitionError):
            return KEY_COLUMN


class DeclaredDescription:
    """The docstring's first line, plus why the sink is unavailable when its model is missing."""

    def __get__(self, instance: object, owner: Any) -> str:
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
