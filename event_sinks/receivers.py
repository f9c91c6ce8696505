"""Receivers: turn a trigger's signal into a dispatch of the sink's key, without ever raising.

Receivers accept both call shapes: edx-platform's Django signals (``sender``, ``course_key``) and
openedx-events (``signal, sender, <data>, metadata, from_event_bus, **kwargs``). A receiver never
raises into the sender: a publish must go on whatever happens to the sink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .core.sink import Sink
from .core.triggers import Trigger
from .dispatch import dispatch
from .errors import NotHandledKeyError
from .registry import is_enabled, registry

log = logging.getLogger(__name__)

#: (sink name, signal path) -> (signal, receiver): what ready() connected, so running it twice connects
#: once. It also holds the strong reference to each receiver, which the signals reference weakly.
_connected: dict[tuple[str, str], tuple[Any, Callable[..., None]]] = {}


def make_receiver(sink: Sink, trigger: Trigger) -> Callable[..., None]:
    """A receiver for ``trigger`` of ``sink`` that logs instead of raising."""

    def receiver(sender: Any = None, **kwargs: Any) -> None:
        key = None
        try:
            if not is_enabled(sink):
                log.debug("event_sinks: %s is disabled; ignoring %s", sink.name, trigger.signal)
                return
            key = trigger.key(kwargs)
            if key is None:
                log.debug("event_sinks: %s: %s carried no key; ignored", sink.name, trigger.signal)
                return
            try:
                key = sink.normalize_key(str(key))
            except NotHandledKeyError as exc:
                log.debug("event_sinks: %s: %s; ignored", sink.name, exc)
                return
            metadata = kwargs.get("metadata")
            log.debug(
                "event_sinks: %s triggered by %s for %s (event %s, from the event bus: %s)",
                sink.name, trigger.signal, key, getattr(metadata, "id", None), kwargs.get("from_event_bus", False),
            )
            dispatch(sink, [key], delete=trigger.delete)
        except Exception:
            log.exception("event_sinks: %s failed to handle %s for key %r", sink.name, trigger.signal, key)

    receiver.__name__ = receiver.__qualname__ = f"event_sinks_{sink.name}_receiver"
    receiver.__doc__ = (f"event-sinks: {'tombstone' if trigger.delete else 'dump'} the {sink.name} sink's key "
                        f"of {trigger.signal} (dispatch: EVENT_SINKS['DISPATCH']).")
    return receiver


def connect_all() -> int:
    """Connect the triggers of every registered sink whose signal exists here; returns how many."""
    count = 0
    for sink in registry.all():
        for trigger in sink.triggers:
            if (sink.name, trigger.signal) in _connected:
                continue
            try:
                signal = trigger.resolve_signal()
            except (ImportError, AttributeError):
                log.debug("event_sinks: %s: signal %s is not available here", sink.name, trigger.signal)
                continue
            receiver = make_receiver(sink, trigger)
            # Weak, as Django's default: tools such as edx-platform's simulate_publish call each stored
            # reference to get the function; no dispatch_uid, so disconnect(receiver) works for them too.
            signal.connect(receiver)
            _connected[(sink.name, trigger.signal)] = (signal, receiver)
            count += 1
    log.info("event_sinks: connected %d receivers for %s", count, ", ".join(registry.names()) or "no sinks")
    return count


def disconnect_all() -> None:
    """Disconnect every receiver connected by :func:`connect_all` (tests)."""
    for signal, receiver in list(_connected.values()):
        signal.disconnect(receiver)
    _connected.clear()
