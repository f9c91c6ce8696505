"""Receivers: one per signal, turning a signal into one dispatch of every sink it makes dirty.

One receiver per signal (not one per sink) is what lets one publish become one job: both course
sinks hear ``course_published``, and dispatching their keys together lets the worker read the course
once for both (:func:`event_sinks.dumping.dump_together`).

Receivers accept both call shapes: edx-platform's Django signals (``sender``, ``course_key``) and
openedx-events (``signal, sender, <data>, metadata, from_event_bus, **kwargs``). A receiver never
raises into the sender: a publish must go on whatever happens to the sink. They are connected weakly
(Django's default; :data:`_groups` keeps them alive), as edx-platform's ``simulate_publish`` expects.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import attrs

from .core.sink import Sink
from .core.triggers import Trigger
from .dispatch import Mark, dispatch_marks
from .errors import NotHandledKeyError
from .registry import is_enabled, registry

log = logging.getLogger(__name__)


@attrs.define
class _Group:
    """The receiver of one signal (and sender) and the (sink, trigger) pairs it serves."""

    signal: Any
    receiver: Callable[..., None]
    members: list[tuple[Sink, Trigger]] = attrs.Factory(list)


#: signal path (+ sender) -> its group; holds the strong reference to each receiver.
_groups: dict[str, _Group] = {}


def _marks(members: list[tuple[Sink, Trigger]], signal: str, kwargs: dict[str, Any]) -> list[Mark]:
    """The (sink, key, delete) marks one signal makes; a member that fails is logged and skipped."""
    marks = []
    for sink, trigger in members:
        key = None
        try:
            if not is_enabled(sink):
                log.debug("event_sinks: %s is disabled; ignoring %s", sink.name, signal)
                continue
            key = trigger.key(kwargs)
            if key is None:
                log.debug("event_sinks: %s: %s carried no key; ignored", sink.name, signal)
                continue
            try:
                key = sink.normalize_key(str(key))
            except NotHandledKeyError as exc:
                log.debug("event_sinks: %s: %s; ignored", sink.name, exc)
                continue
            marks.append(Mark(sink, key, trigger.delete))
        except Exception:
            log.exception("event_sinks: %s failed to handle %s for key %r", sink.name, signal, key)
    return marks


def _describe(group: _Group, signal: str) -> str:
    sinks = ", ".join(sink.name for sink, _ in group.members)
    return f"event-sinks: mark the {sinks} key(s) of {signal} dirty (dispatch: EVENT_SINKS['DISPATCH'])."


def _make_receiver(group_key: str, signal: str) -> Callable[..., None]:
    def receiver(sender: Any = None, **kwargs: Any) -> None:
        try:
            group = _groups.get(group_key)
            if group is None:
                return
            marks = _marks(group.members, signal, kwargs)
            if not marks:
                return
            metadata = kwargs.get("metadata")
            log.debug(
                "event_sinks: %s marked %s (event %s, from the event bus: %s)", signal,
                ", ".join(f"{m.sink.name} {m.key!r}{' (delete)' if m.delete else ''}" for m in marks),
                getattr(metadata, "id", None), kwargs.get("from_event_bus", False),
            )
            dispatch_marks(marks)
        except Exception:
            log.exception("event_sinks: handling %s failed", signal)

    # simulate_publish names receivers "<module>.<function name>": one readable name per signal.
    short = re.sub(r"\W+", "_", signal.rpartition(".")[2].rpartition(":")[2]).lower()
    receiver.__name__ = receiver.__qualname__ = f"event_sinks_{short}_receiver"
    return receiver


def _group_key(trigger: Trigger, signal: Any) -> str:
    sender = getattr(signal, "sender", None)
    if sender is None:
        return trigger.signal
    label = getattr(getattr(sender, "_meta", None), "label", None) or repr(sender)
    return f"{trigger.signal}:{label}"


def connect_all() -> int:
    """Connect the triggers of every registered sink whose signal exists here; returns how many are new.

    Running it again connects only what is new (a sink registered since); each signal gets one receiver.
    """
    count = 0
    for sink in registry.all():
        for trigger in sink.triggers:
            if any(s.name == sink.name and t.signal == trigger.signal
                   for group in _groups.values() for s, t in group.members):
                continue
            try:
                signal = trigger.resolve_signal()
            except (ImportError, AttributeError):
                log.debug("event_sinks: %s: signal %s is not available here", sink.name, trigger.signal)
                continue
            key = _group_key(trigger, signal)
            group = _groups.get(key)
            if group is None:
                group = _groups[key] = _Group(signal, _make_receiver(key, trigger.signal))
                # Weak, as Django's default (simulate_publish calls each stored reference); no
                # dispatch_uid, so disconnect(receiver) works for tools that select receivers.
                signal.connect(group.receiver)
            group.members.append((sink, trigger))
            group.receiver.__doc__ = _describe(group, trigger.signal)
            count += 1
    log.info("event_sinks: connected %d triggers of %s", count, ", ".join(registry.names()) or "no sinks")
    return count


def disconnect_sinks(*names: str) -> None:
    """Stop triggering the sinks ``names``; a signal left with no sink loses its receiver."""
    for key, group in list(_groups.items()):
        group.members[:] = [(s, t) for s, t in group.members if s.name not in names]
        if not group.members:
            group.signal.disconnect(group.receiver)
            del _groups[key]


def connected_sinks() -> set[str]:
    """Names of the sinks that have at least one trigger connected."""
    return {sink.name for group in _groups.values() for sink, _ in group.members}


def disconnect_all() -> None:
    """Disconnect every receiver connected by :func:`connect_all` (tests)."""
    for group in list(_groups.values()):
        group.signal.disconnect(group.receiver)
    _groups.clear()
