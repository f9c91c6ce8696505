"""Triggers: which signals make which keys dirty.

A sink lists ``Trigger``s; each names a signal by dotted path (so a signal that only exists inside
edx-platform costs nothing elsewhere) and says how to get the sink's key from the signal's kwargs.
Connecting them and the receivers live in :mod:`event_sinks.receivers`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


def _dotted(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or "." not in value:
        raise ValueError(f"a trigger's signal must be a dotted path like 'module.SIGNAL', found {value!r}")


@attrs.frozen
class Trigger:
    """A signal and how to turn its kwargs into the key to dump.

    ``key`` receives the receiver's keyword arguments and returns the key (or None to ignore the
    signal). ``delete`` marks triggers whose key should leave the current view instead of being
    dumped (a deleted course).
    """

    signal: str = attrs.field(validator=_dotted)
    key: Callable[[dict[str, Any]], str | None]
    delete: bool = False

    def resolve_signal(self) -> Any:
        """Import and return the signal object; raises ImportError/AttributeError when absent."""
        import importlib

        module_path, _, attr_path = self.signal.partition(":")
        if not attr_path:
            module_path, _, attr_path = self.signal.rpartition(".")
        obj = importlib.import_module(module_path)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
        return obj
