"""The machinery of the fault campaign (``tests/campaign``): running a case under a hard time bound,
capturing what its user sees, and the oracle that judges it.

A case runs through an entry point a user has -- ``call_command`` (what ``manage.py`` runs), the public
``dump()``, or ``python -m event_sinks`` in a process of its own -- and ends in an :class:`Outcome`. The
oracle (:func:`judge`) turns the outcome and the state of the engine before and after into findings:

``break``    a dump invariant broken: the current views of a key mix dumps, hold other rows than the
             ledger logged, show a location twice, lost their previous dump without a new one, or a
             command reports dumps the ledger does not hold; a write through ``sink_query``; a read
             outside an export;
``unclear``  a Python traceback where a user sees it (output, logs), an exception out of an entry point,
             a refusal that is empty, longer than a paragraph, a bug report in disguise ("an unexpected
             error"), that names none of the file, key, option, setting or statement at fault -- or a
             bad value accepted without a word;
``crash``    a process killed by a signal, or an engine that no longer answers after the case;
``hang``     a case past its bound (subprocesses: a timeout).

In-process cases run one at a time on a worker thread; the main thread waits for each at most its
bound, and a worker stuck past it is abandoned (after ``unstick``, e.g. opening a FIFO's other end) and
replaced, so one hang never stops the campaign.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TRACEBACK = "Traceback (most recent call last)"
#: Refusals that are the commands' catch-all for a bug, not a statement of what is at fault.
BUG_REPORT = "an unexpected error"
KINDS = ("break", "unclear", "crash", "hang")


@dataclass
class Outcome:
    """What one case's user saw."""

    status: str  # "ok", "refused" (a clear-looking refusal to be judged), "escaped", "hang", "crash"
    message: str = ""  # the refusal: CommandError text, the library error, the last lines of stderr
    failed: list[str] = field(default_factory=list)  # "FAILED key: error" lines of dumps that failed
    stdout: str = ""
    stderr: str = ""
    logs: str = ""
    code: int | None = None
    dumped: int = 0  # how many dumps the entry point reported as done
    elapsed: float = 0.0

    @property
    def seen(self) -> str:
        """Everything the user sees."""
        return "\n".join((self.stdout, self.stderr, self.logs, self.message, *self.failed))


@dataclass
class Plan:
    """A case, drawn: what to run and how to judge it."""

    what: str
    run: Callable[[], Outcome]
    names: set[str] = field(default_factory=set)  # a refusal must name one of these
    expect: str = "any"  # "any", "refuse", "succeed"
    engine: Any = None  # the Probe of the engine the case may change (None: it must not matter)
    #: more break checks, after the case: (outcome, the engine's state before, after; None without an engine)
    checks: list[Callable[[Outcome, dict | None, dict | None], list[str]]] = field(default_factory=list)
    unstick: Callable[[], None] | None = None
    bound: float = 45.0
    #: with expect == "refuse": an accepted value is "unclear" (silently accepted) or a "break" (a write)
    accepted: str = "unclear"


@dataclass
class Verdict:
    case: str
    cls: str
    what: str
    outcome: Outcome
    findings: list[tuple[str, str]]
    known: str | None = None  # the known defect the case shows (a strict xfail elsewhere)


# -- capturing --------------------------------------------------------------------------------------------


class LogCapture(logging.Handler):
    """Records of one thread, formatted as a console handler would show them (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.thread: int | None = None
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            try:
                self.lines.append(self.format(record))
            except Exception as exc:  # a record that cannot be formatted is itself what a user sees
                self.lines.append(f"(unformattable log record: {exc!r})")

    def take(self) -> str:
        text, self.lines = "\n".join(self.lines), []
        return text


LOGS = LogCapture()


def command(name: str, *args: str) -> Outcome:
    """``call_command(name, *args)``, as ``manage.py`` would run it: its output and its refusal."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        status, message, code = "ok", "", 0
    except CommandError as exc:
        status, message, code = "refused", str(exc), exc.returncode
    except Exception as exc:  # manage.py would print a traceback
        status, message, code = "escaped", f"{type(exc).__name__}: {exc}", None
    elapsed = time.perf_counter() - started
    stdout, stderr = out.getvalue(), err.getvalue()
    failed = [line for line in (stdout + "\n" + stderr).splitlines() if line.startswith("FAILED ")]
    dumped = sum(int(m.group(1)) for m in re.finditer(r": (\d+) dumped, \d+ deleted", stdout))
    return Outcome(status, message, failed, stdout, stderr, code=code, dumped=dumped, elapsed=elapsed)


