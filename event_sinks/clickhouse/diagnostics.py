"""Driver errors in plain words: which of our errors a clickhouse-connect failure is, and what to do.

Decisions are made from what the driver reports -- the exception class and ClickHouse's numeric
error ``code`` -- not from message text. The one exception is chDB failing to start, which reports
no code; that is recognised by chDB's own wording and completed by looking at the data directory's
lock ourselves. Messages never show a password: the DSN is masked wherever it appears.
"""

from __future__ import annotations

import fcntl
import os
from urllib.parse import quote

from ..conf import Target
from ..errors import EngineError, EngineUnavailableError

#: ClickHouse error codes the library acts on (``src/Common/ErrorCodes.cpp``).
UNKNOWN_SETTING = 115
SYNTAX_ERROR = 62
NOT_IMPLEMENTED = 48
SUPPORT_IS_DISABLED = 344
ACCESS_DENIED = 497
#: Codes meaning "this server does not offer that statement or setting": a capability, not a failure.
UNSUPPORTED = frozenset({UNKNOWN_SETTING, SYNTAX_ERROR, NOT_IMPLEMENTED, SUPPORT_IS_DISABLED, ACCESS_DENIED})

_CHDB_START_FAILED = "Unable to open the chdb engine"  # chDB gives no error code for this


def error_code(exc: BaseException) -> int | None:
    """ClickHouse's numeric error code carried by a driver exception (or one of ours), else None."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def scrub(text: str, target: Target) -> str:
    """``text`` with the DSN masked and the password (as given and URL-encoded) removed where a DSN shows it."""
    if target.dsn and target.dsn in text:
        text = text.replace(target.dsn, target.masked)
    for secret in {target.password, quote(target.password, safe="")} - {""}:
        text = text.replace(f":{secret}@", ":***@")
        if len(secret) >= 6:  # long enough that replacing it cannot garble the rest of the message
            text = text.replace(secret, "***")
    return text


def translate(exc: BaseException, target: Target, doing: str) -> EngineError:
    """Turn a driver error into one of ours with a message an operator can act on."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

    text = scrub(str(exc), target)
    where = target.masked
    code = error_code(exc)
    if target.embedded and _CHDB_START_FAILED in text:
        if "already initialized with path" in text:
            return EngineUnavailableError(
                f"this process already runs the embedded ClickHouse engine on another data directory, so it "
                f"cannot open {target.path} (chDB allows one data directory per process). "
                f"Engine said: {text.strip()[:300]}"
            )
        holder = lock_holder(target.path)
        if holder is not None:
            return EngineUnavailableError(
                f"the embedded ClickHouse data directory {target.path} is in use by another process "
                f"({holder}); chDB allows one process per data directory. Stop that process, use another "
                f"DATA_DIR, or point EVENT_SINKS['DSN'] at a ClickHouse server."
            )
        return EngineUnavailableError(f"the embedded ClickHouse engine could not start: {text.strip()[:500]}")
    if isinstance(exc, OperationalError | OSError):
        return EngineUnavailableError(f"ClickHouse at {where} is unreachable while {short(doing)}: {text}")
    if isinstance(exc, DatabaseError | ProgrammingError):
        return EngineError(f"ClickHouse at {where} refused {short(doing)}: {text.strip()[:2000]}", code=code)
    return EngineError(f"ClickHouse at {where} failed {short(doing)}: {type(exc).__name__}: {text}", code=code)


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


def short(sql: str) -> str:
    """A statement on one line, cut to 120 characters, for messages."""
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= 120 else one_line[:117] + "..."
