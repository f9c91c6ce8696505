"""Helpers shared by the commands: the base command, sink lookup with CommandError, OLX sources, engine errors.

Every command derives from :class:`SinkCommand`, so whatever goes wrong reaches its user as one
``CommandError: ...`` line (exit status 1) naming what is at fault -- never a Python traceback
(``--traceback`` still shows one, for a bug report).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...clickhouse import Connection, get_connection
from ...conf.dsn import mask_secrets
from ...errors import EventSinksError, InvalidKeyError, UnknownSinkError
from ...registry import get_sink

if TYPE_CHECKING:
    from ...core.sink import Sink


class IntermixedParser(CommandParser):
    """Arguments in any order: ``dump_sink course_outline --force KEY`` takes KEY as a key.

    argparse fills a ``nargs="*"`` positional (``KEY ...``, ``SINK ...``) with nothing as soon as an
    option follows the first positional, and then refused the keys after the option as "unrecognized
    arguments".
    """

    def parse_args(self, args=None, namespace=None):
        return self.parse_intermixed_args(args, namespace)


class SinkCommand(BaseCommand):
    """A command whose every failure is a ``CommandError`` with a plain message.

    The library's own errors (bad settings, engine errors, unreadable courses) already say what is at
    fault and keep their message; Ctrl-C is "interrupted"; anything else is named with its type and
    the command, so a bug is still reported, only without a traceback.
    """

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = IntermixedParser
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            message = plain(str(exc))
            if message == str(exc):
                raise
            raise CommandError(message, returncode=exc.returncode) from exc
        except EventSinksError as exc:
            raise CommandError(plain(str(exc))) from exc
        except KeyboardInterrupt:
            raise CommandError(f"{self.command_name}: interrupted") from None
        except Exception as exc:
            raise CommandError(plain(
                f"{self.command_name} failed: {type(exc).__name__}: {exc} (an unexpected error: please report it, "
                "with the output of the same command run with --traceback)"
            )) from exc

    @property
    def command_name(self) -> str:
        """The command's name, as typed (``dump_sink``)."""
        return type(self).__module__.rpartition(".")[2]


#: A frame of the native stack trace chDB appends to some errors ("3. ? @ 0x000000000e89dddf"), or its cut end.
_STACK_FRAME = re.compile(r"^\s*\d+\.(\s.*@ 0x[0-9a-fA-F]+)?\s*$")


def without_stack_frames(message: str) -> str:
    """``message`` without the engine's native stack frames: they say nothing to the user of a command."""
    lines = message.splitlines()
    kept = [line for line in lines if not _STACK_FRAME.match(line)]
    return message if len(kept) == len(lines) else "\n".join(kept).strip()


def plain(message: str) -> str:
    """A message for the user of a command: no native stack frames, the configured DSN's password masked."""
    message = without_stack_frames(message)
    for dsn in _configured_dsns():
        message = mask_secrets(message, dsn)
    return message


def _configured_dsns() -> list[str]:
    """The DSNs the settings name, valid or not (read raw: the settings may be what is at fault)."""
    from django.conf import settings

    found = [os.environ.get("EVENT_SINKS_DSN") or ""]
    given = getattr(settings, "EVENT_SINKS", None) if settings.configured else None
    if isinstance(given, Mapping) and isinstance(given.get("DSN"), str):
        found.append(given["DSN"])
    return [dsn for dsn in found if dsn]


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


