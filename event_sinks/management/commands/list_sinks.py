"""``manage.py list_sinks``: every registered sink with its table, triggers, state and origin."""

from __future__ import annotations

from typing import Any

from ...conf import NO_ENGINE, get_settings, mask_dsn
from ...registry import registry
from ._common import SinkCommand


class Command(SinkCommand):
    """List the sinks this process knows, and the plugins that failed to load."""

    help = "List registered sinks: name, view and table, triggers, enabled state, distribution."

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_settings()
        engine = mask_dsn(settings.dsn) if settings.dsn else f"none ({NO_ENGINE})"
        self.stdout.write(f"engine: {engine}  database: {settings.database}")
        for name in registry.names():
            entry = registry.entry(name)
            sink = registry.get(name)
            if not sink.available():
                state = "unavailable"
            else:
                state = "enabled" if settings.sink_enabled(name, sink.pii) else "disabled"
            pii = " [PII]" if sink.pii else ""
            self.stdout.write(f"\n{name}{pii} ({state}) - {sink.description}")
            self.stdout.write(f"  view: {sink.view_name}   table: {sink.table_name}   key: {sink.key_field}")
            self.stdout.write(f"  from: {entry.distribution}")
            for trigger in sink.triggers:
                self.stdout.write(f"  trigger: {trigger.signal}{' (delete)' if trigger.delete else ''}")
        for failure in registry.failures:
            self.stdout.write(f"\nNOT LOADED: {failure.entry_point} from {failure.distribution}: {failure.error}")
