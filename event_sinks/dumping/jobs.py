"""The one path from keys to committed dumps: :func:`dump` (many keys) and :func:`run_one` (one key).

Every caller goes through here -- the library API, ``dump_sink``, the ``sync`` and ``on_commit``
dispatch, and the Celery task -- so schema creation (``AUTO_CREATE_SCHEMA``), key normalization,
skipping unchanged keys, tombstones and retention behave the same whichever way a dump starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime

from ..clickhouse import Connection
from ..clickhouse.deadline import TimeLimit
from ..core.sink import Sink
from ..errors import DumpError, EngineError
from ..registry import get_sink
from .dumper import Dumper
from .results import DumpResult, DumpSummary
from .retention import CHUNK

log = logging.getLogger(__name__)


def dump(
    sink: str | Sink,
    keys: Iterable[str] | None = None,
    *,
    delete: bool = False,
    connection: Connection | None = None,
    batch_size: int | None = None,
    skip_unchanged: bool = False,
    raise_errors: bool = False,
    on_result: Callable[[DumpResult], None] | None = None,
    keep_results: bool = True,
) -> DumpSummary:
    """Dump ``keys`` of ``sink`` (all of ``sink.keys()`` when None) and return the summary.

    The library entry point for other plugins: ``dump("course_outline", keys=[...])``. With
    ``delete``, write tombstones instead (the keys leave the current views). With
    ``skip_unchanged``, a key whose source version equals its current dump's is skipped. A failing
    key is reported in the summary and the others go on, unless ``raise_errors`` is set.
    """
    sink = get_sink(sink) if isinstance(sink, str) else sink
    dumper = Dumper(sink, connection, batch_size)
    # One DUMP_TIMEOUT for the first dump with the statements before it, one more for each dump after it.
    with dumper.connection.time_limit() as limit:
        return _dump(sink, dumper, keys, limit, delete=delete, skip_unchanged=skip_unchanged,
                     raise_errors=raise_errors, on_result=on_result, keep_results=keep_results)


def _dump(sink: Sink, dumper: Dumper, keys: Iterable[str] | None, limit: TimeLimit, *, delete: bool,
          skip_unchanged: bool, raise_errors: bool, on_result: Callable[[DumpResult], None] | None,
          keep_results: bool) -> DumpSummary:
    if dumper.connection.settings.auto_create_schema:
        dumper.ensure_schema()
    summary = DumpSummary(keep_results=keep_results)
    if keys is not None:
        keys = list(keys)
    group = max(1, sink.keys_per_dump)
    done = 0  # dumped keys since the last prune; pruned every CHUNK keys to stay O(batch)

    def prune() -> None:
        try:
            dumper.retention.prune()
        except EngineError as exc:  # retention is housekeeping: never fail a dump for it
            log.warning("event_sinks: pruning superseded dumps of %s failed (will retry next time): %s", sink.name, exc)

    def record(result: DumpResult) -> None:
        nonlocal done
        summary.add(result)
        if result.status == "dumped":
            done += 1
            if done >= max(CHUNK, group):
                prune()
                done = 0
        if on_result is not None:
            on_result(result)

    def failed(key: str, exc: BaseException) -> None:
        if raise_errors:
            raise exc
        log.warning("event_sinks: %s %r failed: %s: %s", sink.name, key, type(exc).__name__, exc)
        record(DumpResult(sink.name, key, "failed", error=f"{type(exc).__name__}: {exc}"))

    pending: dict[str, str] = {}  # key -> source version, waiting to be dumped (or deleted) together
    read_at: list[datetime] = []  # when each pending key's source was read
    flushed: list[bool] = []  # a dump went since the time limit was renewed

    def flush() -> None:
        batch, first_read = dict(pending), min(read_at) if read_at else None
        pending.clear()
        read_at.clear()
        try:
            results = dumper.delete_keys(list(batch)) if delete else dumper.dump_keys(
                list(batch), batch, dumped_at=first_read)
        except (DumpError, EngineError) as exc:
            if raise_errors:
                raise
            # a DumpError says which dump; its cause, what went wrong (an EngineError's cause is the driver's)
            error = str(exc.__cause__ or exc) if isinstance(exc, DumpError) else str(exc)
            results = [DumpResult(sink.name, key, "failed", error=error) for key in batch]
        flushed.append(True)
        for result in results:
            record(result)

    with sink.job():  # a version check and the dump after it read the source once
        known = dumper.current_versions(keys) if skip_unchanged and not delete else {}
        for raw_key in sink.keys() if keys is None else keys:
            if flushed and not pending:  # a new dump begins: a new DUMP_TIMEOUT (the last prune shares the last's)
                limit.renew()
                flushed.clear()
            try:
                key = sink.normalize_key(raw_key)
                if not delete:
                    reading = dumper.connection.server_time()  # before the source is read: this orders the dump
                    version = sink.version(key) or ""
            except Exception as exc:
                failed(str(raw_key), exc)
                continue
            if delete:
                pending[key] = ""
            elif skip_unchanged and version and known.get(key) == version:
                record(DumpResult(sink.name, key, "skipped", source_version=version))
                continue
            else:
                pending[key] = version
                read_at.append(reading)
            if len(pending) >= group:
                flush()
        if pending:
            flush()
        if done:
            prune()
    summary.finished = time.monotonic()
    log.info("event_sinks: %s: %s", sink.name, summary)
    return summary


def dump_together(
    sinks: Sequence[str | Sink], keys: Iterable[str], *, delete: bool = False, skip_unchanged: bool = True,
    raise_errors: bool = False,
) -> list[DumpSummary]:
    """Dump the same ``keys`` with several sinks inside all their jobs: sinks sharing a source read it once.

    What one publish needs: both course sinks dump the course from a single read. Each sink keeps its
    own dump, ledger row and atomic visibility; a failing sink does not stop the others (unless
    ``raise_errors``).
    """
    resolved = [get_sink(s) if isinstance(s, str) else s for s in sinks]
    summaries = [DumpSummary() for _ in resolved]
    keys = list(keys)
    with jobs_of(resolved):
        # Sinks dumping several keys as one dump get them all at once. The others go key by key, every
        # sink: a shared read keeps only the course read last, so sink by sink would read each course
        # again for the second sink.
        for sink, summary in zip(resolved, summaries, strict=True):
            if sink.keys_per_dump > 1 or len(resolved) == 1:
                dump(sink, keys, delete=delete, skip_unchanged=skip_unchanged, raise_errors=raise_errors,
                     on_result=summary.add, keep_results=False)
        for key in keys:
            for sink, summary in zip(resolved, summaries, strict=True):
                if not (sink.keys_per_dump > 1 or len(resolved) == 1):
                    dump(sink, [key], delete=delete, skip_unchanged=skip_unchanged, raise_errors=raise_errors,
                         on_result=summary.add, keep_results=False)
    for summary in summaries:
        summary.finished = time.monotonic()
    return summaries


@contextmanager
def jobs_of(sinks: Sequence[Sink]) -> Iterator[None]:
    """Inside every sink's :meth:`~event_sinks.core.sink.Sink.job`: what sinks sharing a source read once."""
    with ExitStack() as stack:
        for sink in sinks:
            stack.enter_context(sink.job())
        yield


