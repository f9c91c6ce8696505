"""``manage.py sink_query "SQL"``: an ad-hoc read on the sinks' database, printed as a table."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from ...errors import EventSinksError
from ._common import SinkCommand, connection_or_error
from ._table import format_table


class Command(SinkCommand):
    """Run one SELECT against the configured engine (its database is the default)."""

    help = "Run a read-only SQL query on the sinks' database and print the rows."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sql")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connection_or_error()
        try:
            result = connection.client.query(options["sql"], settings={"readonly": 2})
        except Exception as exc:
            error = exc if isinstance(exc, EventSinksError) else connection.translate(exc, options["sql"])
            raise CommandError(str(error)) from exc
        self.stdout.write(format_table(result.column_names, result.result_rows))
