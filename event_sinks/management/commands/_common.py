"""Helpers shared by the commands: the base command, sink lookup with CommandError, OLX sources, engine errors.

Every command derives from :class:`SinkCommand`, so whatever goes wrong reaches its user as one
``CommandError: ...`` line (exit status 1) naming what is at fault -- never a Python traceback
(``--traceback`` still shows one, for a bug report).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError

from ...clickhouse import Connection, get_connection
from ...errors import EventSinksError, UnknownSinkError
from ...registry import get_sink

if TYPE_CHECKING:
    from ...core.sink import Sink


class SinkCommand(BaseCommand):
    """A command whose every failure is a ``CommandError`` with a plain message.

    The library's own errors (bad settings, engine errors, unreadable courses) already say what is at
    fault and keep their message; Ctrl-C is "interrupted"; anything else is named with its type and
    the command, so a bug is still reported, only without a traceback.
    """

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            raise CommandError(f"{self.command_name}: interrupted") from None
        except Exception as exc:
            raise CommandError(
                f"{self.command_name} failed: {type(exc).__name__}: {exc} (an unexpected error: please report it, "
                "with the output of the same command run with --traceback)"
            ) from exc

    @property
    def command_name(self) -> str:
        """The command's name, as typed (``dump_sink``)."""
        return type(self).__module__.rpartition(".")[2]


def sink_or_error(name: str) -> Sink:
    """The sink ``name``, or a CommandError listing the known sinks."""
    try:
        return get_sink(name)
    except UnknownSinkError as exc:
        raise CommandError(str(exc)) from exc


def add_olx_arguments(parser: argparse.ArgumentParser) -> None:
    """--olx PATH (repeatable), --course-key, --strict: read courses from OLX exports."""
    parser.add_argument(
        "--olx", action="append", metavar="PATH", default=[],
        help="read courses from OLX: an export folder, a .tar.gz, or a folder of them (repeatable)",
    )
    parser.add_argument("--course-key", help="with one --olx export: dump it under this course key")
    parser.add_argument("--strict", action="store_true", help="fail on a broken export instead of skipping parts")


def install_olx_source(options: Mapping[str, Any]) -> None:
    """Install the OLX course source when --olx was given."""
    if not options.get("olx"):
        if options.get("course_key"):
            raise CommandError("--course-key needs --olx PATH")
        return
    from ...courses.sources import OlxSource, set_course_source

    try:
        set_course_source(OlxSource(options["olx"], course_key=options.get("course_key"),
                                    strict=options.get("strict", False)))
    except EventSinksError as exc:
        raise CommandError(str(exc)) from exc


def connection_or_error() -> Connection:
    """The process's connection, or a CommandError saying what is wrong with the settings."""
    try:
        return get_connection()
    except EventSinksError as exc:
        raise CommandError(str(exc)) from exc
