"""Production settings: read ``EVENT_SINKS`` overrides from the YAML config (``ENV_TOKENS``)."""

from typing import Any


def plugin_settings(settings: Any) -> None:
    """Merge ``EVENT_SINKS`` from the environment tokens over the common settings."""
    tokens = getattr(settings, "ENV_TOKENS", {}) or {}
    settings.EVENT_SINKS = {**getattr(settings, "EVENT_SINKS", {}), **(tokens.get("EVENT_SINKS") or {})}