def api(call: Callable[[], Any]) -> Outcome:
    """A call of the public API (``dump()``): its summary, or the library error it raised."""
    from event_sinks.dumping import DumpSummary
    from event_sinks.errors import EventSinksError

    started = time.perf_counter()
    try:
        value = call()
    except EventSinksError as exc:
        return Outcome("refused", f"{type(exc).__name__}: {exc}", elapsed=time.perf_counter() - started)
    except Exception as exc:
        return Outcome("escaped", f"{type(exc).__name__}: {exc}", elapsed=time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    if isinstance(value, DumpSummary):
        failed = [f"FAILED {r.key}: {r.error}" for r in value.results if r.status == "failed"]
        return Outcome("refused" if failed else "ok", "", failed, stdout=str(value), dumped=value.count("dumped"),
                       elapsed=elapsed)
    return Outcome("ok", stdout=repr(value)[:2000], elapsed=elapsed)


def process_outcome(result: subprocess.CompletedProcess | None, elapsed: float, timeout: float) -> Outcome:
    """The outcome of a command run in its own process (None: it outlived ``timeout``)."""
    if result is None:
        return Outcome("hang", f"still running after {timeout:.0f} s", elapsed=elapsed)
    stdout, stderr, code = result.stdout, result.stderr, result.returncode
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return Outcome("crash", f"killed by {name}", stdout=stdout, stderr=stderr, code=code, elapsed=elapsed)
    failed = [line for line in (stdout + "\n" + stderr).splitlines() if line.startswith("FAILED ")]
    dumped = sum(int(m.group(1)) for m in re.finditer(r": (\d+) dumped, \d+ deleted", stdout))
    if code == 0:
        return Outcome("ok", failed=failed, stdout=stdout, stderr=stderr, code=0, dumped=dumped, elapsed=elapsed)
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return Outcome("refused", lines[-1] if lines else "", failed, stdout, stderr, code=code, dumped=dumped,
                   elapsed=elapsed)


# -- judging ----------------------------------------------------------------------------------------------


def judge(plan: Plan, outcome: Outcome, problems: Iterable[str]) -> list[tuple[str, str]]:
    """The findings of one case (see the module docstring); empty when it held."""
    findings = [("break", problem) for problem in problems]
    if outcome.status == "hang":
        return [*findings, ("hang", outcome.message)]
    if outcome.status == "crash":
        return [*findings, ("crash", outcome.message)]
    parts = {"stdout": outcome.stdout, "stderr": outcome.stderr, "logs": outcome.logs, "message": outcome.message,
             "a failure line": "\n".join(outcome.failed)}
    for where, text in parts.items():
        if TRACEBACK in text:
            findings.append(("unclear", f"a Python traceback in {where}"))
    if outcome.status == "escaped":
        return [*findings, ("unclear", f"an exception escaped the entry point: {outcome.message[:300]}")]
    refused = outcome.status == "refused" or bool(outcome.failed)
    if refused:
        if outcome.status == "refused" and outcome.code == 0:
            findings.append(("unclear", "a refusal with exit status 0"))
        texts = [t for t in (outcome.message, *outcome.failed) if t.strip()]
        if not texts:
            findings.append(("unclear", "a refusal that says nothing"))
        for text in texts:
            if BUG_REPORT in text:
                findings.append(("unclear", f"a bug report instead of a refusal: {short(text)}"))
            if "\n\n" in text.strip() or len(text.strip().splitlines()) > 8:
                findings.append(("unclear", f"more than one paragraph: {short(text)}"))
            if " object at 0x" in text:
                findings.append(("unclear", f"an object's repr: {short(text)}"))
        if plan.names and texts and not any(name in text for name in plan.names for text in texts):
            findings.append(("unclear", f"names none of {sorted(plan.names)[:6]}: {short(' | '.join(texts))}"))
    if plan.expect == "refuse" and not refused:
        findings.append((plan.accepted, "accepted what it must refuse"))
    if plan.expect == "succeed" and refused:
        findings.append(("break", f"refused what it must do: {short(' | '.join([outcome.message, *outcome.failed]))}"))
    return findings


def short(text: str, most: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 3] + "..."


# -- the engine's state, before and after --------------------------------------------------------------------

#: The views checked: (sink, the columns that identify a row within a key).
VIEWS = (("course_outline", "location"), ("block_relationships", "parent_location, child_location"))


class Probe:
    """Reads the ledger and the current views of one database (embedded, or the HTTP endpoint directly)."""

    def __init__(self, name: str, connect: Callable[[], Any]):
        self.name = name
        self._connect = connect
        self.connection = None

    def conn(self) -> Any:
        if self.connection is None:
            self.connection = self._connect()
        return self.connection

    def reset(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
        self.connection = None

    def query(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        connection = self.conn()
        return connection.query(sql.replace("{db}", f"`{connection.database}`"), parameters)

    def alive(self) -> str | None:
        """None when the engine answers, else why not."""
        try:
            self.query("SELECT 1")
        except Exception as first:
            self.reset()
            try:  # a fresh connection: an old one may have been closed by the case
                self.query("SELECT 1")
            except Exception as exc:
                return f"{self.name} engine does not answer after the case: {type(exc).__name__}: {short(str(exc))}" \
                    f" (first: {type(first).__name__})"
        return None

    def snapshot(self) -> dict:
        """{"current": {(sink, key): (dump_id, rows, deleted, source_version, dumped_at)}, "logged": {dump_id},
        "tables": [...]}"""
        current = {(sink, key): (dump_id, rows, bool(deleted), version, at)
                   for sink, key, dump_id, rows, deleted, version, at
                   in self.query("SELECT sink, key, dump_id, rows, deleted, source_version, dumped_at "
                                 "FROM {db}.event_sinks_current_dumps")}
        logged = {row[0] for row in self.query("SELECT dump_id FROM {db}.event_sinks_dump_log")}
        tables = sorted(row[0] for row in self.query("SHOW TABLES FROM {db}"))
        return {"current": current, "logged": logged, "tables": tables}

    def view_problems(self, current: dict) -> list[str]:
        """What readers of the current views would see wrong (see test_reliability.current_state).

        The ledger may lag what readers see, never lead it (docs/decisions/0007-current-tables.rst): a
        dump or tombstone copied into the current table whose ledger insert then failed is what readers
        see, as long as it is newer than the ledger's current dump and whole.
        """
        found = []
        for sink, identity in VIEWS:
            logged = {key: (dump_id, rows, deleted, at) for (s, key), (dump_id, rows, deleted, _, at)
                      in current.items() if s == sink}
            ledger = {key: (dump_id, rows) for key, (dump_id, rows, deleted, _) in logged.items()
                      if not deleted and rows > 0}
            seen: dict[str, tuple] = {}
            for key, dump_id, count, at in self.query(
                    f"SELECT course_key, dump_id, count(), max(dumped_at) FROM {{db}}.{sink} "
                    "GROUP BY course_key, dump_id"):
                if key in seen:
                    found.append(f"{self.name} {sink} {key}: the view mixes dumps {seen[key][0]} and {dump_id}")
                seen[key] = (dump_id, count, at)
            # a key whose view shows a newer whole dump than the ledger names is fine on both sides
            unlogged = {key for key in seen if self._unlogged_but_whole(sink, key, seen[key], logged.get(key))}
            shown, named = set(seen) - unlogged, set(ledger) - unlogged
            for key in sorted(shown ^ named):
                if key not in seen and self._unlogged_tombstone(sink, logged[key][3], key):
                    continue
                found.append(f"{self.name} {sink} {key}: in the {'view' if key in shown else 'ledger'} only")
            for key in sorted(shown & named):
                if seen[key][0] != ledger[key][0]:
                    found.append(f"{self.name} {sink} {key}: the view shows dump {seen[key][0]}, the ledger "
                                 f"{ledger[key][0]}")
                elif seen[key][1] != ledger[key][1]:
                    found.append(f"{self.name} {sink} {key}: the view shows {seen[key][1]} rows of a dump that "
                                 f"logged {ledger[key][1]} (partial or duplicated)")
            for key, count in self.query(
                    f"SELECT course_key, count() FROM (SELECT course_key, {identity}, count() AS n FROM {{db}}.{sink} "
                    f"GROUP BY course_key, {identity} HAVING n > 1) GROUP BY course_key"):
                found.append(f"{self.name} {sink} {key}: {count} locations shown more than once")
        return found

    def _unlogged_but_whole(self, sink: str, key: str, seen: tuple, logged: tuple | None) -> bool:
        """Whether the view shows a dump newer than the ledger's current one, with every row it wrote of ``key``
        (a dump may hold several keys: a backfill's courses)."""
        dump_id, count, at = seen
        if logged is not None and (logged[0] == dump_id or at <= logged[3]):
            return False
        written = self.query(f"SELECT count() FROM {{db}}.{sink}_dumps WHERE dump_id = {{d:UUID}} "
                             "AND course_key = {k:String}", {"d": dump_id, "k": key})
        return written[0][0] == count

    def _unlogged_tombstone(self, sink: str, logged_at, key: str) -> bool:
        """Whether the current table holds a tombstone of ``key`` newer than the ledger's current dump."""
        rows = self.query(f"SELECT count() FROM {{db}}.{sink}_current WHERE course_key = {{k:String}} "
                          "AND is_deleted AND dumped_at > {at:DateTime64(6, 'UTC')}", {"k": key, "at": logged_at})
        return rows[0][0] > 0


def transition_problems(name: str, before: dict, after: dict, outcome: Outcome) -> list[str]:
    """A key's current dump may only stay, or become one this case logged; reported dumps must exist."""
    found = []
    new = after["logged"] - before["logged"]
    for entry in sorted(set(before["current"]) | set(after["current"]), key=str):
        was, now = before["current"].get(entry), after["current"].get(entry)
        if was == now:
            continue
        if now is None:
            found.append(f"{name} {entry[0]} {entry[1]}: its current dump vanished without a tombstone")
        elif now[0] not in new:
            found.append(f"{name} {entry[0]} {entry[1]}: its current dump became {now[0]}, which this case did not "
                         "log")
    fresh = sum(1 for entry, now in after["current"].items()
                if now[0] in new and not now[2] and before["current"].get(entry) != now)
    if outcome.dumped > fresh:
        found.append(f"{name}: the entry point reported {outcome.dumped} dumps done, the ledger holds {fresh} new "
                     "current dumps")
    return found


# -- running, bounded ----------------------------------------------------------------------------------------


class Worker:
    """Runs jobs one at a time on a thread of its own; :meth:`run` waits at most a bound."""

    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.idle = threading.Event()  # set whenever no job runs
        self.idle.set()
        self.thread = threading.Thread(target=self._loop, name="campaign-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            call, box, done = job
            self.idle.clear()
            LOGS.thread = threading.get_ident()
            try:
                box.append(("value", call()))
            except BaseException as exc:  # noqa: BLE001 - whatever it is, the case reports it
                box.append(("raised", exc))
            self.idle.set()
            done.set()

    def run(self, call: Callable[[], Any], bound: float) -> tuple[str, Any]:
        """("value", result), ("raised", exception), or ("hang", None) past ``bound`` seconds."""
        box: list = []
        done = threading.Event()
        self.jobs.put((call, box, done))
        if not done.wait(bound):
            return "hang", None
        return box[0]

    def stop(self) -> None:
        self.jobs.put(None)


@contextlib.contextmanager
def captured_streams() -> Iterable[io.StringIO]:
    """sys.stdout and sys.stderr into one buffer (what a command prints around Django's wrappers)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


class Campaign:
    """Runs in-process cases with the oracle, keeping one worker (replaced after a hang)."""

    def __init__(self) -> None:
        self.worker = Worker()
        self.verdicts: list[Verdict] = []
        self.stdout, self.stderr = sys.stdout, sys.stderr
        logging.getLogger().addHandler(LOGS)

    def close(self) -> None:
        self.worker.stop()
        logging.getLogger().removeHandler(LOGS)

    def run(self, case_id: str, cls: str, draw: Callable[[], Plan], known: str | None = None) -> Verdict:
        """Draw the case, run it on the worker under its bound, and judge it."""
        try:
            plan = draw()
        except Exception as exc:
            verdict = Verdict(case_id, cls, "(could not be drawn)", Outcome("escaped", repr(exc)),
                              [("unclear", f"drawing the case raised {type(exc).__name__}: {short(str(exc))}")], known)
            self.verdicts.append(verdict)
            return verdict

        def job() -> tuple[Outcome, list[str]]:
            probe = plan.engine
            before = probe.snapshot() if probe is not None else None
            LOGS.take()
            started = time.perf_counter()
            with captured_streams() as printed:
                outcome = plan.run()
            outcome.elapsed = time.perf_counter() - started
            outcome.logs = "\n".join(filter(None, (LOGS.take(), printed.getvalue())))
            problems: list[str] = []
            after = None
            if probe is not None:
                dead = probe.alive()
                if dead:
                    return Outcome("crash", dead), problems
                after = probe.snapshot()
                problems += probe.view_problems(after["current"])
                problems += transition_problems(probe.name, before, after, outcome)
            for check in plan.checks:
                problems += check(outcome, before, after)
            return outcome, problems

        started = time.perf_counter()
        kind, value = self.worker.run(job, plan.bound)
        if kind == "hang":
            if plan.unstick is not None:
                with contextlib.suppress(Exception):
                    plan.unstick()
            if not self.worker.idle.wait(10):
                self.worker = Worker()  # the stuck one is left behind (a daemon thread)
            sys.stdout, sys.stderr = self.stdout, self.stderr  # the stuck job's redirection
            verdict = Verdict(case_id, cls, plan.what, Outcome("hang", f"past its bound of {plan.bound:.0f} s"),
                              [("hang", f"still running after {time.perf_counter() - started:.0f} s "
                                        f"(bound {plan.bound:.0f} s)")], known)
        elif kind == "raised":
            outcome = Outcome("escaped", f"{type(value).__name__}: {value}")
            verdict = Verdict(case_id, cls, plan.what, outcome,
                              [("unclear", f"the case itself raised {type(value).__name__}: {short(str(value))}")],
                              known)
        else:
            outcome, problems = value
            verdict = Verdict(case_id, cls, plan.what, outcome, judge(plan, outcome, problems), known)
        self.verdicts.append(verdict)
        return verdict

    def add(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    # -- the report ---------------------------------------------------------------------------------------

    def table(self, classes: Iterable[str]) -> str:
        """Cases per class: held (ok, refused clearly), broke (by kind of finding), known defects apart."""
        rows = [("class", "cases", "ok", "refused", "breaks", "unclear", "crashes", "hangs", "known")]
        total = [0] * 8
        for cls in classes:
            mine = [v for v in self.verdicts if v.cls == cls]
            counts = [
                len(mine),
                sum(1 for v in mine if not v.findings and v.outcome.status == "ok" and not v.outcome.failed),
                sum(1 for v in mine if not v.findings and (v.outcome.status != "ok" or v.outcome.failed)),
                *(sum(1 for v in mine if not v.known and any(k == kind for k, _ in v.findings)) for kind in KINDS),
                sum(1 for v in mine if v.known),
            ]
            total = [a + b for a, b in zip(total, counts, strict=True)]
            rows.append((cls, *map(str, counts)))
        rows.append(("total", *map(str, total)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                                   enumerate(zip(row, widths, strict=True))) for row in rows)


def hang_case_unblocker(fifos: Iterable[os.PathLike]) -> Callable[[], None]:
    """Open the write end of each FIFO and close it: a reader blocked opening one gets an empty file."""
    def unstick() -> None:
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    return unstick


def new_current(before: dict | None, after: dict | None, sink: str) -> list[tuple[str, Any, int, str]]:
    """(key, dump_id, rows, source_version) of the current, not deleted, dumps of ``sink`` a case logged."""
    if before is None or after is None:
        return []
    new = after["logged"] - before["logged"]
    return [(key, now[0], now[1], now[3]) for (s, key), now in after["current"].items()
            if s == sink and now[0] in new and not now[2]]


def cli_outcome(argv: list[str]) -> Outcome:
    """``event-sinks ARGV`` run in this process (``event_sinks.cli.main``): exit status and what it printed."""
    from event_sinks.cli import main

    buffer_out, buffer_err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(buffer_out), contextlib.redirect_stderr(buffer_err):
            try:
                code = main(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        return Outcome("escaped", f"{type(exc).__name__}: {exc}", stdout=buffer_out.getvalue(),
                       stderr=buffer_err.getvalue(), elapsed=time.perf_counter() - started)
    result = subprocess.CompletedProcess(argv, code, buffer_out.getvalue(), buffer_err.getvalue())
    return process_outcome(result, time.perf_counter() - started, 0)
