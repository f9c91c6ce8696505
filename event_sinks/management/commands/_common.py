"""Helpers shared by the commands: sink lookup with CommandError, OLX sources, engine errors."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError

from ...clickhouse import Connection, get_connection
from ...errors import EventSinksError, UnknownSinkError
from ...registry import get_sink

if TYPE_CHECKING:
    from ...core.sink import Sink


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
