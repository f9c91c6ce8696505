"""Django settings for an anchor's worker process, from the anchor's own ``plugin_settings``.

An Open edX plugin adds its settings through ``plugin_settings(settings)`` (edx-django-utils'
plugin framework calls it on the LMS/CMS settings module); here it is called on a namespace, and
the result is overridden only where the platform's deployment would set something:

- ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG["url"]``: the local discard endpoint (Tutor points it at
  its ClickHouse); ``timeout_secs`` raised from the plugin's 5 s so a 300k-block POST on a loaded
  2-core machine does not time out (it bounds waiting for the answer, not the work);
- ``EVENT_SINK_CLICKHOUSE_MODEL_CONFIG["course_overviews"]``: the benchmarks-local model
  (:mod:`anchors.overviews.models`) instead of openedx.core.djangoapps.content.course_overviews;
- ``EVENT_SINK_CLICKHOUSE_COURSE_OVERVIEWS_ENABLED = True``: the setting their
  ``ModelBaseSink.is_enabled()`` reads before its waffle flag (``enabled = getattr(settings,
  f"{WAFFLE_FLAG_NAMESPACE.upper()}_{cls.model.upper()}_ENABLED", False)``; ``enabled or
  waffle_flag.is_enabled()``), so the flag's database table is never needed;
- ``FEATURES = {}``: lms/envs/common.py's default leaves ``CUSTOM_COURSES_EDX`` off, so the task
  dumps no CCX runs.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

#: The anchor's Django app (its package) and the module holding its ``plugin_settings``.
PLUGIN_SETTINGS = {
    "event_sink_clickhouse": "event_sink_clickhouse.settings.common",
    "platform_plugin_aspects": "platform_plugin_aspects.settings.common",
}


def configure(package: str, url: str) -> dict[str, Any]:
    """Configure Django for ``package``'s task and run ``django.setup()``; returns the settings used."""
    import django
    from django.conf import settings

    plugin = types.SimpleNamespace(MAKO_TEMPLATE_DIRS_BASE=[])  # Aspects appends its template folder
    importlib.import_module(PLUGIN_SETTINGS[package]).plugin_settings(plugin)
    values = {name: value for name, value in vars(plugin).items() if name.isupper()}
    values["EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG"] = {
        **values["EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG"], "url": url, "timeout_secs": 120,
    }
    values["EVENT_SINK_CLICKHOUSE_MODEL_CONFIG"] = {
        **values["EVENT_SINK_CLICKHOUSE_MODEL_CONFIG"],
        "course_overviews": {"module": "anchors.overviews.models", "model": "CourseOverview"},
    }
    values["EVENT_SINK_CLICKHOUSE_COURSE_OVERVIEWS_ENABLED"] = True
    settings.configure(
        # contenttypes and auth: their serializers module binds auth's User at import time
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "anchors.overviews"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True, TIME_ZONE="UTC", SECRET_KEY="benchmark", LOGGING_CONFIG=None, FEATURES={},
        **values,
    )
    django.setup()
    return values
