"""The server's clock, as this process sees it: what dumps and backfill runs are ordered by.

Several hosts (LMS, CMS, workers) write to one ClickHouse, and any of them may be minutes off or have
its clock stepped by NTP. Ordering by the writers' clocks let such a host hide every later dump (or
resume a backfill from the wrong place), so the library orders by the one clock all writers share:
the server's. :class:`ServerClock` reads it once and carries it forward with this process's
monotonic clock, which no wall-clock error moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

#: Seconds after which a connection reads the server's clock again.
CLOCK_RESYNC = 60.0
#: Wall and monotonic clocks drifting apart by more than this (seconds) since the last reading -- an
#: NTP step, a suspended host -- means this host's time moved: the server's clock is read again.
CLOCK_JUMP = 1.0
#: A host clock further than this (seconds) from the server's is reported, once per connection.
CLOCK_SKEW_REPORTED = 1.0


class ServerClock:
    """The server's clock as seen from this process: what dumps are ordered by, not this host's clock.

    Several hosts write to one server, and any of them may be minutes off or have its clock
    stepped by NTP; ordering dumps by writers' clocks let such a host hide every later dump. So one
    query reads the server's ``now64(6)``, and from then on the time is carried forward by this
    process's monotonic clock, which no wall-clock error or step moves. The reading is renewed every
    CLOCK_RESYNC seconds and whenever the wall clock jumped against the monotonic one. Its error is at
    most half the round trip of the reading; readings of one connection never go backwards.
    """

    def __init__(self, read: Callable[[], tuple[datetime, float, float]], where: str):
        self._read = read  # -> (server time, monotonic time before and after the reading)
        self._where = where
        self._lock = threading.Lock()
        self._anchor: tuple[datetime, float, float] | None = None  # server time, monotonic and wall time then
        self._last: datetime | None = None
        self._reported = False

    def now(self) -> datetime:
        """The server's time now (UTC)."""
        anchor = self._anchor
        monotonic, wall = time.monotonic(), time.time()
        if (anchor is None or monotonic - anchor[1] > CLOCK_RESYNC
                or abs((wall - anchor[2]) - (monotonic - anchor[1])) > CLOCK_JUMP):
            anchor = self._measure()
            monotonic = time.monotonic()
        value = anchor[0] + timedelta(seconds=monotonic - anchor[1])
        with self._lock:
            if self._last is not None and value <= self._last:
                value = self._last + timedelta(microseconds=1)
            self._last = value
        return value

    def _measure(self) -> tuple[datetime, float, float]:
        server, before, after = self._read()  # not under the lock: a slow server must not stall the others
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        middle = (before + after) / 2  # when the server read its clock, as well as can be told
        anchor = (server, middle, time.time() - (after - middle))
        skew = anchor[2] - server.timestamp()
        if abs(skew) > CLOCK_SKEW_REPORTED and not self._reported:
            self._reported = True
            log.warning("event_sinks: this host's clock is %.1f s %s the clock of ClickHouse at %s; dumps are "
                        "ordered by ClickHouse's clock, so they are not affected, but fix this host's time",
                        abs(skew), "ahead of" if skew > 0 else "behind", self._where)
        with self._lock:
            self._anchor = anchor
        return anchor
