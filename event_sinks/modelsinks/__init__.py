"""Model sinks: Django models mirrored to ClickHouse declaratively (columns from the model's fields)."""

from .declaration import KEY_COLUMN, ModelDeclaration, ModelUnavailableError
from .fields import field_column
from .sink import ModelSink
from .triggers import ModelTrigger

__all__ = ["KEY_COLUMN", "ModelDeclaration", "ModelSink", "ModelTrigger", "ModelUnavailableError", "field_column"]
