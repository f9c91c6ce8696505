"""Model triggers: ``post_save`` dumps a saved object, ``post_delete`` tombstones it, for one model only."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..core.triggers import Trigger
from ..errors import SinkDefinitionError
from .declaration import ModelUnavailableError

log = logging.getLogger(__name__)


class SenderSignal:
    """A Django signal bound to one sender, so ``receivers.connect_all`` connects it for that model only."""

    def __init__(self, signal: Any, sender: type):
        self.signal, self.sender = signal, sender

    def connect(self, receiver: Callable[..., Any], **kwargs: Any) -> None:
        self.signal.connect(receiver, sender=self.sender, **kwargs)

    def disconnect(self, receiver: Callable[..., Any] | None = None, **kwargs: Any) -> bool:
        return self.signal.disconnect(receiver, sender=self.sender, **kwargs)


@attrs.frozen
class ModelTrigger(Trigger):
    """A model signal (post_save, post_delete) received for one model only.

    ``sender`` returns the model class; ``resolve_signal`` raises ImportError when it is not
    installed, which ``receivers.connect_all`` treats as "not available here".
    """

    sender: Callable[[], type] = attrs.field(kw_only=True, eq=False)

    def resolve_signal(self) -> SenderSignal:
        signal = super().resolve_signal()
        try:
            model = self.sender()
        except ModelUnavailableError as exc:  # logged once where the model was looked up
            raise ImportError(str(exc)) from None
        except SinkDefinitionError as exc:  # the model changed under the declaration: this sink only
            log.error("event_sinks: %s; its receivers are not connected", exc)
            raise ImportError(str(exc)) from None
        return SenderSignal(signal, model)


def _instance_key(sink_class: Any, kwargs: Mapping[str, Any]) -> str | None:
    instance = kwargs.get("instance")
    if instance is None or instance.pk is None:
        return None
    key = str(instance.pk)
    sink_class.forget_version(key)
    return key


def model_triggers(sink_class: Any) -> tuple[ModelTrigger, ...]:
    """``post_save`` dumps the saved object, ``post_delete`` tombstones it; both for the sink's model only."""
    key = functools.partial(_instance_key, sink_class)
    return (
        ModelTrigger("django.db.models.signals.post_save", key, sender=sink_class.model_class),
        ModelTrigger("django.db.models.signals.post_delete", key, delete=True, sender=sink_class.model_class),
    )