def install_olx_source(options: Mapping[str, Any], *, allow_empty: bool = False) -> None:
    """Install the OLX course source when --olx was given; refuse a path that holds no readable course.

    Refused, naming the path: what is neither an export nor a folder of exports (a plain file,
    ``/dev/null``, an empty folder), a ``.zip``, an export given on its own that cannot be read, and
    -- unless ``allow_empty`` (``--reconcile`` has its own guard) -- exports none of which can be read.
    """
    if not options.get("olx"):
        if options.get("course_key"):
            raise CommandError("--course-key needs --olx PATH")
        return
    from ...courses.errors import CourseReadError
    from ...courses.olx import is_export
    from ...courses.sources import OlxSource, set_course_source

    paths = [Path(raw) for raw in options["olx"]]
    for path in paths:
        if path.suffix.lower() == ".zip" and path.is_file():
            raise CommandError(f"--olx {path}: a .zip is not read (OLX exports are folders or .tar.gz/.tgz/.tar "
                               "files, as Studio exports them): unzip it and give the folder")
    strict = options.get("strict", False)
    try:
        source = OlxSource(paths, course_key=options.get("course_key"), strict=strict)
    except CourseReadError as exc:
        raise CommandError(f"--olx: {exc.message}") from exc
    except InvalidKeyError as exc:  # the key override given for several exports
        where = " ".join(str(p) for p in paths)
        raise CommandError(f"--course-key {options.get('course_key')}: {exc}, and --olx {where} holds several: "
                           "give the one export to dump under that key") from exc
    except EventSinksError as exc:
        raise CommandError(str(exc)) from exc
    read = set(source.index().values())
    for path in paths:
        if is_export(path) and path not in read:
            why = _unreadable(path, strict)
            if why is not None:  # else it holds a course another --olx path holds too (warned about)
                raise CommandError(f"--olx {path}: this export cannot be read: {why}")
    if not read and not allow_empty:
        exports = sum(1 for path in paths for _ in ([path] if is_export(path) else _exports_in(path)))
        where = " ".join(str(p) for p in paths)
        raise CommandError(f"--olx {where}: no course could be read ({exports} export{'s' if exports != 1 else ''}, "
                           "each skipped: see the warnings above)")
    set_course_source(source)


def _unreadable(path: Path, strict: bool) -> str | None:
    """Why the export ``path`` cannot be read, or None when it can."""
    import tarfile

    from ...courses.errors import CourseReadError
    from ...courses.olx import read_olx

    try:
        read_olx(path, strict=strict)
    except (CourseReadError, tarfile.TarError, OSError) as exc:
        return str(exc)
    return None


def _exports_in(folder: Path) -> list[Path]:
    from ...courses.olx import is_export

    return [p for p in folder.iterdir() if is_export(p)]


def connection_or_error() -> Connection:
    """The process's connection, or a CommandError saying what is wrong with the settings.

    For the embedded engine the data directory is made (or found) first, so a path that cannot be
    one is refused naming the setting it came from, instead of chDB's start-up error.
    """
    try:
        connection = get_connection()
    except EventSinksError as exc:
        raise CommandError(str(exc)) from exc
    target = connection.target
    if target.embedded and target.path and target.path != ":memory:":
        problem = data_dir_problem(target.path)
        if problem:
            raise CommandError(f"{data_dir_setting()}: the embedded engine's data directory {target.path} {problem}")
    return connection


def data_dir_problem(path: str) -> str | None:
    """Why ``path`` cannot be the embedded engine's data directory (it is created when missing), or None."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        return "is not a directory"
    except OSError as exc:
        return f"cannot be created: {exc.strerror or exc}"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return "is not readable and writable by this user"
    return None


def data_dir_setting() -> str:
    """Which setting chose the embedded engine's data directory (the DSN's path, or DATA_DIR).

    The command line says how it chose the engine (--dsn, EVENT_SINKS_DSN or its default) in the
    Django setting ``EVENT_SINKS_DSN_GIVEN_AS``.
    """
    from django.conf import settings

    given_as = getattr(settings, "EVENT_SINKS_DSN_GIVEN_AS", None) if settings.configured else None
    if isinstance(given_as, str) and given_as:
        return given_as
    if os.environ.get("EVENT_SINKS_DSN"):
        return "EVENT_SINKS_DSN"
    given = getattr(settings, "EVENT_SINKS", None) if settings.configured else None
    if isinstance(given, Mapping) and given.get("DSN"):
        return "EVENT_SINKS['DSN']"
    return "EVENT_SINKS['DATA_DIR']"
