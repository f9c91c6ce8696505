"""Settings for every Open edX environment: the platform's defaults, merged under what the operator set."""

from typing import Any

from event_sinks.conf import DEFAULTS

#: What differs inside the LMS/CMS (edx-platform's own rule for course_published listeners: "should do
#: almost no work"): dumps run in Celery workers, never in the request thread; and with no DSN the sinks
#: stay off (with a warning) instead of opening an embedded engine that only one of the platform's many
#: processes could use.
PLATFORM_DEFAULTS = {"DISPATCH": "celery", "EMBEDDED_ALLOWED": False}


def platform_defaults() -> dict[str, Any]:
    """Every ``EVENT_SINKS`` key with its default inside the LMS/CMS."""
    return {**DEFAULTS, **PLATFORM_DEFAULTS}


def plugin_settings(settings: Any) -> None:
    """Give ``settings.EVENT_SINKS`` every key, keeping the values the operator already set."""
    configured = dict(getattr(settings, "EVENT_SINKS", {}) or {})
    settings.EVENT_SINKS = {**platform_defaults(), **configured}
