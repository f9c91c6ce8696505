"""``dump_sink --resume`` on hosts whose clocks are wrong: the run's bookkeeping uses ClickHouse's clock.

A resumed run skips the keys with a complete dump since the interrupted run began. Dumps carry the
server's time (``dumped_at``), so the run's start must be the server's time too. Before, it was the
writing host's: on a host 5 minutes fast no dump of the run counted and everything was dumped again;
on a host 5 minutes slow the dumps of the 5 minutes before the run counted as its own, and the keys
the interrupted run never reached were skipped.

Each run is ``dump_sink`` in its own process (``tests/support/resume_writer.py``) under libfaketime,
against the HTTP endpoint, whose clock is right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings

from .test_field_faults import faketime_library

RESUME_WRITER = Path(__file__).resolve().parents[1] / "support" / "resume_writer.py"
DOCS = [f"doc{i}" for i in range(6)]


class Host:
    """``dump_sink`` on a host of its own, its wall clock ``offset`` off (None: right)."""

    def __init__(self, dsn: str, offset: str | None):
        env = {**os.environ, "EVENT_SINKS_DSN": dsn, "PYTHONPATH": str(RESUME_WRITER.parents[2])}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        if offset is not None:
            env.update(LD_PRELOAD=faketime_library(), FAKETIME=offset,
                       FAKETIME_DONT_FAKE_MONOTONIC="1")  # NTP moves the wall clock, never the monotonic one
        self.process = subprocess.Popen([sys.executable, "-P", str(RESUME_WRITER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        ready = self.process.stdout.readline()
        if not ready.startswith("READY "):
            self.close()
            raise AssertionError(f"dump_sink's host did not start: {ready!r} {self.process.stderr.read()}")
        self.skew = float(ready.split()[1]) - time.time()

    def dump_sink(self, *args: str, source: dict[str, list[str]] | None = None,
                  interrupt: str | None = None) -> dict:
        """Run ``dump_sink test_words ARGS``; its out, err and error (the CommandError's text, or None)."""
        order = {"args": list(args), "source": source or {}, "interrupt": interrupt}
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, self.process.stderr.read()
        return json.loads(answer)

    def close(self) -> None:
        """End of input: the host exits (killed if it does not within 30 s)."""
        try:
            self.process.stdin.close()
        except OSError:  # it is gone already
            pass
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


def dumps_per_key(engine: Connection) -> dict[str, int]:
    return dict(engine.query(
        f"SELECT key, count() FROM `{engine.database}`.event_sinks_dump_log WHERE sink = 'test_words' GROUP BY key"))


@pytest.fixture
def dsn(http_server, database):
    if not http_server.running:
        http_server.start()
    return http_server.dsn.rsplit("/", 1)[0] + f"/{database}"


@pytest.mark.parametrize("resumed_on", ["same-host", "right-host"])
@pytest.mark.parametrize("offset", ["+5m", "-5m"], ids=["5-minutes-fast", "5-minutes-slow"])
def test_a_backfill_interrupted_on_a_skewed_host_resumes_exactly_where_it_stopped(dsn, offset, resumed_on):
    skewed = Host(dsn, offset)
    other = None
    engine = Connection(get_settings({"DSN": dsn}))
    try:
        assert abs(abs(skewed.skew) - 300) < 60, f"faketime did not skew the host (skew {skewed.skew:.1f} s)"
        # A complete backfill first: its dumps are older than the interrupted run, so they are not its work.
        done = skewed.dump_sink("--all", source={doc: ["w"] for doc in DOCS})
        assert done["error"] is None and "6 dumped" in done["out"], done
        # A forced backfill, interrupted (Ctrl-C) when it reaches doc3: doc0-doc2 are its work.
        cut = skewed.dump_sink("--all", "--force", interrupt="doc3")
        assert cut["error"] is not None and cut["error"].startswith("interrupted after 3 of 6 keys"), cut
        assert dumps_per_key(engine) == {"doc0": 2, "doc1": 2, "doc2": 2, "doc3": 1, "doc4": 1, "doc5": 1}

        resuming = skewed if resumed_on == "same-host" else (other := Host(dsn, None))
        # Meanwhile doc1 (dumped by the interrupted run) changes and doc9 appears.
        source = {**{doc: ["w"] for doc in DOCS}, "doc1": ["w", "new"], "doc9": ["x"]}
        resumed = resuming.dump_sink("--all", "--force", "--resume", source=source)
        assert resumed["error"] is None, resumed
        assert "2 keys already done, 5 to go (1 changed since its dump)" in resumed["err"], resumed["err"]
        assert "5 dumped" in resumed["out"], resumed["out"]
        # doc0 and doc2 skipped; doc1 (changed), doc3-doc5 (never reached) and doc9 (new) dumped.
        assert dumps_per_key(engine) == {"doc0": 2, "doc1": 3, "doc2": 2, "doc3": 2, "doc4": 2, "doc5": 2, "doc9": 1}

        # The resume closed the run: nothing is left to resume.
        again = skewed.dump_sink("--all", "--resume", source=source)
        assert "no interrupted run to resume" in again["err"] and "7 skipped" in again["out"], again
    finally:
        engine.close()
        skewed.close()
        if other is not None:
            other.close()
