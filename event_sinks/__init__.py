"""event-sinks: keep ClickHouse in sync with Open edX content.

Public API (imported lazily, so ``import event_sinks`` stays cheap inside the LMS/CMS)::

    from event_sinks import Sink, column, get_sink, all_sinks, dump

    dump("course_outline", keys=["course-v1:OpenedX+DemoX+DemoCourse"])
    rows = list(get_sink("course_outline").serialize("course-v1:OpenedX+DemoX+DemoCourse"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Sink": "event_sinks.sink",
    "ModelSink": "event_sinks.models",
    "column": "event_sinks.sink",
    "get_sink": "event_sinks.registry",
    "all_sinks": "event_sinks.registry",
    "registry": "event_sinks.registry",
    "dump": "event_sinks.runner",
    "DumpResult": "event_sinks.runner",
    "DumpSummary": "event_sinks.runner",
    "get_engine": "event_sinks.clickhouse",
    "Trigger": "event_sinks.triggers",
    "EventSinksError": "event_sinks.errors",
}

__all__ = [
    "DumpResult", "DumpSummary", "EventSinksError", "ModelSink", "Sink", "Trigger", "all_sinks", "column", "dump",
    "get_engine", "get_sink", "registry",
]

if TYPE_CHECKING:  # pragma: no cover
    from .clickhouse import get_engine
    from .errors import EventSinksError
    from .models import ModelSink
    from .registry import all_sinks, get_sink, registry
    from .runner import DumpResult, DumpSummary, dump
    from .sink import Sink, column
    from .triggers import Trigger


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'event_sinks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
