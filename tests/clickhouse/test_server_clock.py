"""ServerClock: the server's time, carried forward by the monotonic clock, whatever this host's wall clock does.

The readings are faked (a server clock the test sets) and so are this host's clocks, so nothing here
depends on timing; the clock-skewed writer process of ``tests/dumping/test_field_faults.py`` checks
the same against a real server.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from event_sinks.clickhouse import clock as server_clock
from event_sinks.clickhouse.clock import ServerClock

SERVER_START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Host:
    """This host's clocks, set by the test: monotonic and wall seconds."""

    def __init__(self, wall: float):
        self.monotonic_now = 1000.0
        self.wall_now = wall

    def advance(self, seconds: float) -> None:
        self.monotonic_now += seconds
        self.wall_now += seconds


@pytest.fixture
def host(monkeypatch):
    host = Host(SERVER_START.timestamp())
    monkeypatch.setattr(server_clock.time, "monotonic", lambda: host.monotonic_now)
    monkeypatch.setattr(server_clock.time, "time", lambda: host.wall_now)
    return host


class Server:
    """A server clock that keeps its own time; every reading takes ``round_trip`` seconds of this host's."""

    def __init__(self, host: Host, round_trip: float = 0.002):
        self.host = host
        self.round_trip = round_trip
        self.offset = 0.0  # server time minus (this host's true time)
        self.readings = 0

    def read(self):
        self.readings += 1
        before = self.host.monotonic_now
        self.host.advance(self.round_trip / 2)
        at = SERVER_START + timedelta(seconds=self.host.monotonic_now - 1000.0 + self.offset)
        self.host.advance(self.round_trip / 2)
        return at, before, self.host.monotonic_now


def test_one_reading_is_carried_forward_by_the_monotonic_clock(host):
    server = Server(host)
    clock = ServerClock(server.read, "test")
    first = clock.now()
    host.advance(10)
    second = clock.now()
    assert server.readings == 1
    assert abs((second - first).total_seconds() - 10) < 0.01
    assert abs((first - SERVER_START).total_seconds()) < 0.01


def test_a_fast_or_slow_wall_clock_changes_nothing_but_a_warning(host, caplog):
    host.wall_now += 300  # five minutes fast
    server = Server(host)
    clock = ServerClock(server.read, "the test server")
    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        now = clock.now()
        clock.now()
    assert abs((now - SERVER_START).total_seconds()) < 0.01  # the server's time, not this host's
    assert caplog.text.count("300.0 s ahead of the clock of ClickHouse at the test server") == 1


def test_a_wall_clock_step_is_followed_by_a_new_reading_and_never_goes_backwards(host):
    server = Server(host)
    clock = ServerClock(server.read, "test")
    before = clock.now()
    host.wall_now -= 300  # NTP steps this host's clock back; the server's clock did not move
    server.offset = -0.5  # and the server's clock happens to read a little earlier than extrapolated
    after = clock.now()
    assert server.readings == 2  # the jump was noticed
    assert after > before  # readings of one connection never go backwards


def test_the_reading_is_renewed_after_clock_resync_seconds(host):
    server = Server(host)
    clock = ServerClock(server.read, "test")
    clock.now()
    host.advance(server_clock.CLOCK_RESYNC / 2)
    clock.now()
    assert server.readings == 1
    host.advance(server_clock.CLOCK_RESYNC)
    clock.now()
    assert server.readings == 2


def test_a_slow_reading_is_placed_in_the_middle_of_its_round_trip(host):
    server = Server(host, round_trip=2.0)
    clock = ServerClock(server.read, "test")
    now = clock.now()  # the server read its clock 1 s into the 2 s round trip; it is now 1 s later
    assert abs((now - SERVER_START).total_seconds() - 2.0) < 0.01
