"""The command line: ``event-sinks COMMAND ...`` (or ``python -m event_sinks``), the commands without a Django project.

Built-in settings: the embedded engine with its data in ``./event_sinks_data`` (``--dsn`` or the
``EVENT_SINKS_DSN`` environment variable select another engine). Commands: ``dump_sink``,
``sink_schema``, ``list_sinks``, ``show COURSE_KEY``, ``query "SQL"``, and ``demo`` (dump the bundled
sample course and show it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

ALIASES = {"show": "show_course", "query": "sink_query", "schema": "sink_schema", "list": "list_sinks"}
COMMANDS = ("dump_sink", "sink_schema", "list_sinks", "show_course", "sink_query", "demo")
DEMO_COURSE = Path(__file__).resolve().parent / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"

USAGE = """usage: event-sinks [--dsn DSN] COMMAND [ARGS ...]

commands:
  demo                      dump the bundled sample course into the engine and show it
  dump_sink SINK [KEY ...]  dump a sink (--all, --olx PATH, --force, --dry-run, ... see dump_sink --help)
  list_sinks                the registered sinks
  sink_schema [SINK ...]    print the DDL, or --apply it
  show COURSE_KEY           a course's current outline as a tree
  query "SQL"               an ad-hoc read

engine: --dsn, or EVENT_SINKS_DSN (chdb:///path or http(s)://user:password@host:port/database);
default: the embedded engine in ./event_sinks_data
"""


def configure(dsn: str | None) -> None:
    """Django settings for the command line: the app, no database, the engine from --dsn/env."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["event_sinks"],
            DATABASES={},
            USE_TZ=True,
            TIME_ZONE="UTC",
            EVENT_SINKS={"DSN": dsn or os.environ.get("EVENT_SINKS_DSN"), "DISPATCH": "sync"},
            LOGGING_CONFIG=None,
        )
        django.setup()


def demo(call_command: Callable[..., object]) -> None:
    """The quick start: dump the bundled course with both course sinks, then show it from the views."""
    olx = ["--olx", str(DEMO_COURSE)]
    call_command("dump_sink", "course_outline", "--all", "--force", *olx)
    call_command("dump_sink", "block_relationships", "--all", "--force", *olx)
    print(f"\nThe outline of {DEMO_KEY}, read back from the course_blocks view:\n")
    call_command("show_course", DEMO_KEY)
    print("\nVideos of the course (the start of a 'views per video, including unwatched' report):\n")
    call_command(
        "sink_query",
        "SELECT label, location FROM course_blocks WHERE course_key = 'course-v1:EventSinks+Demo101+2026' "
        "AND block_type = 'video' ORDER BY order_in_course",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m event_sinks`` and the ``event-sinks`` console script."""
    import logging

    argv = list(sys.argv[1:] if argv is None else argv)
    dsn = None
    if argv[:1] == ["--dsn"] and len(argv) > 1:
        dsn, argv = argv[1], argv[2:]
    elif argv and argv[0].startswith("--dsn="):
        dsn, argv = argv[0].split("=", 1)[1], argv[1:]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command = ALIASES.get(argv[0], argv[0])
    if command not in COMMANDS:
        print(f"event-sinks: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure(dsn)
    from django.core.management import call_command, execute_from_command_line
    from django.core.management.base import CommandError

    if command == "demo":
        try:
            demo(call_command)
        except CommandError as exc:
            print(f"CommandError: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        execute_from_command_line(["event-sinks", command, *argv[1:]])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
