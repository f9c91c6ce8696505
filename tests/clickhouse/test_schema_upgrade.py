"""Tables made by an earlier version gain the columns added since, before the views read them.

0.2.0 added ``course_outline.detached``: an install that dumped with 0.1 has a ``course_outline_dumps``
table without it, and the ``course_blocks`` view of 0.2 reads it.
"""

from __future__ import annotations

import logging

import attrs

from event_sinks import dump, get_sink
from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.core import visibility
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

KEY = "course-v1:Upgrade+U1+R"


def test_an_older_table_gains_the_new_column_before_a_dump(engine, caplog):
    sink = get_sink("course_outline")
    current = sink.table()
    older = attrs.evolve(current, columns=tuple(c for c in current.columns if c.name != "detached"))
    engine.apply_schema(visibility.ledger_schema())
    engine.command(engine.renderer.create_table(older))  # what 0.1 created
    store = StandInModuleStore([synthetic_course("Upgrade", "U1", "R", 100)])
    set_course_source(ModulestoreSource(store))
    try:
        with caplog.at_level(logging.INFO, logger="event_sinks"):
            summary = dump(sink, [KEY], connection=Connection(get_settings()))
        assert summary.count("dumped") == 1, summary.failed
        columns = [r[0] for r in engine.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            {"db": engine.database, "t": current.name})]
        assert columns == [c.name for c in current.columns]  # in declaration order
        assert "added column detached (Bool)" in caplog.text
        rows = engine.query(f"SELECT count(), countIf(detached) FROM `{engine.database}`.course_outline "
                            "WHERE course_key = {k:String}", {"k": KEY})
        assert rows == [(100, 0)]
    finally:
        set_course_source(None)
