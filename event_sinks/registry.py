"""The registry: sinks discovered through the ``event_sinks.sinks`` entry-point group.

Any installed distribution registers a sink with one line in its packaging metadata::

    [options.entry_points]
    event_sinks.sinks =
        my_sink = my_plugin.sinks:MySink

The entry point's name must equal the sink's ``name``. The built-in sinks register the same way,
so there is one path for everybody. Loading is lazy (first lookup) and defensive: a plugin whose
import raises, or whose class is malformed, is logged with its distribution and skipped, because
one broken plugin must never stop the LMS or CMS from starting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import attrs
from importlib_metadata import EntryPoint, entry_points

from .conf import get_settings
from .core.sink import Sink
from .errors import SinkDefinitionError, UnknownSinkError

log = logging.getLogger(__name__)

GROUP = "event_sinks.sinks"


@attrs.frozen
class SinkEntry:
    """A registered sink class and where it came from."""

    sink_class: type[Sink]
    distribution: str

    @property
    def name(self) -> str:
        return self.sink_class.name


@attrs.frozen
class LoadFailure:
    """A plugin that could not be loaded, kept for ``list_sinks`` and diagnostics."""

    entry_point: str
    distribution: str
    error: str


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "(unknown distribution)"


class Registry:
    """The sinks of this process, by name."""

    def __init__(self, entry_points_source: Callable[[], Iterable[EntryPoint]] | None = None) -> None:
        self._source = entry_points_source or (lambda: entry_points(group=GROUP))
        self._entries: dict[str, SinkEntry] | None = None
        self._instances: dict[str, Sink] = {}
        self.failures: list[LoadFailure] = []
        self._lock = threading.RLock()

    # -- loading -------------------------------------------------------------------------------------

    def _load(self) -> dict[str, SinkEntry]:
        if self._entries is not None:
            return self._entries
        with self._lock:
            if self._entries is None:
                entries: dict[str, SinkEntry] = {}
                for ep in self._source():
                    self._load_one(ep, entries)
                self._entries = entries
        return self._entries

    def _load_one(self, ep: EntryPoint, entries: dict[str, SinkEntry]) -> None:
        dist = _distribution(ep)
        try:
            sink_class = ep.load()
            if not (isinstance(sink_class, type) and issubclass(sink_class, Sink)):
                raise SinkDefinitionError(f"{ep.value} is not a subclass of event_sinks.Sink")
            if sink_class.name != ep.name:
                raise SinkDefinitionError(
                    f"entry point name {ep.name!r} must equal the sink's name, found {sink_class.name!r}"
                )
            if ep.name in entries:
                raise SinkDefinitionError(
                    f"sink name {ep.name!r} is already registered by {entries[ep.name].distribution}"
                )
        except Exception as exc:  # one broken plugin must not take the others (or the host) down
            log.error(
                "event_sinks: skipping sink plugin %r from %s (%s): %s: %s",
                ep.name, dist, ep.value, type(exc).__name__, exc, exc_info=not isinstance(exc, SinkDefinitionError),
            )
            self.failures.append(LoadFailure(f"{ep.name} = {ep.value}", dist, f"{type(exc).__name__}: {exc}"))
            return
        entries[ep.name] = SinkEntry(sink_class, dist)

    def register(self, sink_class: type[Sink], distribution: str = "(registered at run time)") -> None:
        """Add a sink class by hand (tests, notebooks). Unlike entry points, mistakes raise here."""
        if not (isinstance(sink_class, type) and issubclass(sink_class, Sink)):
            raise SinkDefinitionError(f"expected a subclass of event_sinks.Sink, found {sink_class!r}")
        with self._lock:
            entries = self._load()
            existing = entries.get(sink_class.name)
            if existing is not None and existing.sink_class is not sink_class:
                raise SinkDefinitionError(
                    f"sink name {sink_class.name!r} is already registered by {existing.distribution}"
                )
            entries[sink_class.name] = SinkEntry(sink_class, distribution)

    def unregister(self, name: str) -> None:
        """Remove a sink registered by hand."""
        with self._lock:
            self._load().pop(name, None)
            self._instances.pop(name, None)

    # -- lookup --------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of every loaded sink, sorted."""
        return sorted(self._load())

    def entry(self, name: str) -> SinkEntry:
        """The registration of ``name``; raises :class:`UnknownSinkError` listing the known sinks."""
        entries = self._load()
        try:
            return entries[name]
        except KeyError:
            known = ", ".join(sorted(entries)) or "(none installed)"
            raise UnknownSinkError(f"unknown sink {name!r}; known sinks: {known}") from None

    def get(self, name: str) -> Sink:
        """The sink instance named ``name`` (one per process)."""
        entry = self.entry(name)
        with self._lock:
            instance = self._instances.get(name)
            if instance is None or type(instance) is not entry.sink_class:
                instance = self._instances[name] = entry.sink_class()
            return instance

    def all(self) -> list[Sink]:
        """Every loaded sink, enabled or not, sorted by name."""
        return [self.get(name) for name in self.names()]

    def enabled(self) -> list[Sink]:
        """The sinks switched on by the settings (PII sinks only when enabled explicitly) that can run here."""
        settings = get_settings()
        return [sink for sink in self.all() if settings.sink_enabled(sink.name, sink.pii) and sink.available()]

    def reset(self) -> None:
        """Forget everything loaded, so the next lookup reads the entry points again."""
        with self._lock:
            self._entries = None
            self._instances.clear()
            self.failures = []


#: The process-wide registry.
registry = Registry()


def get_sink(name: str) -> Sink:
    """The sink registered as ``name``; raises UnknownSinkError (listing the known sinks)."""
    return registry.get(name)


def all_sinks() -> list[Sink]:
    """Every registered sink, sorted by name."""
    return registry.all()


def is_enabled(sink: Sink) -> bool:
    """Whether the settings switch ``sink`` on."""
    return get_settings().sink_enabled(sink.name, sink.pii)

