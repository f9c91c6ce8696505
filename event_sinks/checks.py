"""Django system checks: every ``EVENT_SINKS`` problem reported at ``manage.py check`` (and at startup).

A bad value is reported at deploy time, with the key, the value and what was expected, instead of
at the first publish in production. The checks come from the one settings declaration
(:func:`event_sinks.conf.problems`), so they cannot drift from what :func:`get_settings` accepts.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .conf import NO_ENGINE, describe, get_settings, problems
from .errors import EventSinksError
from .registry import registry

#: Check ids: E001 a malformed or unknown part of EVENT_SINKS; W001 a sink plugin that failed to load;
#: W002 no engine configured (inside the LMS/CMS without a DSN: the sinks are off).
SETTINGS_ERROR = "event_sinks.E001"
PLUGIN_NOT_LOADED = "event_sinks.W001"
NO_ENGINE_WARNING = "event_sinks.W002"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """One Error per bad ``EVENT_SINKS`` key (or for EVENT_SINKS itself when it is not a dict)."""
    given = getattr(settings, "EVENT_SINKS", None) or {}
    found: list[checks.CheckMessage] = [
        checks.Error(message, hint=_hint(key), obj="settings.EVENT_SINKS", id=SETTINGS_ERROR)
        for key, message in problems(given)
    ]
    if not found:
        try:
            no_engine = get_settings().dsn is None
        except EventSinksError as exc:  # e.g. a malformed Aspects setting
            found.append(checks.Error(str(exc), obj="settings", id=SETTINGS_ERROR))
        else:
            if no_engine:
                found.append(checks.Warning(NO_ENGINE, hint=_hint("DSN"), obj="settings.EVENT_SINKS",
                                            id=NO_ENGINE_WARNING))
    return found


def check_plugins(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """One Warning per sink plugin that could not be loaded (the host runs without it)."""
    if problems(getattr(settings, "EVENT_SINKS", None) or {}):
        return []  # the settings errors come first; loading sinks reads them
    registry.names()
    return [
        checks.Warning(f"sink plugin {failure.entry_point} from {failure.distribution} was not loaded: "
                       f"{failure.error}", obj="event_sinks.sinks entry points", id=PLUGIN_NOT_LOADED)
        for failure in registry.failures
    ]


def _hint(key: str | None) -> str:
    return f"{key}: {describe(key)}" if key else "See docs/settings.md for every key and its default."


def register() -> None:
    """Register the checks with Django (called by the app's ``ready()``)."""
    checks.register(check_settings, "event_sinks")
    checks.register(check_plugins, "event_sinks")
