"""``manage.py sink_query "SQL"``: an ad-hoc read on the sinks' database, printed as a table.

Only reads: one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement, checked by the engine's own parser
and run read-only with a time limit (see :mod:`._readonly` for what is refused and why).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from django.core.management.base import CommandError

from ...errors import EngineError
from ._common import SinkCommand, connection_or_error
from ._readonly import RefusedQuery, check, explain, query_settings
from ._table import format_table


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds more than 0, found {text!r}")
    return value


class Command(SinkCommand):
    """Run one reading statement against the configured engine (its database is the default)."""

    help = ("Run one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) on the sinks' database and print "
            "the rows.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sql")
        parser.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                            help="stop the statement after this many seconds (max_execution_time; default 60)")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connection_or_error()
        timeout = options["timeout"]
        try:
            statement = check(connection, options["sql"], timeout)
            if statement.startswith("EXPLAIN"):
                names, rows = ["explain"], [[line] for line in explain(connection, statement, timeout)]
            else:
                result = connection.client.query(statement, settings=query_settings(timeout))
                names, rows = result.column_names, result.result_rows
        except RefusedQuery as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            error = exc if isinstance(exc, EngineError) else connection.translate(exc, options["sql"])
            raise CommandError(str(error)) from exc
        self.stdout.write(format_table(names, rows))

