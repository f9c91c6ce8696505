"""The ``celery`` dispatch strategy: one Celery task per dirty key for all its sinks, retried, coalesced.

Imported only when ``EVENT_SINKS["DISPATCH"] == "celery"`` (by :func:`event_sinks.dispatch.dispatch`)
and by Celery's task autodiscovery in workers; Celery is the optional extra ``celery``, so nothing
else in the package imports this module.

Public API:

``dump_key`` (task name ``event_sinks.dump_key``), args ``(sink_names, key, delete=False)``
    Runs the dumps of one key (or writes tombstones when ``delete``) in the worker, for one sink
    (``sink_names`` a name) or several together (a list: both course sinks read the course once):

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
      dump is only visible once complete. A message whose dump killed its worker twice (the first
      delivery and one redelivery: a course too large for the worker's memory) is rejected with an
      error naming the key instead of killing worker after worker; the starts are counted in the
      Django cache, so the protection spans the workers that share it;
    * any other error (a bug in a sink, a malformed key, an unknown or misconfigured sink) is logged
      with the sink name and key and is **not** retried: running the same code on the same input
      again would fail the same way. The task then ends in FAILURE, as Celery monitoring expects.

``enqueue(sinks, keys, *, delete=False) -> int``
    Sends one task per key (for all of ``sinks``) to ``EVENT_SINKS["CELERY_QUEUE"]`` (Celery's
    routing when None), with a countdown of ``EVENT_SINKS["COALESCE_SECONDS"]``, coalescing repeated
    triggers of one key within that window into one task. Never raises: a broker that cannot be
    reached is logged with the sink names and key. Returns how many tasks were sent.

``run_dump(sink_names, key, *, delete=False) -> list[DumpResult]``
    The body of the task without Celery (raises instead of retrying); also handy in a shell.

The task reports its code owner to Open edX's monitoring (``set_code_owner_attribute`` from
edx-django-utils, when installed), as the platform's own tasks do.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from celery import Task, shared_task
from celery.exceptions import Reject

from .conf import get_settings
from .core.sink import Sink
from .dumping import DumpResult, jobs_of, run_one, with_fan_out
from .errors import DumpError, EngineError, EventSinksError
from .registry import get_sink

log = logging.getLogger(__name__)

#: The registered name of the dump task (stable: it travels in broker messages).
TASK_NAME = "event_sinks.dump_key"
#: Longest wait between two retries, in seconds (before jitter).
RETRY_BACKOFF_MAX = 600
#: Prefix of the cache keys that coalesce repeated triggers.
COALESCE_PREFIX = "event_sinks.coalesce."
#: Prefix of the cache keys that count the starts of a message (see :data:`MAX_STARTS`).
STARTS_PREFIX = "event_sinks.starts."
#: Starts of one message that may die with their worker: the first delivery and one redelivery.
MAX_STARTS = 2
#: How long a start is remembered, in seconds: longer than any dump and its redelivery.
STARTS_TIMEOUT = 24 * 3600

_F = TypeVar("_F", bound=Callable[..., Any])

try:  # Open edX's monitoring: tasks report their code owner (a no-op without a monitoring backend)
    from edx_django_utils.monitoring import set_code_owner_attribute
except ImportError:  # outside the platform's dependencies
    def set_code_owner_attribute(wrapped_function: _F) -> _F:  # noqa: D103 - the identity decorator
        return wrapped_function


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


def _names(sinks: str | Sink | Sequence[str | Sink]) -> list[str]:
    if isinstance(sinks, (str, Sink)):
        sinks = [sinks]
    return list(dict.fromkeys(s if isinstance(s, str) else s.name for s in sinks))


def run_dump(sink_names: str | Sequence[str], key: str, *, delete: bool = False) -> list[DumpResult]:
    """Dump (or tombstone) one key with each of ``sink_names`` now, the way the task does; raises on failure.

    The sinks dump together (:func:`event_sinks.dumping.jobs_of`): sinks reading the same source
    (both course sinks) read it once; each also dumps the keys ``key`` fans out to (a course's CCX
    runs), after it. A key whose source version equals its current dump's is
    skipped (one small ledger lookup). If a sink fails because of the engine, an :class:`EngineError`
    (retryable) is raised once every sink has run; a dump failed by the sink itself raises
    :class:`DumpError`. Sinks disabled in this worker's settings are skipped with a warning.
    """
    settings = get_settings()
    sinks = []
    results: list[DumpResult] = []
    for name in _names(sink_names):
        sink = get_sink(name)
        if settings.sink_enabled(sink.name, sink.pii):
            sinks.append(sink)
        else:
            log.warning("event_sinks: %s is disabled in this worker's settings; task for key %r ignored", name, key)
            results.append(DumpResult(sink.name, key, "skipped", error="sink disabled"))
    errors: list[Exception] = []
    if sinks:
        with jobs_of(sinks):
            fanned = {sink.name: with_fan_out(sink, [key]) for sink in sinks}  # a course and its CCX runs
            # key by key, every sink: a shared read keeps the course read last only
            for each in dict.fromkeys(k for keys in fanned.values() for k in keys):
                for sink in (s for s in sinks if each in fanned[s.name]):
                    try:
                        result = run_one(sink, each, delete=delete)
                    except Exception as exc:  # the other keys and sinks still run; the first error is raised below
                        errors.append(exc)
                        continue
                    if result.status == "skipped":
                        log.info("event_sinks: %s %r unchanged (version %s); dump skipped", sink.name, each,
                                 result.source_version)
                    results.append(result)
    if errors:
        # an engine error first: the retry then redoes the failed sinks (the others are skipped as unchanged)
        errors.sort(key=lambda exc: not isinstance(exc, EngineError))
        raise errors[0]
    return results


def _result(result: DumpResult, retries: int) -> dict[str, Any]:
    return {
        "sink": result.sink,
        "key": result.key,
        "status": result.status,
        "rows": result.rows,
        "dump_id": str(result.dump_id) if result.dump_id else None,
        "source_version": result.source_version,
        "retries": retries,
    }


def _deliveries(task_id: str | None) -> int:
    """Count one more start of the message ``task_id``; returns the count (0 when it cannot be counted).

    The count lives in the Django cache (shared by the workers of a deployment) until the task ends:
    a start that was never followed by an end is a worker that died during the dump.
    """
    if not task_id:
        return 0
    try:
        from django.core.cache import cache

        lock = STARTS_PREFIX + task_id
        cache.add(lock, 0, timeout=STARTS_TIMEOUT)
        return int(cache.incr(lock))
    except Exception as exc:
        log.debug("event_sinks: could not count the deliveries of task %s: %s", task_id, exc)
        return 0


def _ended(task_id: str | None) -> None:
    if not task_id:
        return
    try:
        from django.core.cache import cache

        cache.delete(STARTS_PREFIX + task_id)
    except Exception:  # the count expires on its own
        log.debug("event_sinks: could not clear the deliveries of task %s", task_id, exc_info=True)


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
@set_code_owner_attribute
def dump_key(self: Task, sink_name: str | list[str], key: str, delete: bool = False) -> Any:
    """Dump one key with one sink, or with a list of sinks together (a tombstone when ``delete``)."""
    attempt = self.request.retries or 0
    names = ", ".join(_names(sink_name))
    starts = _deliveries(self.request.id)
    if starts > MAX_STARTS:
        # Each earlier delivery started and never ended: its worker died (killed for memory?) and
        # reject_on_worker_lost handed the message on. Another worker would die the same way.
        log.error(
            "event_sinks: dump of %s %r was started %d times and never finished (a worker died during it, "
            "e.g. killed for memory); giving up on it. Dump it by hand once the cause is fixed: %s",
            names, key, starts - 1, "; ".join(f"manage.py dump_sink {name} '{key}'" for name in _names(sink_name)),
        )
        _ended(self.request.id)
        raise Reject(f"{names} {key!r}: the worker died {starts - 1} times during this dump", requeue=False)
    try:
        results = run_dump(sink_name, key, delete=delete)
    except EngineError as exc:
        limit = self.max_retries
        if limit is not None and attempt >= limit:
            log.error(
                "event_sinks: dump of %s %r failed %d times; giving up (a later publish or dump_sink "
                "will bring the key up to date): %s", names, key, attempt + 1, exc,
            )
        else:
            log.warning(
                "event_sinks: dump of %s %r failed (attempt %d of %s); retrying with backoff: %s",
                names, key, attempt + 1, "unlimited" if limit is None else limit + 1, exc,
            )
        raise  # autoretry_for turns this into a retry with backoff, or the final failure
    except Exception as exc:
        log.error(
            "event_sinks: dump of %s %r failed and will not be retried: %s: %s",
            names, key, type(exc).__name__, exc,
            # a traceback helps with a sink's bug, not with a bad key or an unknown sink
            exc_info=isinstance(exc, DumpError) or not isinstance(exc, EventSinksError),
        )
        raise
    finally:
        _ended(self.request.id)
    if isinstance(sink_name, str):  # the message of one sink (as sent by earlier versions) gets one result
        return _result(results[0], attempt)
    return [_result(result, attempt) for result in results]


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


def enqueue(sinks: str | Sink | Sequence[str | Sink], keys: Iterable[str], *, delete: bool = False) -> int:
    """Send one :data:`dump_key` task per key for ``sinks`` together, coalescing triggers; never raises.

    Returns how many tasks were sent. One task carries every sink of the key that is not already
    coalesced, so the worker reads a course once for both course sinks.

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
    try:
        names = _names(sinks)
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
        log.exception("event_sinks: could not enqueue dumps of %s %s", sinks, keys)
        return 0
    sent = 0
    for key in keys:
        locks = {name: coalesce_key(name, key, delete) for name in names} if window else {}
        todo = [name for name in names if name not in locks or _claim(locks[name], window)]
        if not todo:
            log.debug("event_sinks: %s %r already has a dump task in this window; coalesced", names, key)
            continue
        what = ", ".join(todo)
        try:
            # one sink travels as a plain name: the message shape of earlier versions, for rolling upgrades
            dump_key.apply_async(args=(todo[0] if len(todo) == 1 else todo, key, delete), **options)
        except Exception as exc:
            log.error(
                "event_sinks: could not enqueue the dump of %s %r (is the Celery broker reachable?): %s: %s",
                what, key, type(exc).__name__, exc,
            )
            for name in todo:
                if name in locks:
                    _release(locks[name])
            continue
        sent += 1
        log.debug("event_sinks: enqueued %s %r (delete=%s, %s)", what, key, delete, options)
    return sent
