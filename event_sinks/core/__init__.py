"""The contract a sink author reads: the Sink base class, typed columns, triggers and schema objects.

Nothing here talks to ClickHouse, Django or Open edX: it is plain declarations and their validation,
so the layers above (settings, engine access, dumping, the built-in sinks) all build on one vocabulary.
"""

from .columns import ColumnBatch, Constant, column, row_columns
from .schema import Column, Schema, Table, View, identifier, quote
from .sink import Sink
from .triggers import Trigger

__all__ = [
    "Column", "ColumnBatch", "Constant", "Schema", "Sink", "Table", "Trigger", "View", "column", "identifier",
    "quote", "row_columns",
]