def with_fan_out(sink: Sink, keys: Iterable[str]) -> list[str]:
    """``keys`` and the keys each fans out to (:meth:`~event_sinks.core.sink.Sink.fan_out`), each once.

    A fan-out that fails (its database is down) is logged and leaves the triggered keys as they are:
    the key that was triggered is dumped whatever happens to the keys it fans out to.
    """
    result: dict[str, None] = {}
    for key in keys:
        result[key] = None
        try:
            extra = list(sink.fan_out(key))
        except Exception as exc:
            log.warning("event_sinks: %s: could not list the keys %r fans out to: %s: %s", sink.name, key,
                        type(exc).__name__, exc)
            continue
        result.update(dict.fromkeys(extra))
    return list(result)


def run_one(sink: str | Sink, key: str, *, delete: bool = False, skip_unchanged: bool = True,
            connection: Connection | None = None) -> DumpResult:
    """Dump (or tombstone) one key now and return its result; raises on failure.

    A dump that failed because of the engine raises an :class:`EngineError` (of the engine error's
    class, with the dump's context): worth retrying. Anything else (a sink's bug, a malformed key)
    raises as it is: running the same code on the same input would fail the same way.
    """
    try:
        summary = dump(sink, [key], delete=delete, skip_unchanged=skip_unchanged, raise_errors=True,
                       connection=connection)
    except DumpError as exc:
        cause = exc.__cause__
        if isinstance(cause, EngineError):
            raise type(cause)(str(exc), code=cause.code) from exc
        raise
    return summary.results[0]
