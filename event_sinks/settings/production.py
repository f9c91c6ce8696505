"""Production settings: ``EVENT_SINKS`` from the YAML config, over the platform defaults."""

from typing import Any

from event_sinks.settings.common import platform_defaults


def plugin_settings(settings: Any) -> None:
    """Merge the YAML's ``EVENT_SINKS`` over the platform defaults.

    edx-platform's production settings replace each setting named in the YAML file with the YAML's
    value (``vars().update(_YAML_TOKENS)``) before the plugins' production settings run, so an
    ``EVENT_SINKS`` there has already replaced what the common settings built: the defaults go back in
    underneath it here. ``ENV_TOKENS`` (the YAML, kept by the platform for plugins) is read too.
    """
    tokens = getattr(settings, "ENV_TOKENS", {}) or {}
    current = dict(getattr(settings, "EVENT_SINKS", {}) or {})
    settings.EVENT_SINKS = {**platform_defaults(), **current, **(tokens.get("EVENT_SINKS") or {})}
