"""The command line: ``event-sinks COMMAND ...`` (or ``python -m event_sinks``), the commands without a Django project.

Built-in settings: the embedded engine with its data in ``./event_sinks_data`` (``--dsn`` or the
``EVENT_SINKS_DSN`` environment variable select another engine). Commands: ``dump`` (or ``dump_sink``),
``sink_schema``, ``list_sinks``, ``show COURSE_KEY``, ``query "SQL"``, and ``demo`` (dump the bundled
sample course and show it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

ALIASES = {"dump": "dump_sink", "show": "show_course", "query": "sink_query", "schema": "sink_schema",
           "list": "list_sinks"}
COMMANDS = ("dump_sink", "sink_schema", "list_sinks", "show_course", "sink_query", "demo")
DEMO_COURSE = Path(__file__).resolve().parent / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"

USAGE = """usage: event-sinks [--dsn DSN] COMMAND [ARGS ...]   (--dsn may also follow the command)

commands:
  demo                      dump the bundled sample course into the engine and show it
  dump SINK [KEY ...]       dump a sink (--all, --olx PATH, --force, --dry-run, ... see dump --help);
                            also dump_sink
  list_sinks                the registered sinks
  sink_schema [SINK ...]    print the DDL, or --apply it
  show COURSE_KEY           a course's current outline as a tree
  query "SQL"               an ad-hoc read

engine: --dsn, or EVENT_SINKS_DSN (chdb:///path or http(s)://user:password@host:port/database);
--dsn wins over EVENT_SINKS_DSN; default: the embedded engine in ./event_sinks_data
"""


#: How the engine was chosen, for messages about it (the Django setting ``EVENT_SINKS_DSN_GIVEN_AS``).
DEFAULT_ENGINE = "the default engine (./event_sinks_data; --dsn chooses another)"


def configure(dsn: str | None, given_as: str | None = None) -> None:
    """Django settings for the command line: the app, no database, the engine from --dsn/env.

    An explicit ``dsn`` (--dsn) wins over the environment's ``EVENT_SINKS_DSN``, which the library
    would otherwise apply over the settings, so it is taken out of this process's environment.
    """
    import django
    from django.conf import settings

    if dsn is not None:
        os.environ.pop("EVENT_SINKS_DSN", None)
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["event_sinks"],
            DATABASES={},
            USE_TZ=True,
            TIME_ZONE="UTC",
            EVENT_SINKS={"DSN": dsn or os.environ.get("EVENT_SINKS_DSN") or None, "DISPATCH": "sync"},
            EVENT_SINKS_DSN_GIVEN_AS=given_as or DEFAULT_ENGINE,
            LOGGING_CONFIG=None,
        )
        django.setup()


def take_dsn(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--dsn DSN`` / ``--dsn=DSN`` taken out of ``argv``, before or after the command's name.

    Raises ValueError with the message to show when it is given twice or without a value.
    """
    dsn: str | None = None
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--dsn" or word.startswith("--dsn="):
            if dsn is not None:
                raise ValueError("--dsn is given twice: give one engine")
            value = word.partition("=")[2] if "=" in word else next(words, None)
            if not value or (value.startswith("--") and "=" not in word):
                raise ValueError("--dsn needs a value: --dsn chdb:///path/to/data or "
                                 "--dsn http(s)://user:password@host:port/database")
            dsn = value
        else:
            rest.append(word)
    return dsn, rest


def dsn_problem(dsn: str, given_as: str) -> str | None:
    """What is wrong with ``dsn`` (said as coming from ``given_as``), or None when it parses."""
    from .conf import parse_dsn
    from .errors import ConfigurationError

    try:
        parse_dsn(dsn, "event_sinks", setting=given_as)
    except ConfigurationError as exc:
        return str(exc)
    return None


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
    try:
        dsn, argv = take_dsn(argv)
    except ValueError as exc:
        print(f"event-sinks: {exc}", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command = ALIASES.get(argv[0], argv[0])
    if command not in COMMANDS:
        print(f"event-sinks: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    given_as = "--dsn" if dsn is not None else "EVENT_SINKS_DSN" if os.environ.get("EVENT_SINKS_DSN") else None
    if given_as is not None:
        problem = dsn_problem(dsn if dsn is not None else os.environ["EVENT_SINKS_DSN"], given_as)
        if problem:
            print(f"event-sinks: {problem}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure(dsn, given_as)
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
