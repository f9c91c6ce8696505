"""``manage.py sink_query "SQL"``: an ad-hoc read on the sinks' database, printed as a table.

Only reads: one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement, checked by the engine's own parser
and run read-only with a time limit (see :mod:`._readonly` for what is refused and why).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from django.core.management.base import CommandError

from ...clickhouse import deadline, diagnostics
from ...errors import EngineError
from ._common import SinkCommand, connection_or_error
from ._readonly import RefusedQuery, check, explain, query_settings
from ._table import format_table

#: ClickHouse's error code for a statement stopped by max_execution_time (it says so itself).
TIMEOUT_EXCEEDED = 159


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
                            help="stop the statement after this many seconds (max_execution_time; default 60); the "
                                 "command waits for the engine at most 2 s and a tenth longer")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connection_or_error()
        timeout = options["timeout"]
        started = time.monotonic()
        try:
            # The engine stops the statement at --timeout (max_execution_time) and says so; the command stops
            # waiting a little later whatever the engine does, so a slow or trickling server cannot hold it.
            # (reporting: the driver's warnings carry no traceback; the failure is reported below, in words)
            with connection.time_limit(timeout + grace(timeout)) as limit, deadline.enforced(limit), \
                    diagnostics.reporting():
                statement = check(connection, options["sql"], timeout)
                if statement.startswith("EXPLAIN"):
                    names, rows = ["explain"], [[line] for line in explain(connection, statement, timeout)]
                else:
                    result = connection.client.query(statement, settings=query_settings(timeout))
                    names, rows = result.column_names, result.result_rows
        except RefusedQuery as exc:
            raise CommandError(timed_out(connection, timeout, started) or str(exc)) from exc
        except Exception as exc:
            error = exc if isinstance(exc, EngineError) else connection.translate(exc, options["sql"])
            raise CommandError(timed_out(connection, timeout, started, error) or str(error)) from exc
        self.stdout.write(format_table(names, rows))


def grace(timeout: float) -> float:
    """How much longer than --timeout the command waits for the engine's own "timeout exceeded"."""
    return 2.0 + timeout / 10


def timed_out(connection: Any, timeout: float, started: float, error: Exception | None = None) -> str | None:
    """The message for a wait cut at --timeout (and its grace), unless the engine said it stopped the statement."""
    if time.monotonic() - started < timeout + grace(timeout) or getattr(error, "code", None) == TIMEOUT_EXCEEDED:
        return None
    return (f"sink_query: no complete answer within --timeout {timeout:g} s from {connection.target.masked} "
            "(a slow or stalled server); nothing was printed")
