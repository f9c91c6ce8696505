"""Settings: the ``EVENT_SINKS`` declaration, the settings in force, and engine DSNs."""

from .dsn import Target, mask_dsn, parse_dsn
from .settings import (
           ASPECTS_SETTING,
           DEFAULTS,
           DISPATCH_STRATEGIES,
           NO_ENGINE,
           Settings,
           describe,
           get_settings,
           problems,
           sink_options,
)

__all__ = [
    "ASPECTS_SETTING", "DEFAULTS", "DISPATCH_STRATEGIES", "NO_ENGINE", "Settings", "Target", "describe", "get_settings",
    "mask_dsn", "parse_dsn", "problems", "sink_options",
]
