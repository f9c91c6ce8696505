"""event-sinks: keep ClickHouse in sync with Open edX content.

Public API (imported lazily, so ``import event_sinks`` stays cheap inside the LMS/CMS)::

    from event_sinks import Sink, column, get_sink, all_sinks, dump

    dump("course_outline", keys=["course-v1:OpenedX+DemoX+DemoCourse"])
    rows = list(get_sink("course_outline").serialize("course-v1:OpenedX+DemoX+DemoCourse"))

A sink author needs ``Sink``, ``column``, ``ColumnBatch``, ``Constant``, ``Trigger`` (and
``ModelSink`` or ``CourseSink`` to build on); the errors are all subclasses of ``EventSinksError``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    # the contract a sink author reads
    "Sink": "event_sinks.core",
    "column": "event_sinks.core",
    "ColumnBatch": "event_sinks.core",
    "Constant": "event_sinks.core",
    "Trigger": "event_sinks.core",
    "Column": "event_sinks.core",
    "Table": "event_sinks.core",
    "View": "event_sinks.core",
    "Schema": "event_sinks.core",
    "ModelSink": "event_sinks.modelsinks",
    "CourseSink": "event_sinks.sinks.course_sink",
    "Course": "event_sinks.courses",
    "Block": "event_sinks.courses",
    # using sinks
    "get_sink": "event_sinks.registry",
    "all_sinks": "event_sinks.registry",
    "registry": "event_sinks.registry",
    "dump": "event_sinks.dumping",
    "run_one": "event_sinks.dumping",
    "DumpResult": "event_sinks.dumping",
    "DumpSummary": "event_sinks.dumping",
    "get_connection": "event_sinks.clickhouse",
    "get_settings": "event_sinks.conf",
    # errors
    "EventSinksError": "event_sinks.errors",
    "ConfigurationError": "event_sinks.errors",
    "SinkDefinitionError": "event_sinks.errors",
    "UnknownSinkError": "event_sinks.errors",
    "InvalidKeyError": "event_sinks.errors",
    "NotHandledKeyError": "event_sinks.errors",
    "EngineError": "event_sinks.errors",
    "EngineUnavailableError": "event_sinks.errors",
    "DumpError": "event_sinks.errors",
    "CourseReadError": "event_sinks.courses",
}

__all__ = [
    "Block", "Column", "ColumnBatch", "ConfigurationError", "Constant", "Course", "CourseReadError", "CourseSink",
    "DumpError", "DumpResult", "DumpSummary", "EngineError", "EngineUnavailableError", "EventSinksError",
    "InvalidKeyError", "ModelSink", "NotHandledKeyError", "Schema", "Sink", "SinkDefinitionError", "Table", "Trigger",
    "UnknownSinkError", "View", "all_sinks", "column", "dump", "get_connection", "get_settings", "get_sink",
    "registry", "run_one",
]

if TYPE_CHECKING:  # pragma: no cover
    from .clickhouse import get_connection
    from .conf import get_settings
    from .core import Column, ColumnBatch, Constant, Schema, Sink, Table, Trigger, View, column
    from .courses import Block, Course, CourseReadError
    from .dumping import DumpResult, DumpSummary, dump, run_one
    from .errors import (
        ConfigurationError,
        DumpError,
        EngineError,
        EngineUnavailableError,
        EventSinksError,
        InvalidKeyError,
        NotHandledKeyError,
        SinkDefinitionError,
        UnknownSinkError,
    )
    from .modelsinks import ModelSink
    from .registry import all_sinks, get_sink, registry
    from .sinks.course_sink import CourseSink


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'event_sinks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
