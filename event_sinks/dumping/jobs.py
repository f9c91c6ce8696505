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
    keys_per_dump: int | None = None,
) -> DumpSummary:
    """Dump ``keys`` of ``sink`` (all of ``sink.keys()`` when None) and return the summary.

    The library entry point for other plugins: ``dump("course_outline", keys=[...])``. With
    ``delete``, write tombstones instead (the keys leave the current views). With
    ``skip_unchanged``, a key whose source version equals its current dump's is skipped. A failing
    key is reported in the summary and the others go on, unless ``raise_errors`` is set.

    Keys are dumped several to a dump (one dump id, one copy into the current table, one ledger
    insert) up to ``keys_per_dump``, by default the sink's :meth:`~event_sinks.core.sink.Sink.dump_group`
    (a backfill of the course sinks: up to 50 courses per dump). A sink with ``rows_per_dump`` sizes
    each dump from the rows per key of the one before it (the first holds one key), and gives a dump of
    n keys n DUMP_TIMEOUTs. A dump of several keys that fails on something other than the engine (a
    course that cannot be read) is done again key by key, so that only the broken key fails.
    """
    sink = get_sink(sink) if isinstance(sink, str) else sink
    dumper = Dumper(sink, connection, batch_size)
    if keys_per_dump is not None and keys_per_dump < 1:
        raise ValueError(f"keys_per_dump must be at least 1, found {keys_per_dump}")
    # One DUMP_TIMEOUT for the first dump with the statements before it, one more for each dump after it.
    with dumper.connection.time_limit() as limit:
        return _dump(sink, dumper, keys, limit, delete=delete, skip_unchanged=skip_unchanged,
                     raise_errors=raise_errors, on_result=on_result, keep_results=keep_results,
                     most=keys_per_dump if keys_per_dump is not None else sink.dump_group())


def _dump(sink: Sink, dumper: Dumper, keys: Iterable[str] | None, limit: TimeLimit, *, delete: bool,
          skip_unchanged: bool, raise_errors: bool, on_result: Callable[[DumpResult], None] | None,
          keep_results: bool, most: int) -> DumpSummary:
    if dumper.connection.settings.auto_create_schema:
        dumper.ensure_schema()
    summary = DumpSummary(keep_results=keep_results)
    if keys is not None:
        keys = list(keys)
    most = max(1, most)
    # With a rows bound the first dump holds one key, then as many keys as the bound holds at the rows
    # per key of the dump before (at most `most`): a backfill of big courses stays a few per dump.
    bound = sink.rows_per_dump if most > 1 else None
    group = 1 if bound and not delete else most  # a tombstone has no rows
    done = 0  # dumped keys since the last prune; pruned every CHUNK keys to stay O(batch)
    dumped = 0  # keys dumped by this run, for the dumper's housekeeping after it

    def prune() -> None:
        try:
            dumper.retention.prune()
        except EngineError as exc:  # retention is housekeeping: never fail a dump for it
            log.warning("event_sinks: pruning superseded dumps of %s failed (will retry next time): %s", sink.name, exc)

    def record(result: DumpResult) -> None:
        nonlocal done, dumped
        summary.add(result)
        if result.status == "dumped":
            done += 1
            dumped += 1
            if done >= max(CHUNK, most):
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
    read_at: dict[str, datetime] = {}  # when each pending key's source was read
    flushed: list[bool] = []  # a dump went since the time limit was renewed

    def one_dump(batch: dict[str, str], reads: dict[str, datetime]) -> list[DumpResult]:
        """One dump (or tombstone) of the keys of ``batch``; raises DumpError or EngineError."""
        if delete:
            return dumper.delete_keys(list(batch))
        return dumper.dump_keys(list(batch), batch, dumped_at=min(reads.values()) if reads else None)

    def failures(batch: dict[str, str], exc: Exception) -> list[DumpResult]:
        # a DumpError says which dump; its cause, what went wrong (an EngineError's cause is the driver's)
        error = str(exc.__cause__ or exc) if isinstance(exc, DumpError) else str(exc)
        return [DumpResult(sink.name, key, "failed", error=error) for key in batch]

    def flush() -> None:
        nonlocal group
        batch, reads = dict(pending), dict(read_at)
        pending.clear()
        read_at.clear()
        if bound and len(batch) > 1:  # a DUMP_TIMEOUT per key: what the keys had dumped one by one
            limit.left += limit.seconds * (len(batch) - 1)
        try:
            results = one_dump(batch, reads)
        except (DumpError, EngineError) as exc:
            cause = exc.__cause__ if isinstance(exc, DumpError) else exc
            if len(batch) > 1 and not isinstance(cause, EngineError):
                # Not the engine: one of the keys (a course that cannot be read, a sink's bug for one key).
                # Each key again in a dump of its own, so that only the broken one fails; the previous dump
                # of every key stayed visible meanwhile (nothing of the failed dump was copied).
                log.warning("event_sinks: the dump of %d keys of %s together failed (%s: %s); dumping them "
                            "one by one", len(batch), sink.name, type(cause).__name__, cause)
                results = []
                for key, version in batch.items():
                    limit.renew()
                    single = {key: reads[key]} if key in reads else {}
                    try:
                        results += one_dump({key: version}, single)
                    except (DumpError, EngineError) as again:
                        if raise_errors:
                            for result in results:
                                record(result)
                            raise
                        results += failures({key: version}, again)
            elif raise_errors:
                raise
            else:
                results = failures(batch, exc)
        flushed.append(True)
        for result in results:
            record(result)
        if bound:
            rows = [result.rows for result in results if result.status == "dumped"]
            if rows:  # as many keys as the bound holds at the rows per key just seen
                per_key = sum(rows) / len(rows)
                group = max(1, min(most, int(bound // per_key))) if per_key else most

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
                read_at[key] = reading
            if len(pending) >= group:
                flush()
        if pending:
            flush()
        if done:
            prune()
        dumper.after_run(dumped)
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
    ``raise_errors``). Sinks sharing a source (a :meth:`~event_sinks.core.sink.Sink.job` of their
    own: the course sinks) dump one key per dump here, whatever their ``keys_per_dump``: a publish is
    one course per dump, visible as soon as it is written. Several courses per dump is for runs of
    one sink (:func:`dump`: a backfill).
    """
    resolved = [get_sink(s) if isinstance(s, str) else s for s in sinks]
    summaries = [DumpSummary() for _ in resolved]
    keys = list(keys)
    shared = [type(sink).job is not Sink.job for sink in resolved]  # reads a source it shares with others
    with jobs_of(resolved):
        # Sinks reading no shared source get all the keys at once (a model sink: many keys per dump), and
        # so does a sink alone (one key per dump when it shares its source). Sinks sharing one go key by
        # key, every sink: a shared read keeps only the course read last, so sink by sink would read each
        # course again for the second sink.
        for sink, summary, sharing in zip(resolved, summaries, shared, strict=True):
            if not sharing or len(resolved) == 1:
                dump(sink, keys, delete=delete, skip_unchanged=skip_unchanged, raise_errors=raise_errors,
                     on_result=summary.add, keep_results=False, keys_per_dump=1 if sharing else None)
        for key in keys:
            for sink, summary, sharing in zip(resolved, summaries, shared, strict=True):
                if sharing and len(resolved) > 1:
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
