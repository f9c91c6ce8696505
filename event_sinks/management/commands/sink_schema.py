"""``manage.py sink_schema [SINK ...] [--apply]``: print or apply the DDL of sinks."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from ...core.visibility import ledger_schema
from ...errors import EventSinksError
from ...registry import registry
from ._common import SinkCommand, connection_or_error, sink_or_error


class Command(SinkCommand):
    """Print (default) or apply the tables and views of the given sinks (all when none given)."""

    help = "Print the ClickHouse DDL of sinks (tables and views), or apply it with --apply."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sinks", nargs="*", metavar="SINK")
        parser.add_argument("--apply", action="store_true", help="run the statements on the engine")

    def handle(self, *args: Any, **options: Any) -> None:
        sinks = [sink_or_error(n) for n in options["sinks"]] or [s for s in registry.all() if s.available()]
        schema = ledger_schema()
        for sink in sinks:
            schema = schema + sink.schema()
        connection = connection_or_error()
        try:
            if options["apply"]:
                with connection.time_limit():  # as the schema steps of a dump: DUMP_TIMEOUT
                    statements = connection.apply_schema(schema, force=True)
                self.stdout.write(f"applied {len(statements)} statements to {connection.target.masked}")
            else:
                statements = [connection.renderer.create_database(), *connection.renderer.statements(schema)]
                self.stdout.write(";\n\n".join(statements) + ";")
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
