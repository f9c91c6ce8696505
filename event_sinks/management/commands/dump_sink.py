"""``manage.py dump_sink SINK [KEY ...]``: dump any sink - backfill, repair, or look at the rows.

Examples::

    manage.py dump_sink course_outline --all                 # backfill every course (skips unchanged)
    manage.py dump_sink course_outline course-v1:A+B+C --force
    manage.py dump_sink block_relationships --all --dry-run --format jsonl --limit 2
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from django.core.management.base import BaseCommand, CommandError

from ...dumping import Dumper, DumpResult, dump
from ...dumping.backfills import finish_run, interrupted_run_start, keys_done_since, runs_schema, start_run
from ...errors import EventSinksError
from ...registry import registry
from ._common import add_olx_arguments, connection_or_error, install_olx_source, sink_or_error
from ._table import format_table

if TYPE_CHECKING:
    from ...clickhouse import Connection
    from ...core.sink import Sink


def _datetime(text: str) -> datetime:
    """ISO 8601 date or datetime; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date/time like 2026-01-31 or 2026-01-31T12:00, found {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Progress:
    """A progress line on a terminal, periodic plain lines otherwise."""

    def __init__(self, stream: TextIO, total: int | None, every: float = 5.0):
        self.stream, self.total, self.every = stream, total, every
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.done = self.rows = 0
        self.started = self.last = time.monotonic()

    def __call__(self, result: DumpResult) -> None:
        self.done += 1
        self.rows += result.rows
        now = time.monotonic()
        if result.status == "failed":
            self._line(f"FAILED {result.key}: {result.error}", newline=True)
        if self.tty or now - self.last >= self.every or self.done == self.total:
            self.last = now
            of = f"/{self.total}" if self.total is not None else ""
            rate = self.rows / (now - self.started) if now > self.started else 0
            self._line(f"{self.done}{of} keys, {self.rows} rows, {rate:,.0f} rows/s - last: {result.key}",
                       newline=not self.tty)

    def _line(self, text: str, newline: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if newline else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")


class Command(BaseCommand):
    """Dump keys of one sink: explicit keys, or --all from the sink's own key listing."""

    help = "Dump a sink's rows to ClickHouse for the given keys, or --all (backfill, repair, dry run)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sink", nargs="?", help="sink name (see --list)")
        parser.add_argument("keys", nargs="*", metavar="KEY", help="keys to dump (e.g. course keys)")
        parser.add_argument("--list", action="store_true", help="list the sinks and exit")
        parser.add_argument("--all", action="store_true", help="dump every key the sink lists")
        parser.add_argument("--skip", nargs="+", default=[], metavar="KEY", help="keys to leave out")
        parser.add_argument("--force", action="store_true", help="dump keys even when their source is unchanged")
        parser.add_argument("--since", type=_datetime, metavar="DATETIME",
                            help="with --all: only keys whose source changed since (ISO 8601, UTC if no zone)")
        parser.add_argument("--resume", action="store_true",
                            help="continue the last interrupted run: skip keys it already completed")
        parser.add_argument("--limit", type=int, help="dump at most N keys")
        parser.add_argument("--batch-size", type=int, help="rows per insert (default: EVENT_SINKS BATCH_SIZE)")
        parser.add_argument("--dry-run", action="store_true", help="read and serialize, write nothing")
        parser.add_argument("--format", choices=["table", "csv", "jsonl"],
                            help="with --dry-run: print the rows to stdout in this format")
        add_olx_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            from django.core.management import call_command

            call_command("list_sinks", stdout=self.stdout)
            return
        if not options["sink"]:
            raise CommandError(f"name a sink to dump; known sinks: {', '.join(registry.names())}")
        sink = sink_or_error(options["sink"])
        keys = options["keys"]
        if keys and options["all"]:
            raise CommandError("give either KEYs or --all, not both")
        if not keys and not options["all"]:
            raise CommandError("give the KEYs to dump, or --all for every key")
        if options["since"] is not None and not options["all"]:
            raise CommandError("--since selects keys: use it with --all, not with explicit KEYs")
        if options["resume"] and options["dry_run"]:
            raise CommandError("--resume continues a real run: it cannot be combined with --dry-run")
        if options["format"] and not options["dry_run"]:
            raise CommandError("--format prints rows instead of writing them: use it with --dry-run")
        if options["limit"] is not None and options["limit"] < 0:
            raise CommandError(f"--limit must be 0 or more, found {options['limit']}")
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be 1 or more, found {options['batch_size']}")
        install_olx_source(options)

        try:
            selected = self._select_keys(sink, keys, options)
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
        if options["dry_run"]:
            return self._dry_run(sink, selected, options)

        connection = connection_or_error()
        try:
            Dumper(sink, connection).ensure_schema()
            connection.apply_schema(runs_schema())
            if options["resume"]:
                selected = self._resume(connection, sink, selected)
            run_id, _ = start_run(connection, sink.name)
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc

        progress = Progress(getattr(self.stderr, "_out", sys.stderr), len(selected))
        try:
            summary = dump(sink, selected, connection=connection, batch_size=options["batch_size"],
                           skip_unchanged=not options["force"], on_result=progress, keep_results=False)
        except KeyboardInterrupt:
            progress.close()
            raise CommandError(
                f"interrupted after {progress.done} of {len(selected)} keys; run the same command with --resume "
                "to continue without redoing completed keys"
            ) from None
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()
        finish_run(connection, run_id, sink.name, str(summary))
        for failure in summary.failed:
            self.stdout.write(f"FAILED {failure.key}: {failure.error}")
        self.stdout.write(f"{sink.name}: {summary}")
        if summary.failed:
            raise CommandError(f"{len(summary.failed)} of {summary.total} keys failed (listed above)")

    def _resume(self, connection: Connection, sink: Sink, selected: list[str]) -> list[str]:
        started = interrupted_run_start(connection, sink.name)
        if started is None:
            self.stderr.write(f"{sink.name}: no interrupted run to resume; dumping all selected keys")
            return selected
        done = keys_done_since(connection, sink.name, started)
        remaining = [k for k in selected if k not in done]
        self.stderr.write(
            f"{sink.name}: resuming the run started {started:%Y-%m-%d %H:%M:%S} UTC: "
            f"{len(selected) - len(remaining)} keys already done, {len(remaining)} to go"
        )
        return remaining

    def _select_keys(self, sink: Sink, keys: list[str], options: Mapping[str, Any]) -> list[str]:
        skip = set(options["skip"])
        chosen: list[str] = []
        if options["since"] is not None:
            source = sink.keys_since(options["since"])
            if source is None:
                raise CommandError(f"sink {sink.name} cannot list keys changed since a date: drop --since")
        else:
            source = sink.keys() if options["all"] else keys
        for raw in source:
            if options["limit"] is not None and len(chosen) >= options["limit"]:
                break
            if raw in skip:
                continue
            chosen.append(raw)
        return chosen

    def _dry_run(self, sink: Sink, keys: list[str], options: Mapping[str, Any]) -> None:
        fmt = options["format"]
        names = list(sink.field_names)
        writer = csv.writer(self.stdout) if fmt == "csv" else None
        if writer:
            writer.writerow(names)
        table_rows = []
        rows = failed = 0
        for raw in keys:
            try:
                key = sink.normalize_key(raw)
                for row in sink.row_tuples(sink.serialize(key)):
                    rows += 1
                    if fmt == "jsonl":
                        self.stdout.write(json.dumps(dict(zip(names, row, strict=True)), default=str,
                                                     ensure_ascii=False))
                    elif writer:
                        writer.writerow(["" if v is None else v for v in row])
                    elif fmt == "table":
                        table_rows.append(row)
            except Exception as exc:
                failed += 1
                self.stderr.write(f"FAILED {raw}: {type(exc).__name__}: {exc}")
        if fmt == "table":
            self.stdout.write(format_table(names, table_rows))
        self.stderr.write(f"{sink.name}: dry run, {len(keys)} keys, {rows} rows serialized, nothing written")
        if failed:
            raise CommandError(f"{failed} of {len(keys)} keys failed (listed above)")

