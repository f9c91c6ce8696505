"""Dispatch: when a triggered key actually gets dumped -- ``sync``, ``on_commit`` or ``celery``.

``sync`` and ``on_commit`` dump in the caller's thread: at once outside a database transaction,
and inside one when it commits (nothing happens if it rolls back), each dirty key once however many
signals marked it -- never the uncommitted state of a publish. ``celery`` sends tasks after the
commit (:mod:`event_sinks.tasks`): the default inside the LMS/CMS, where the request thread must do
almost no work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from .conf import get_settings
from .core.sink import Sink
from .dumping import dump
from .registry import get_sink

log = logging.getLogger(__name__)


def dump_now(sink: Sink, keys: Iterable[str], *, delete: bool = False) -> None:
    """Dump (or tombstone) ``keys`` right away; errors are logged, never raised to the caller.

    Skipping unchanged keys is what coalesces a publish: its first signal dumps the new version,
    the others of the burst find that version already current.
    """
    keys = list(keys)
    try:
        summary = dump(sink, keys, delete=delete, skip_unchanged=True)
        for failure in summary.failed:
            log.error("event_sinks: %s of %s %r failed: %s", "tombstone" if delete else "dump", sink.name,
                      failure.key, failure.error)
    except Exception:
        log.exception("event_sinks: dispatch of %s %s failed", sink.name, keys)


class _Pending(threading.local):
    """Keys marked dirty in the current transaction, per thread: {sink name: {key: delete?}}.

    The last signal of a key wins: saved, deleted and saved again in one transaction is a dump.
    """

    def __init__(self):
        self.keys: dict[str, dict[str, bool]] = {}


_pending = _Pending()


def _flush() -> None:
    batch, _pending.keys = _pending.keys, {}
    for name, marks in batch.items():
        sink = get_sink(name)
        for delete in (False, True):
            keys = sorted(k for k, d in marks.items() if d is delete)
            if keys:
                dump_now(sink, keys, delete=delete)


def _flush_scheduled(connection: Any) -> bool:
    """Whether our flush still waits in this transaction's on_commit list.

    Django drops on_commit callbacks when a transaction rolls back and offers no rollback hook, so
    a missing callback is how we learn that the keys pending from a rolled-back transaction must go.
    """
    return any(entry[1] is _flush for entry in connection.run_on_commit)


def dispatch(sink: Sink, keys: Iterable[str], *, delete: bool = False) -> None:
    """Schedule ``keys`` of ``sink`` with the strategy in EVENT_SINKS["DISPATCH"]."""
    strategy = get_settings().dispatch
    keys = list(keys)
    if strategy in ("sync", "on_commit"):
        # "sync" too waits for the surrounding transaction: inside one (a Studio request is one, with
        # ATOMIC_REQUESTS), dumping now would read what the publish has not committed yet.
        from django.db import transaction

        connection = transaction.get_connection()
        if not connection.in_atomic_block:
            dump_now(sink, keys, delete=delete)
            return
        if not _flush_scheduled(connection):
            _pending.keys = {}  # left over from a transaction that rolled back
            connection.on_commit(_flush)
        marks = _pending.keys.setdefault(sink.name, {})
        for key in keys:
            marks.pop(key, None)  # re-insert: the last signal wins and sets the order
            marks[key] = delete
    else:  # "celery"
        from django.db import transaction

        from .tasks import enqueue

        connection = transaction.get_connection()
        if connection.in_atomic_block:
            # Send after the publish's transaction commits: a worker must not read before it can see it.
            connection.on_commit(lambda: enqueue(sink, keys, delete=delete))
        else:
            enqueue(sink, keys, delete=delete)
