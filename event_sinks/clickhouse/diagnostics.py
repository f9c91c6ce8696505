"""Driver errors in plain words: which of our errors a clickhouse-connect failure is, and what to do.

Decisions are made from what the driver reports -- the exception class and ClickHouse's numeric
error ``code`` -- not from message text. The one exception is chDB failing to start, which reports
no code; that is recognised by chDB's own wording and completed by looking at the data directory's
lock ourselves, and by looking for damaged metadata files (:func:`damaged_metadata`), which chDB
names only on its standard error. Messages never show a password: the DSN is masked wherever it appears.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..conf import Target
from ..errors import EngineError, EngineUnavailableError

#: ClickHouse error codes the library acts on (``src/Common/ErrorCodes.cpp``).
UNKNOWN_SETTING = 115
SYNTAX_ERROR = 62
NOT_IMPLEMENTED = 48
SUPPORT_IS_DISABLED = 344
ACCESS_DENIED = 497
READONLY = 164
SETTING_CONSTRAINT_VIOLATION = 452
TIMEOUT_EXCEEDED = 159
NOT_ENOUGH_SPACE = 243
#: Codes meaning "this server does not offer that statement or setting": a capability, not a failure.
UNSUPPORTED = frozenset({UNKNOWN_SETTING, SYNTAX_ERROR, NOT_IMPLEMENTED, SUPPORT_IS_DISABLED, ACCESS_DENIED})
#: Codes meaning "this user may not change that setting" (a settings profile's constraint, readonly).
SETTING_REFUSED = frozenset({UNKNOWN_SETTING, READONLY, SETTING_CONSTRAINT_VIOLATION})

_CHDB_START_FAILED = "Unable to open the chdb engine"  # chDB gives no error code for this
#: A Python object's default repr (``<clickhouse_connect...QuerySummary object at 0x7f...>``), which the
#: driver puts in some messages instead of what the server answered.
_OBJECT_REPR = re.compile(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>")


def error_code(exc: BaseException) -> int | None:
    """ClickHouse's numeric error code carried by a driver exception (or one of ours), else None."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def scrub(text: str, target: Target) -> str:
    """``text`` with the password masked where the DSN or its ``user:password@`` shows it, never elsewhere."""
    return target.scrub(text)


def translate(exc: BaseException, target: Target, doing: str) -> EngineError:
    """Turn a driver error into one of ours with a message an operator can act on."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

    # one paragraph: a server's answer (an HTTP body, a stack) may hold line breaks
    text = _OBJECT_REPR.sub(r"an answer without the rows asked for (the driver's \1)",
                            " ".join(scrub(str(exc), target).split()))
    where = target.masked
    code = error_code(exc)
    if target.embedded and _CHDB_START_FAILED in text:
        if "already initialized with path" in text:
            return EngineUnavailableError(
                f"this process already runs the embedded ClickHouse engine on another data directory, so it "
                f"cannot open {target.path}, the one EVENT_SINKS['DSN'] (or, without a DSN, EVENT_SINKS['DATA_DIR']) "
                f"names (chDB allows one data directory per process). "
                f"Engine said: {text.strip()[:300]}"
            )
        holder = lock_holder(target.path)
        if holder is not None:
            return EngineUnavailableError(
                f"the embedded ClickHouse data directory {target.path} is in use by another process "
                f"({holder}); chDB allows one process per data directory. Stop that process, use another "
                f"DATA_DIR, or point EVENT_SINKS['DSN'] at a ClickHouse server."
            )
        damaged = damaged_metadata(target.path)
        if damaged:
            return EngineUnavailableError(f"the embedded ClickHouse engine could not start: {damaged[0]}. "
                                          f"Engine said: {text.strip()[:300]}")
        return EngineUnavailableError(f"the embedded ClickHouse engine could not start: {text.strip()[:500]}")
    if code == NOT_ENOUGH_SPACE:
        disk = f"the disk of {target.path}" if target.embedded else "its disk"
        return EngineError(f"ClickHouse at {where} has no space left on {disk} while {short(doing)}; "
                           f"free some and run the dump again (the previous dumps stay as they were): "
                           f"{text.strip()[:500]}", code=code)
    if isinstance(exc, OperationalError | OSError):
        named = "" if target.origin == "EVENT_SINKS['DSN']" else f" (named by {target.origin})"
        return EngineUnavailableError(f"ClickHouse at {where}{named} is unreachable while {short(doing)}: {text}")
    if isinstance(exc, DatabaseError | ProgrammingError):
        return EngineError(f"ClickHouse at {where} refused {short(doing)}: {text.strip()[:2000]}", code=code)
    return EngineError(f"ClickHouse at {where} failed {short(doing)}: {type(exc).__name__}: {text}", code=code)


_reporting: ContextVar[bool] = ContextVar("event_sinks_reporting_engine_errors", default=False)


class _DriverTracebacksOff(logging.Filter):
    """The driver's warnings without their tracebacks, while the library reports the same failure.

    clickhouse-connect logs a WARNING with the whole traceback for an answer it cannot read, then raises;
    inside a request of ours (:func:`reporting`) that exception becomes an error in plain words, so the
    traceback would only show a user the driver's internals. The warning stays, with the exception on
    one line. Requests the host makes with the driver on its own keep the driver's logging as it is.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _reporting.get() and record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


