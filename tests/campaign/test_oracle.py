"""The campaign's oracle (tests/support/campaign.py) judges real engine states rightly.

A wrong oracle hides breaks or invents them: seed 15 reported every case after a dropped ledger
insert as a break, although readers saw exactly what ADR 0007 allows (docs/decisions/0007-current-tables.rst:
the ledger may lag what readers see, never lead it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from event_sinks import dump
from event_sinks.clickhouse import Connection, close_connections
from event_sinks.conf import get_settings
from event_sinks.courses.sources import OlxSource, set_course_source
from event_sinks.dumping import ledger

from ..support.campaign import Probe

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
SINK = "block_relationships"


@pytest.fixture
def lagging_ledger(embedded, monkeypatch):
    """The demo course dumped and logged, then dumped again with its ledger insert dropped."""
    set_course_source(OlxSource([DEMO]))
    assert dump("course_outline").count("dumped") == 1  # the probe reads both course views
    assert dump(SINK).count("dumped") == 1
    with monkeypatch.context() as patch:  # as a gateway that acknowledges the insert without forwarding it
        patch.setattr(ledger, "commit", lambda *args, **kwargs: None)
        summary = dump(SINK)
    assert summary.count("failed") == 1 and "acknowledged the commit" in summary.failed[0].error
    probe = Probe("embedded", lambda: Connection(get_settings()))
    yield probe
    probe.reset()
    set_course_source(None)
    close_connections()


def test_a_ledger_lagging_a_whole_newer_dump_is_no_break(lagging_ledger):
    state = lagging_ledger.snapshot()
    assert lagging_ledger.view_problems(state["current"]) == []


def test_a_view_showing_rows_no_dump_wrote_is_a_break(lagging_ledger):
    shown = lagging_ledger.query(f"SELECT DISTINCT dump_id FROM {{db}}.{SINK}")
    assert len(shown) == 1
    lagging_ledger.query(f"ALTER TABLE {{db}}.{SINK}_dumps DELETE WHERE dump_id = {{d:UUID}} "
                         "SETTINGS mutations_sync = 1", {"d": shown[0][0]})
    problems = lagging_ledger.view_problems(lagging_ledger.snapshot()["current"])
    assert len(problems) == 1 and "the view shows dump" in problems[0], problems
