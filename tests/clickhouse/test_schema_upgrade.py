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


def test_a_database_written_before_the_current_tables_keeps_showing_its_dumps(engine, caplog):
    """An install upgraded from the views over ``*_dumps`` (before ADR 0007): no course vanishes.

    The previous version's schema is this one's less the current tables, its view reading the dumps
    table through the ledger; the upgrade creates the current table, fills it from the ledger's
    current dumps, and only then points the view at it.
    """
    sink = get_sink("course_outline")
    store = StandInModuleStore([synthetic_course("Upgrade", "U1", "R", 100)])
    set_course_source(ModulestoreSource(store))
    try:
        first = dump(sink, [KEY], connection=engine).results[0]
        db = f"`{engine.database}`"
        engine.command(f"DROP VIEW {db}.course_blocks")
        engine.command(f"DROP VIEW {db}.course_outline")
        engine.command(f"DROP TABLE {db}.course_outline_current")  # what the earlier version had: dumps and ledger
        upgraded = Connection(get_settings())
        with caplog.at_level(logging.INFO, logger="event_sinks"):
            upgraded.apply_schema(visibility.ledger_schema() + sink.schema())
        assert "course_outline_current filled from the dumps an earlier version wrote" in caplog.text
        rows = upgraded.query(f"SELECT count(), any(dump_id) FROM {db}.course_outline WHERE course_key = {{k:String}}",
                              {"k": KEY})
        assert rows == [(100, first.dump_id)]
        again = dump(sink, [KEY], connection=upgraded, skip_unchanged=False).results[0]
        assert upgraded.query(f"SELECT count(), any(dump_id) FROM {db}.course_outline")[0] == (100, again.dump_id)
        upgraded.close()
    finally:
        set_course_source(None)