_DRIVER_FILTER = _DriverTracebacksOff()


def quiet_driver_tracebacks() -> None:
    """Install :class:`_DriverTracebacksOff` on every clickhouse-connect logger defined so far (idempotent).

    A filter on a logger sees only the records logged on that logger, not its children's, so each
    module's logger gets it; called once the client exists, when the driver's modules are imported.
    """
    for name in list(logging.root.manager.loggerDict):
        if name == "clickhouse_connect" or name.startswith("clickhouse_connect."):
            logger = logging.getLogger(name)
            if _DRIVER_FILTER not in logger.filters:
                logger.addFilter(_DRIVER_FILTER)


@contextmanager
def reporting() -> Iterator[None]:
    """Mark the driver calls inside as ours: their failures reach the user through :func:`translate`."""
    token = _reporting.set(True)
    try:
        yield
    finally:
        _reporting.reset(token)


def lock_holder(path: str | None) -> str | None:
    """Describe the process holding the embedded engine's data directory, or None if it is free.

    ClickHouse keeps an exclusive ``flock`` on ``<path>/status`` while it runs; chDB reports a
    second process only as "Error initializing EmbeddedServer", so we look at the lock ourselves.
    """
    status = os.path.join(path or "", "status")
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        with open(status, errors="replace") as handle:
            pid = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("PID:")), "?")
        return f"PID {pid}"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def damaged_metadata(path: str | None) -> list[str]:
    """What is wrong with each damaged metadata file of the embedded data directory ``path``, and what to do.

    ClickHouse keeps one ``.sql`` file per database (``metadata/DB.sql``) and per table or view (in the
    database's folder, ``metadata/DB/``); a write that ran out of disk space can leave one empty, and
    the engine then refuses to start. A file that is empty or holds no ``ATTACH`` statement is damaged.
    """
    if not path:
        return []
    root = Path(path)
    metadata = root / "metadata"
    found = []
    try:
        files: list[tuple[str | None, Path]] = [(None, f) for f in sorted(metadata.glob("*.sql"))]
        for folder in sorted(p for p in metadata.iterdir() if p.is_dir()):
            files += [(folder.name, f) for f in sorted(folder.glob("*.sql"))]
    except OSError:
        return []
    for database, file in files:
        try:
            with open(file, "rb") as handle:
                head = handle.read(64).lstrip()
        except OSError:
            continue
        if head.upper().startswith(b"ATTACH"):
            continue
        state = "empty" if not head else "not a definition"
        where = os.path.realpath(file)
        if database is None:
            found.append(f"its metadata file {where}, the definition of database {file.stem}, is {state} "
                         f"(damaged, typically by a write to a full disk); restore it from a backup of {root}")
            continue
        name = f"{database}.{file.stem}"
        if (root / "data" / database / file.stem).exists():  # a table: its data is in the store
            advice = (f"{name} is a table and its data is still in {root}: restore this file from a backup "
                      f"of {root} (do not just remove it: the engine would no longer know the table, and "
                      f"in time it deletes data folders no table claims)")
        else:
            advice = (f"{name} is a view, which holds no data: move the file out of {root} "
                      f"(e.g. mv '{where}' /tmp/), then run `event-sinks sink_schema --apply` (or "
                      f"`manage.py sink_schema --apply`, or any dump), which creates the view again")
        found.append(f"its metadata file {where} is {state} (damaged, typically by a write to a full disk); "
                     f"{advice}")
    return found


def short(sql: str) -> str:
    """A statement on one line, cut to 120 characters, for messages."""
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= 120 else one_line[:117] + "..."
