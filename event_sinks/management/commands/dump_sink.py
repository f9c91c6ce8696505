"""``manage.py dump_sink SINK [KEY ...]``: dump any sink - backfill, repair, or look at the rows.

Examples::

    manage.py dump_sink course_outline --all                 # backfill every course (skips unchanged)
    manage.py dump_sink course_outline course-v1:A+B+C --force
    manage.py dump_sink block_relationships --all --dry-run --format jsonl --limit 2
    manage.py dump_sink course_outline --all --reconcile     # also tombstone courses the source lost
    manage.py dump_sink course_outline --all --reconcile --dry-run  # list what it would tombstone

``--reconcile`` is for deployments where deletions never reach the plugin (the Event Bus carries no
course deletion): the keys the ledger holds as current but the source no longer lists are tombstoned
through the same path as a deletion signal, before the ``--all`` dump runs. The ledger is read before
the source is listed, so a key created meanwhile is never taken for a deleted one; a source that
lists nothing is refused (``--allow-empty-source`` overrides), so an empty or unreachable modulestore
or a wrong OLX folder cannot wipe the store.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from django.core.management.base import CommandError

from ...core.sink import Sink
from ...dumping import Dumper, DumpResult, DumpSummary, dump
from ...dumping.backfills import (
    current_keys_snapshot,
    dumps_since,
    finish_run,
    interrupted_run,
    resume_run,
    resumption,
    runs_schema,
    start_run,
    unlisted_keys,
)
from ...errors import EventSinksError
from ...registry import registry
from ._common import SinkCommand, add_olx_arguments, connection_or_error, install_olx_source, sink_or_error
from ._table import format_table

if TYPE_CHECKING:
    from ...clickhouse import Connection


def _datetime(text: str) -> datetime:
    """ISO 8601 date or datetime; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date/time like 2026-01-31 or 2026-01-31T12:00, found {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def shown(key: str) -> str:
    """A key as a FAILED line shows it: quoted when it holds a line break or another unprintable character,
    so that the line stays one line and the key can be told apart."""
    return key if key.isprintable() else repr(key)


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
            self._line(f"FAILED {shown(result.key)}: {result.error}", newline=True)
        if self.tty or now - self.last >= self.every or self.done == self.total:
            self.last = now
            of = f"/{self.total}" if self.total is not None else ""
            rate = self.rows / (now - self.started) if now > self.started else 0
            self._line(f"{self.done}{of} keys, {self.rows} rows, {rate:,.0f} rows/s - last: {shown(result.key)}",
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


class Command(SinkCommand):
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
        parser.add_argument("--reconcile", action="store_true",
                            help="with --all: first tombstone the keys with a current dump that the source no "
                                 "longer lists (deletions no signal reported, as over the Event Bus)")
        parser.add_argument("--allow-empty-source", action="store_true",
                            help="with --reconcile: tombstone every current key even when the source lists none")
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
        reconcile = options["reconcile"]
        if reconcile:
            self._check_reconcile(sink, keys, options)
        elif options["allow_empty_source"]:
            raise CommandError("--allow-empty-source only changes what --reconcile does: use it with --reconcile")
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
        install_olx_source(options, allow_empty=reconcile)

        gone: list[str] = []
        if reconcile:
            connection = connection_or_error()
            try:
                with connection.time_limit():  # DUMP_TIMEOUT bounds each of the run's own steps too
                    current = current_keys_snapshot(connection, sink.name)  # before the listing: see the module
            except EventSinksError as exc:
                raise CommandError(str(exc)) from exc
            listing = self._list_keys(sink)
            if not listing and current and not options["allow_empty_source"]:
                raise CommandError(
                    f"sink {sink.name}: the source lists no keys while the ledger holds {len(current)} current "
                    "keys; refusing to tombstone them all (is the source empty or unreachable, or the OLX path "
                    "wrong?). If every key is really gone, run again with --allow-empty-source"
                )
            gone = unlisted_keys(sink, current, listing, keep=options["skip"])
            selected = self._select_keys(sink, keys, options, listing)
        else:
            try:
                selected = self._select_keys(sink, keys, options)
            except EventSinksError as exc:
                raise CommandError(str(exc)) from exc
        if options["dry_run"]:
            if reconcile:
                for key in gone:
                    self.stderr.write(f"would tombstone {key}")
                self.stderr.write(f"{sink.name}: dry run, reconcile: {len(gone)} keys would be tombstoned "
                                  "(no longer listed by the source)")
            return self._dry_run(sink, selected, options)

        connection = connection_or_error()
        try:
            with connection.time_limit():  # the run's bookkeeping waits for the engine no longer than a dump
                Dumper(sink, connection).ensure_schema()
                connection.apply_schema(runs_schema())
                resumed = None
                if options["resume"]:
                    selected, resumed = self._resume(connection, sink, selected)
                if resumed is not None:
                    run_id = resumed  # this run continues the interrupted one, and its end closes it
                    resume_run(connection, run_id, sink.name)
                else:
                    run_id, _ = start_run(connection, sink.name)
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
        tombstones = self._tombstone(connection, sink, gone, options) if reconcile else None

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
        for failure in summary.failed:
            self.stdout.write(f"FAILED {shown(failure.key)}: {failure.error}")
        self.stdout.write(f"{sink.name}: {summary}")
        failed = len(summary.failed) + (len(tombstones.failed) if tombstones is not None else 0)
        total = summary.total + (tombstones.total if tombstones is not None else 0)
        problems = [f"{failed} of {total} keys failed (listed above)"] if failed else []
        reconciled = "" if tombstones is None else f"; reconcile: {tombstones.count('deleted')} tombstoned"
        try:
            with connection.time_limit():
                finish_run(connection, run_id, sink.name, str(summary) + reconciled)
        except EventSinksError as exc:  # the engine went away after the dumps: they stand, the record does not
            problems.append(
                f"{sink.name}: the dumps above are done, but the run could not be recorded as finished "
                f"(event_sinks_runs): {exc}. Until a run finishes, --resume takes this one for interrupted and "
                "skips the keys it dumped"
            )
        if problems:
            raise CommandError("; and ".join(problems))

    def _check_reconcile(self, sink: Sink, keys: list[str], options: Mapping[str, Any]) -> None:
        """Refuse the options --reconcile cannot work with: it needs the sink's whole listing."""
        if keys:
            raise CommandError("--reconcile compares the sink's whole key listing with the ledger: "
                               "use it with --all, not with explicit KEYs")
        if not options["all"]:
            raise CommandError("--reconcile compares the sink's whole key listing with the ledger: add --all")
        if options["since"] is not None:
            raise CommandError("--since lists only the keys changed since a date, and --reconcile would tombstone "
                               "the others: drop --since (or run it separately)")
        if options["limit"] is not None:
            raise CommandError("--limit cuts the key listing short, and --reconcile would tombstone the keys "
                               "left out: drop --limit")
        if type(sink).keys is Sink.keys:
            raise CommandError(f"sink {sink.name} cannot list its keys, so --reconcile cannot tell which are gone: "
                               "drop --reconcile")

    def _list_keys(self, sink: Sink) -> list[str]:
        """The sink's whole key listing (for --reconcile), or a CommandError saying why it failed."""
        try:
            return list(sink.keys())
        except Exception as exc:
            raise CommandError(f"sink {sink.name} could not list its keys: {type(exc).__name__}: {exc}") from exc

    def _tombstone(
        self, connection: Connection, sink: Sink, gone: list[str], options: Mapping[str, Any]
    ) -> DumpSummary:
        """Tombstone the keys the source no longer lists (the path a deletion signal takes) and say so."""
        try:
            summary = dump(sink, gone, delete=True, connection=connection)
        except KeyboardInterrupt:
            raise CommandError("interrupted while tombstoning the keys the source no longer lists; run the same "
                               "command again to finish") from None
        except EventSinksError as exc:
            raise CommandError(str(exc)) from exc
        for result in summary.results:
            if result.status == "failed":
                self.stdout.write(f"FAILED {shown(result.key)}: {result.error}")
            elif options["verbosity"] >= 2:
                self.stdout.write(f"tombstoned {result.key}")
        self.stdout.write(f"{sink.name}: reconcile: {summary.count('deleted')} keys tombstoned (no longer listed "
                          f"by the source), {len(summary.failed)} failed")
        return summary

    def _resume(self, connection: Connection, sink: Sink, selected: list[str]) -> tuple[list[str], uuid.UUID | None]:
        """The keys the interrupted run still has to dump, and its id (None: nothing to resume)."""
        found = interrupted_run(connection, sink.name)
        if found is None:
            self.stderr.write(f"{sink.name}: no interrupted run to resume; dumping all selected keys")
            return selected, None
        run_id, started = found
        plan = resumption(sink, selected, dumps_since(connection, sink.name, started), started)
        changed = f" ({plan.changed} changed since its dump)" if plan.changed else ""
        self.stderr.write(
            f"{sink.name}: resuming the run started {started:%Y-%m-%d %H:%M:%S} UTC: "
            f"{plan.done} keys already done, {len(plan.remaining)} to go{changed}"
        )
        return plan.remaining, run_id

    def _select_keys(self, sink: Sink, keys: list[str], options: Mapping[str, Any],
                     listing: list[str] | None = None) -> list[str]:
        skip = set(options["skip"])
        chosen: list[str] = []
        if listing is not None:
            source: Iterable[str] = listing
        elif options["since"] is not None:
            changed = sink.keys_since(options["since"])
            if changed is None:
                raise CommandError(f"sink {sink.name} cannot list keys changed since a date: drop --since")
            source = changed
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
                self.stderr.write(f"FAILED {shown(raw)}: {type(exc).__name__}: {exc}")
        if fmt == "table":
            self.stdout.write(format_table(names, table_rows))
        self.stderr.write(f"{sink.name}: dry run, {len(keys)} keys, {rows} rows serialized, nothing written")
        if failed:
            raise CommandError(f"{failed} of {len(keys)} keys failed (listed above)")

