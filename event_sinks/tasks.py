"""The ``celery`` dispatch strategy: one Celery task per dirty key, retried, idempotent, coalesced.

Imported only when ``EVENT_SINKS["DISPATCH"] == "celery"`` (by :func:`event_sinks.dispatch.dispatch`)
and by Celery's task autodiscovery in workers; Celery is the optional extra ``celery``, so nothing
else in the package imports this module.

Public API:

``dump_key`` (task name ``event_sinks.dump_key``), args ``(sink_name, key, delete=False)``
    Runs one dump of one key (or writes a tombstone when ``delete``) in the worker:

    * **idempotent**: every run is a new dump and the latest complete dump wins (ADR 0001), so a
      duplicate delivery never duplicates what readers see; in addition a run is *skipped* when the
      key's source version equals the version of its current dump, so duplicates are also cheap;
    * **retried with exponential backoff and full jitter** on :class:`~event_sinks.errors.EngineError`
      (which includes :class:`~event_sinks.errors.EngineUnavailableError`): countdowns are drawn
      from ``[0, min(2**retries, RETRY_BACKOFF_MAX)]`` seconds, up to ``EVENT_SINKS["CELERY_MAX_RETRIES"]``
      retries. That setting is read **when the task runs** (see :class:`DumpTask`), so a change of
      settings needs no new task definition. With the default of 8 retries a dump survives an
      outage of a few minutes; raise it for longer ones, or backfill afterwards with
      ``dump_sink --all`` (unchanged keys are skipped);
    * **acknowledged late** (``acks_late`` + ``reject_on_worker_lost``): a worker that dies mid-dump
      leaves the message on the broker and another worker runs it again, which is safe because a
      dump is only visible once complete;
    * any other error (a bug in a sink, a malformed key, an unknown or misconfigured sink) is logged
      with the sink name and key and is **not** retried: running the same code on the same input
      again would fail the same way. The task then ends in FAILURE, as Celery monitoring expects.

``enqueue(sink, keys, *, delete=False) -> int``
    Sends one task per key to ``EVENT_SINKS["CELERY_QUEUE"]`` (Celery's routing when None), with a
    countdown of ``EVENT_SINKS["COALESCE_SECONDS"]``, coalescing repeated triggers of one key within
    that window into one task. Never raises: a broker that cannot be reached is logged with the sink
    name and key. Returns how many tasks were sent.

``run_dump(sink_name, key, *, delete=False) -> DumpResult``
    The body of the task without Celery (raises instead of retrying); also handy in a shell.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from celery import Task, shared_task

from .conf import get_settings
from .core.sink import Sink
from .dumping import DumpResult, run_one
from .errors import DumpError, EngineError, EventSinksError
from .registry import get_sink

log = logging.getLogger(__name__)

#: The registered name of the dump task (stable: it travels in broker messages).
TASK_NAME = "event_sinks.dump_key"
#: Longest wait between two retries, in seconds (before jitter).
RETRY_BACKOFF_MAX = 600
#: Prefix of the cache keys that coalesce repeated triggers.
COALESCE_PREFIX = "event_sinks.coalesce."


class DumpTask(Task):
    """Task class of :data:`dump_key`: its retry limit comes from the settings in force.

    Celery reads ``max_retries`` when a retry is requested, so making it a property that reads
    ``EVENT_SINKS["CELERY_MAX_RETRIES"]`` applies the worker's current settings to every retry.
    A value set explicitly on the task (Celery annotations) wins over the setting.
    """

    _max_retries_override: int | None = None

    @property
    def max_retries(self) -> int | None:
        if self._max_retries_override is not None:
            return self._max_retries_override
        return get_settings().celery_max_retries

    @max_retries.setter
    def max_retries(self, value: int | None) -> None:
        self._max_retries_override = value


def run_dump(sink_name: str, key: str, *, delete: bool = False) -> DumpResult:
    """Dump (or tombstone) one key of one sink now, the way the task does; raises on failure.

    :func:`event_sinks.dumping.run_one` for an enabled sink: a key whose source version equals its
    current dump's is skipped (one small ledger lookup). A failed dump caused by the engine raises an
    :class:`EngineError` (retryable); a dump failed by the sink itself raises :class:`DumpError`.
    """
    sink = get_sink(sink_name)
    if not get_settings().sink_enabled(sink.name, sink.pii):
        log.warning("event_sinks: %s is disabled in this worker's settings; task for key %r ignored", sink.name, key)
        return DumpResult(sink.name, key, "skipped", error="sink disabled")
    result = run_one(sink, key, delete=delete)
    if result.status == "skipped":
        log.info("event_sinks: %s %r unchanged (version %s); dump skipped", sink.name, key, result.source_version)
    return result


@shared_task(
    bind=True,
    base=DumpTask,
    name=TASK_NAME,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(EngineError,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
)
def dump_key(self: Task, sink_name: str, key: str, delete: bool = False) -> dict[str, Any]:
    """Dump one key of one sink (a tombstone when ``delete``); see the module docstring."""
    attempt = self.request.retries or 0
    try:
        result = run_dump(sink_name, key, delete=delete)
    except EngineError as exc:
        limit = self.max_retries
        if limit is not None and attempt >= limit:
            log.error(
                "event_sinks: dump of %s %r failed %d times; giving up (a later publish or dump_sink "
                "will bring the key up to date): %s", sink_name, key, attempt + 1, exc,
            )
        else:
            log.warning(
                "event_sinks: dump of %s %r failed (attempt %d of %s); retrying with backoff: %s",
                sink_name, key, attempt + 1, "unlimited" if limit is None else limit + 1, exc,
            )
        raise  # autoretry_for turns this into a retry with backoff, or the final failure
    except Exception as exc:
        log.error(
            "event_sinks: dump of %s %r failed and will not be retried: %s: %s",
            sink_name, key, type(exc).__name__, exc,
            # a traceback helps with a sink's bug, not with a bad key or an unknown sink
            exc_info=isinstance(exc, DumpError) or not isinstance(exc, EventSinksError),
        )
        raise
    return {
        "sink": result.sink,
        "key": result.key,
        "status": result.status,
        "rows": result.rows,
        "dump_id": str(result.dump_id) if result.dump_id else None,
        "source_version": result.source_version,
        "retries": attempt,
    }


def coalesce_key(sink_name: str, key: str, delete: bool = False) -> str:
    """The cache key that marks a task of (sink, key) as already sent in the current window.

    Hashed, so any key text (length, spaces, unicode) is a valid key on every cache backend.
    Deletions and dumps coalesce separately: a tombstone must never swallow a later dump.
    """
    digest = hashlib.sha256(f"{sink_name}\0{key}\0{int(bool(delete))}".encode()).hexdigest()
    return COALESCE_PREFIX + digest


def _claim(lock: str, window: float) -> bool:
    """Whether this trigger should send a task: True for the first trigger in the window.

    ``cache.add`` is atomic on every Django cache backend: exactly one caller sets the key until it
    expires. When the cache cannot be used we send anyway: an extra dump is harmless, a lost one is
    not.
    """
    try:
        from django.core.cache import cache

        return bool(cache.add(lock, 1, timeout=window))
    except Exception as exc:
        log.warning("event_sinks: coalescing cache unavailable, sending the task anyway: %s", exc)
        return True


def _release(lock: str) -> None:
    """Forget a claim whose task could not be sent, so the next trigger tries again."""
    try:
        from django.core.cache import cache

        cache.delete(lock)
    except Exception:  # the claim expires on its own after the window
        log.debug("event_sinks: could not release coalescing key %s", lock, exc_info=True)


def enqueue(sink: Sink | str, keys: Iterable[str], *, delete: bool = False) -> int:
    """Send one :data:`dump_key` task per key, coalescing triggers; never raises. Returns tasks sent.

    **Coalescing.** One Studio publish fires several signals, and authors publish in bursts. The
    first trigger of a (sink, key) adds a cache key that lives ``COALESCE_SECONDS`` (the window) and
    sends a task with a countdown of the same window; triggers that find the cache key send nothing.
    This never loses an update, because the task reads the source when it *runs*, not when it was
    sent: it was sent at or after the cache key was added, so it runs no earlier than the cache key
    expires, i.e. after every trigger it absorbed (cache backends that round timeouts round them
    down, which only shortens the window). A trigger after the window sends a new task. With
    several web processes, use a cache they share (memcached, Redis) or coalescing is per process;
    worker and web clocks must agree, as Celery's countdowns already require.

    When Celery runs tasks eagerly (``task_always_eager``), the countdown is ignored and the task
    reads at once, so coalescing is switched off: every trigger dumps.
    """
    name = sink if isinstance(sink, str) else getattr(sink, "name", str(sink))
    try:
        keys = list(dict.fromkeys(keys))
        settings = get_settings()
        window = max(0.0, float(settings.coalesce_seconds))
        if dump_key.app.conf.task_always_eager:
            window = 0.0
        options: dict[str, Any] = {}
        if window:
            options["countdown"] = window
        if settings.celery_queue:
            options["queue"] = settings.celery_queue
    except Exception:
        log.exception("event_sinks: could not enqueue dumps of %s %s", name, keys)
        return 0
    sent = 0
    for key in keys:
        lock = coalesce_key(name, key, delete) if window else None
        if lock is not None and not _claim(lock, window):
            log.debug("event_sinks: %s %r already has a dump task in this window; coalesced", name, key)
            continue
        try:
            dump_key.apply_async(args=(name, key, delete), **options)
        except Exception as exc:
            log.error(
                "event_sinks: could not enqueue the dump of %s %r (is the Celery broker reachable?): %s: %s",
                name, key, type(exc).__name__, exc,
            )
            if lock is not None:
                _release(lock)
            continue
        sent += 1
        log.debug("event_sinks: enqueued %s %r (delete=%s, %s)", name, key, delete, options)
    return sent
