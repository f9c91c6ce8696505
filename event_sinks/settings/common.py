"""Settings for every Open edX environment: the defaults, merged under what the operator set."""

from typing import Any

from event_sinks.conf import DEFAULTS


def plugin_settings(settings: Any) -> None:
    """Give ``settings.EVENT_SINKS`` every key, keeping the values the operator already set."""
    configured = dict(getattr(settings, "EVENT_SINKS", {}) or {})
    settings.EVENT_SINKS = {**DEFAULTS, **configured}
