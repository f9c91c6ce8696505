"""Dispatch: when triggered keys actually get dumped -- ``sync``, ``on_commit`` or ``celery``.

Signals mark (sink, key) pairs dirty. Inside a database transaction the marks wait for its commit
(nothing happens if it rolls back), whatever the strategy: a dump must never read what the publish
has not committed, and a Studio request is one transaction (``ATOMIC_REQUESTS``). Then the marks are
grouped by key, so the sinks that share a key are dumped together -- one course read for both course
sinks -- either in this thread (``sync``, ``on_commit``) or by one Celery task per key (``celery``,
:mod:`event_sinks.tasks`; the default inside the LMS/CMS, where the request thread must do almost no
work).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from .conf import get_settings
from .core.sink import Sink
from .dumping import dump_together, with_fan_out
from .errors import EventSinksError

log = logging.getLogger(__name__)


class Mark(NamedTuple):
    """One dirty key of one sink: dump it, or tombstone it when ``delete``."""

    sink: Sink
    key: str
    delete: bool = False


def group_marks(marks: Iterable[Mark]) -> list[tuple[list[Sink], list[str], bool]]:
    """(sinks, keys, delete) jobs: each key once per sink (the last mark wins), keys sharing sinks together."""
    last: dict[tuple[str, str], Mark] = {}
    for mark in marks:
        last.pop((mark.sink.name, mark.key), None)  # re-insert: the last mark wins and sets the order
        last[(mark.sink.name, mark.key)] = mark
    by_key: dict[tuple[str, bool], dict[str, Sink]] = {}
    for mark in last.values():
        by_key.setdefault((mark.key, mark.delete), {})[mark.sink.name] = mark.sink
    jobs: dict[tuple[tuple[str, ...], bool], tuple[list[Sink], list[str]]] = {}
    for (key, delete), sinks in by_key.items():
        names = tuple(sorted(sinks))
        job = jobs.setdefault((names, delete), ([sinks[n] for n in names], []))
        job[1].append(key)
    return [(sinks, keys, delete) for (_, delete), (sinks, keys) in jobs.items()]


def dump_now(sinks: list[Sink], keys: list[str], *, delete: bool = False) -> None:
    """Dump (or tombstone) ``keys`` of ``sinks`` together, right away; errors are logged, never raised.

    Skipping unchanged keys is what coalesces a publish: its first signal dumps the new version,
    the others of the burst find that version already current.
    """
    try:
        jobs: dict[tuple[str, ...], list[Sink]] = {}  # sinks grouped by their keys once fanned out
        for sink in sinks:
            jobs.setdefault(tuple(with_fan_out(sink, keys)), []).append(sink)
        summaries = [summary for job_keys, job_sinks in jobs.items()
                     for summary in dump_together(job_sinks, job_keys, delete=delete, skip_unchanged=True)]
        for summary in summaries:
            for failure in summary.failed:
                log.error("event_sinks: %s of %s %r failed: %s", "tombstone" if delete else "dump",
                          failure.sink, failure.key, failure.error)
    except EventSinksError as exc:  # the engine is down, a setting is wrong: said plainly, no traceback
        log.error("event_sinks: dispatch of %s %s failed: %s", ", ".join(s.name for s in sinks), keys, exc)
    except Exception:
        log.exception("event_sinks: dispatch of %s %s failed", ", ".join(s.name for s in sinks), keys)


def _run(marks: list[Mark]) -> None:
    """Dump the marks now with the strategy in force; never raises."""
    try:
        strategy = get_settings().dispatch
        jobs = group_marks(marks)
    except Exception:
        log.exception("event_sinks: could not dispatch %d dirty keys", len(marks))
        return
    for sinks, keys, delete in jobs:
        if strategy == "celery":
            from .tasks import enqueue  # celery is an optional extra: imported only when used

            enqueue(sinks, keys, delete=delete)
        else:
            dump_now(sinks, keys, delete=delete)


class _Pending(threading.local):
    """Marks made in the current transaction, per thread, waiting for its commit."""

    def __init__(self):
        self.marks: list[Mark] = []


_pending = _Pending()


def _flush() -> None:
    marks, _pending.marks = _pending.marks, []
    _run(marks)


def _flush_scheduled(connection: Any) -> bool:
    """Whether our flush still waits in this transaction's on_commit list.

    Django drops on_commit callbacks when a transaction rolls back and offers no rollback hook, so
    a missing callback is how we learn that the marks pending from a rolled-back transaction must go.
    """
    return any(entry[1] is _flush for entry in connection.run_on_commit)


def dispatch_marks(marks: Iterable[Mark]) -> None:
    """Dump ``marks`` with EVENT_SINKS["DISPATCH"]: now outside a transaction, at its commit inside one."""
    from django.db import transaction

    marks = list(marks)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _run(marks)
        return
    if not _flush_scheduled(connection):
        _pending.marks = []  # left over from a transaction that rolled back
        connection.on_commit(_flush)
    _pending.marks.extend(marks)


def dispatch(sink: Sink, keys: Iterable[str], *, delete: bool = False) -> None:
    """Schedule ``keys`` of ``sink`` with the strategy in EVENT_SINKS["DISPATCH"] (what a receiver does)."""
    dispatch_marks(Mark(sink, key, delete) for key in keys)
