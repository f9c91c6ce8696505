"""``manage.py show_course COURSE_KEY``: a course's current outline as an indented tree, from the views."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from ...clickhouse import Connection
from ...errors import EventSinksError
from ...registry import get_sink
from ._common import SinkCommand, connection_or_error


def outline_lines(connection: Connection, course_key: str) -> list[str]:
    """The tree lines of ``course_key`` as the current views show it (empty if it was never dumped)."""
    view = connection.renderer.qualified("course_blocks")
    rows = connection.query(
        "SELECT depth, display_name, block_type, label, graded, visible_to_staff_only, location "  # noqa: S608 - only validated identifiers
        f"FROM {view} WHERE course_key = {{key:String}} ORDER BY order_in_course",
        {"key": course_key},
    )
    lines = []
    for depth, name, block_type, label, graded, staff_only, _location in rows:
        marks = "".join([" [graded]" if graded and block_type == "sequential" else "",
                         " [staff only]" if staff_only and depth == 1 else ""])
        place = label.split(" - ", 1)[0] if 1 <= depth <= 3 else ""
        prefix = f"{place} " if place else ""
        lines.append(f"{'    ' * depth}{prefix}{name} ({block_type}){marks}")
    return lines


class Command(SinkCommand):
    """Print the current outline of one course, read back from ClickHouse."""

    help = "Print a course's current outline (from the course_blocks view) as an indented tree."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("course_key")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = get_sink("course_outline").normalize_key(options["course_key"])
            connection = connection_or_error()
            with connection.time_limit():  # a slow or trickling server holds it no longer than DUMP_TIMEOUT
                lines = outline_lines(connection, key)
                # No rows, or no answer? A count always answers with a row (Connection.value): a gateway
                # answering in the server's place is then an engine error, not "never dumped".
                shown = 0 if lines else connection.value(
                    f"SELECT count() FROM {connection.renderer.qualified('course_blocks')} "  # noqa: S608 - only validated identifiers
                    "WHERE course_key = {key:String}", {"key": key})
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
        if shown:
            raise CommandError(f"ClickHouse at {connection.target.masked} answered the outline of {key} with no row, "
                               f"but counts {shown} rows of it: an answer was lost between this host and the server")
        if not lines:
            raise CommandError(f"{key} has no current outline: dump it first (dump_sink course_outline {key})")
        self.stdout.write("\n".join(lines))
