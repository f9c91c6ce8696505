"""Django app config: a plain Django app, and an Open edX plugin through ``plugin_app``.

At ``ready()`` the system checks are registered (``manage.py check`` reports bad settings) and the
receivers of every enabled sink are connected. Nothing here may raise into the host: a failure is
logged and the LMS/CMS starts without the sink.
"""

import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


class EventSinksConfig(AppConfig):
    """Open edX plugin app: settings for common and production, receivers connected at ready()."""

    name = "event_sinks"
    verbose_name = "Event sinks (ClickHouse)"
    default_auto_field = "django.db.models.BigAutoField"

    plugin_app = {
        "settings_config": {
            "lms.djangoapp": {
                "common": {"relative_path": "settings.common"},
                "production": {"relative_path": "settings.production"},
            },
            "cms.djangoapp": {
                "common": {"relative_path": "settings.common"},
                "production": {"relative_path": "settings.production"},
            },
        },
    }

    def ready(self) -> None:
        from .checks import register
        from .errors import EventSinksError

        register()
        try:
            from .conf import NO_ENGINE, get_settings

            if get_settings().dsn is None:
                log.warning("event_sinks: %s", NO_ENGINE)  # once per process: receivers stay quiet
            from .receivers import connect_all

            connect_all()
        except EventSinksError as exc:  # a bad setting: said plainly (manage.py check names it too)
            log.error("event_sinks: could not connect sink receivers; sinks will not be triggered: %s", exc)
        except Exception:  # the host must start even if a sink is broken
            log.exception("event_sinks: could not connect sink receivers; sinks will not be triggered")
