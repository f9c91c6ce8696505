"""Several courses per dump in a backfill: the same views and ledger as one course per dump, a broken course
failing alone, inserts of about BATCH_SIZE rows, a failed group leaving every course as it was, a time
limit per course, one course read per publish.

The courses are the real OLX exports beside the repository (``../shared/courses``) and the bundled demo
course, served through the modulestore stand-in (``store_from_course``: the same blocks as the export), so
the run groups them as a backfill inside Open edX would; and synthetic courses of the stand-in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from event_sinks import dump, get_sink
from event_sinks.clickhouse import Connection, close_connections
from event_sinks.clickhouse import deadline as deadline_module
from event_sinks.conf import get_settings
from event_sinks.courses.olx import read_olx
from event_sinks.courses.sources import ModulestoreSource, OlxSource, set_course_source
from event_sinks.dumping import Dumper, dump_together
from event_sinks.errors import EngineError
from event_sinks.sinks.course_outline import CourseOutlineSink
from event_sinks.sinks.course_sink import COURSES_PER_DUMP, CourseSink
from event_sinks.testing.modulestore import StandInModuleStore, store_from_course, synthetic_course

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
SINKS = ("course_outline", "block_relationships")


@pytest.fixture
def real_store(shared_courses):
    """A stand-in modulestore holding the real exports and the demo course; their keys, sorted."""
    store = StandInModuleStore()
    for path in sorted(p for p in shared_courses.iterdir() if p.is_dir()) + [DEMO]:
        store_from_course(read_olx(path), store)
    set_course_source(ModulestoreSource(store))
    yield store, sorted(str(summary.id) for summary in store.get_course_summaries())
    set_course_source(None)


def synthetic_store(n: int, blocks: int, version: str = "v1", org: str = "GroupX") -> tuple[StandInModuleStore, list]:
    store = StandInModuleStore()
    for i in range(n):
        root = synthetic_course(org, f"C{i:03d}", "R", blocks, sections=2, units_per_subsection=2, leaves_per_unit=2)
        root.course_version = f"{version}-{i}"
        store.add_course(root)
    return store, [f"course-v1:{org}+C{i:03d}+R" for i in range(n)]


def other_database(name: str) -> Connection:
    """A connection to another database of the embedded engine (for a run to compare with)."""
    return Connection(get_settings({"DATABASE": name}))


def view_contents(engine: Connection, sink: str) -> list[tuple]:
    """What readers see in ``sink``'s view: every row column and the version, not the dump's id or time."""
    names = [c for c in get_sink(sink).field_names] + ["source_version"]
    columns = ", ".join(f"`{c}`" for c in names)
    return engine.query(f"SELECT {columns} FROM `{engine.database}`.`{sink}` ORDER BY {columns}")


def ledger(engine: Connection, sink: str) -> list[tuple]:
    """The current dump of each key as the ledger says: key, rows, version, deleted."""
    return engine.query(f"SELECT key, rows, source_version, deleted FROM `{engine.database}`.event_sinks_current_dumps "
                        "WHERE sink = {s:String} ORDER BY key", {"s": sink})


def dump_ids(engine: Connection, sink: str) -> dict[str, str]:
    return dict(engine.query(f"SELECT key, toString(dump_id) FROM `{engine.database}`.event_sinks_current_dumps "
                             "WHERE sink = {s:String}", {"s": sink}))


def inserts_into(monkeypatch, table_suffix: str = "_dumps") -> list[tuple[str, int]]:
    """Record every column insert into a ``*_dumps`` table: (table, rows)."""
    seen: list[tuple[str, int]] = []
    original = Connection.insert_columns

    def counting(self, table, names, types, columns, **kwargs):
        if table.endswith(table_suffix):
            seen.append((table, len(columns[0])))
        return original(self, table, names, types, columns, **kwargs)

    monkeypatch.setattr(Connection, "insert_columns", counting)
    return seen


# -- the same as one course per dump ----------------------------------------------------------------------


def test_a_grouped_backfill_gives_the_views_and_ledger_of_one_course_per_dump(embedded, real_store, database):
    store, keys = real_store
    assert len(keys) == 8
    grouped, single = other_database(database), other_database(f"{database}_one")
    for sink in SINKS:
        assert get_sink(sink).dump_group() == COURSES_PER_DUMP  # the modulestore tells versions cheaply
        together = dump(sink, keys, connection=grouped, raise_errors=True)
        one_by_one = dump(sink, keys, connection=single, keys_per_dump=1, raise_errors=True)
        assert together.count("dumped") == one_by_one.count("dumped") == len(keys)
        # the first dump holds one course, the next every other course (rows_per_dump is far off)
        assert len(set(dump_ids(grouped, sink).values())) == 2
        assert len(set(dump_ids(single, sink).values())) == len(keys)
        assert view_contents(grouped, sink) == view_contents(single, sink)
        assert len(view_contents(grouped, sink)) > 3000
        assert ledger(grouped, sink) == ledger(single, sink)
        assert [(r.key, r.rows) for r in together.results] == [(r.key, r.rows) for r in one_by_one.results]

    # A second backfill, after some courses changed: a grouped dump replaces each course whole, as single ones do.
    changed = keys[1:6:2]
    for key in changed:
        structure = store.structure(key)
        structure.version = f"{structure.version}-2"
        gone = next(k for k, data in structure.blocks.items()
                    if data.block_type in ("html", "problem") and structure.parent_of(k) is not None)
        structure.blocks[structure.parent_of(gone)].fields["children"].remove(gone)
        del structure.blocks[gone]  # a block deleted
        structure.blocks[structure.root].fields["display_name"] = "Renamed"  # and the course renamed
        structure._parents = None
    for sink in SINKS:
        dump(sink, keys, connection=grouped, raise_errors=True, skip_unchanged=False)
        dump(sink, keys, connection=single, keys_per_dump=1, raise_errors=True, skip_unchanged=False)
        assert view_contents(grouped, sink) == view_contents(single, sink)
        assert ledger(grouped, sink) == ledger(single, sink)


def test_course_batches_of_several_keys_are_the_rows_of_each_key_in_turn(embedded):
    store, keys = synthetic_store(5, 60)
    set_course_source(ModulestoreSource(store))
    try:
        for name in SINKS:
            sink = get_sink(name)
            one_by_one = [row for key in keys for row in sink.serialize(key)]
            for batch_size in (1, 7, 60, 61, 1000):
                batches = list(sink.column_batches(keys, batch_size))
                assert [b.size for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
                assert [row for b in batches for row in b.rows()] == one_by_one
            # org is the same constant in every course: it stays one; the course key cannot
            (whole,) = sink.column_batches(keys, 1000)
            assert type(whole.columns[0]).__name__ == "Constant" and isinstance(whole.columns[1], list)
    finally:
        set_course_source(None)


# -- inserts near BATCH_SIZE ----------------------------------------------------------------------------------


def test_the_inserts_of_a_group_hold_batch_size_rows(embedded, monkeypatch):
    store, keys = synthetic_store(21, 100)  # 2,100 rows of course_outline
    set_course_source(ModulestoreSource(store))
    seen = inserts_into(monkeypatch)
    try:
        summary = dump("course_outline", keys, batch_size=500, raise_errors=True)
    finally:
        set_course_source(None)
    assert summary.count("dumped") == 21 and summary.rows == 2100
    # the first dump is one course (100 rows); the other 20 courses (2,000 rows) are one dump of 4 inserts
    assert [rows for _, rows in seen] == [100, 500, 500, 500, 500]


def test_big_courses_make_small_groups(embedded, monkeypatch):
    monkeypatch.setattr(CourseSink, "rows_per_dump", 250)
    store, keys = synthetic_store(9, 100)
    set_course_source(ModulestoreSource(store))
    try:
        summary = dump("course_outline", keys, raise_errors=True)
    finally:
        set_course_source(None)
    ids = [str(r.dump_id) for r in summary.results]
    sizes = [ids.count(i) for i in dict.fromkeys(ids)]
    assert sizes == [1, 2, 2, 2, 2]  # one course first, then as many 100-row courses as 250 rows hold


# -- failure isolation ----------------------------------------------------------------------------------------


def test_a_broken_course_fails_alone_and_the_others_of_its_group_are_dumped(embedded, caplog):
    engine = Connection(get_settings())
    store, keys = synthetic_store(8, 60)
    set_course_source(ModulestoreSource(store))
    try:
        first = dump("course_outline", keys, raise_errors=True)
        assert first.count("dumped") == 8
        before = view_contents(engine, "course_outline")
        # New versions of every course; course 5 now holds a cycle: its walk fails half way through.
        for i, key in enumerate(keys):
            store.structure(key).version = f"v2-{i}"
        broken = keys[5]
        seq = "block-v1:GroupX+C005+R+type@sequential+block@seq000000"
        store.add_child(broken, "block-v1:GroupX+C005+R+type@vertical+block@unit00000001", seq)
        with caplog.at_level(logging.WARNING, "event_sinks"):
            summary = dump("course_outline", keys)
    finally:
        set_course_source(None)
    assert [(r.key, r.status) for r in summary.results if r.status != "dumped"] == [(broken, "failed")]
    assert summary.count("dumped") == 7
    assert "cycle" in summary.failed[0].error
    assert "dumping them one by one" in caplog.text and "CourseReadError" in caplog.text
    after = view_contents(engine, "course_outline")
    # the broken course still shows its previous dump, whole; every other course its new one
    assert [r for r in after if r[1] == broken] == [r for r in before if r[1] == broken]
    assert {r[-1] for r in after if r[1] != broken} == {f"v2-{i}+r2" for i in range(8) if i != 5}
    versions = {key: version for key, _, version, _ in ledger(engine, "course_outline")}
    assert versions[broken] == "v1-5+r2"


def test_a_sink_failing_on_one_real_course_fails_it_alone(embedded, real_store, monkeypatch, caplog):
    engine = Connection(get_settings())
    store, keys = real_store
    target = keys[3]
    original = CourseOutlineSink.batches

    def batches(self, course, batch_size):
        for number, batch in enumerate(original(self, course, batch_size)):
            if course.course_key == target and number == 1:
                raise ValueError("stand-in: a bug of the sink on one course")
            yield batch

    monkeypatch.setattr(CourseOutlineSink, "batches", batches)
    with caplog.at_level(logging.WARNING, "event_sinks"):
        summary = dump("course_outline", keys, batch_size=40)
    assert [(r.key, r.status) for r in summary.results if r.status == "failed"] == [(target, "failed")]
    assert "a bug of the sink on one course" in summary.failed[0].error
    assert summary.count("dumped") == len(keys) - 1
    assert "dumping them one by one" in caplog.text
    assert {key for key, *_ in ledger(engine, "course_outline")} == set(keys) - {target}
    assert target not in {row[1] for row in view_contents(engine, "course_outline")}


def test_a_run_of_olx_exports_is_one_course_per_dump(embedded, shared_courses):
    """A version of an OLX export is a whole read: grouping would read each course twice."""
    set_course_source(OlxSource(sorted(p for p in shared_courses.iterdir() if p.is_dir())[:3]))
    try:
        assert get_sink("course_outline").dump_group() == 1
        summary = dump("course_outline", raise_errors=True)
    finally:
        set_course_source(None)
    assert summary.count("dumped") == 3 and len({r.dump_id for r in summary.results}) == 3


def test_an_engine_failure_fails_the_group_and_every_course_keeps_its_previous_dump(embedded, monkeypatch, caplog):
    engine = Connection(get_settings())
    store, keys = synthetic_store(6, 100)
    set_course_source(ModulestoreSource(store))
    try:
        dump("course_outline", keys, raise_errors=True)
        before, logged = view_contents(engine, "course_outline"), ledger(engine, "course_outline")
        for i, key in enumerate(keys):
            store.structure(key).version = f"v2-{i}"
        original = Connection.insert_columns
        calls = []

        def failing(self, table, *args, **kwargs):
            if table.endswith("_dumps"):
                calls.append(table)
                if len(calls) == 3:  # the second insert of the group: rows of it are in the table already
                    raise EngineError("stand-in: the engine refused the insert")
            return original(self, table, *args, **kwargs)

        monkeypatch.setattr(Connection, "insert_columns", failing)
        with caplog.at_level(logging.WARNING, "event_sinks"):
            summary = dump("course_outline", keys, batch_size=150)
    finally:
        set_course_source(None)
    assert [r.status for r in summary.results] == ["dumped"] + ["failed"] * 5  # the first dump is one course
    assert all("the engine refused the insert" in r.error for r in summary.failed)
    assert "one by one" not in caplog.text  # the engine's failure is not a course's: no retry key by key
    after = view_contents(engine, "course_outline")
    assert [r for r in after if r[1] != keys[0]] == [r for r in before if r[1] != keys[0]]
    assert ledger(engine, "course_outline")[1:] == logged[1:]


# -- the time limit of a group ----------------------------------------------------------------------------


def slow_inserts(monkeypatch, seconds_per_row: float, free: int = 0) -> None:
    """An engine that spends ``seconds_per_row`` of the dump's time limit per row inserted (no real wait),
    after ``free`` inserts that cost nothing."""
    original = Connection.insert_columns
    inserts = []

    def slow(self, table, names, types, columns, **kwargs):
        result = original(self, table, names, types, columns, **kwargs)
        if table.endswith("_dumps"):
            inserts.append(table)
            if len(inserts) > free:
                deadline_module.current_limit().left -= seconds_per_row * len(columns[0])
        return result

    monkeypatch.setattr(Connection, "insert_columns", slow)


def test_a_group_has_a_dump_timeout_per_course(settings, embedded, monkeypatch, caplog):
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DUMP_TIMEOUT": 10}
    close_connections()
    store, keys = synthetic_store(6, 100)
    set_course_source(ModulestoreSource(store))

    def publish_all(version):
        for i, key in enumerate(keys):
            store.structure(key).version = f"{version}-{i}"

    try:
        # Each course costs 6 s of the engine's time: the dump of five courses waits 30 s, three DUMP_TIMEOUTs.
        slow_inserts(monkeypatch, 0.06)
        summary = dump("course_outline", keys)
        assert summary.count("dumped") == 6, summary.failed
        assert [len([r for r in summary.results if r.dump_id == d]) for d in
                dict.fromkeys(r.dump_id for r in summary.results)] == [1, 5]
        # Still bounded: at 15 s per course the group of five (75 s) runs out of its 50 s ...
        publish_all("v2")
        slow_inserts(monkeypatch, 0.15, free=1)
        with caplog.at_level(logging.WARNING, "event_sinks"):
            summary = dump("course_outline", keys)
        assert [r.status for r in summary.results] == ["dumped"] + ["failed"] * 5
        assert all("DUMP_TIMEOUT" in r.error for r in summary.failed)
        assert "one by one" not in caplog.text  # the engine ran out: no retry key by key
        # ... and a course alone runs out of its one DUMP_TIMEOUT.
        publish_all("v3")
        slow_inserts(monkeypatch, 0.15)
        summary = dump("course_outline", keys[:1])
        assert summary.count("failed") == 1 and "DUMP_TIMEOUT" in summary.failed[0].error
    finally:
        set_course_source(None)


# -- publishes and multi-sink runs read each course once ----------------------------------------------------


def test_dump_together_reads_each_course_once_and_dumps_one_course_per_dump(embedded):
    store, keys = synthetic_store(4, 60)
    set_course_source(ModulestoreSource(store))
    try:
        summaries = dump_together(list(SINKS), keys)
        assert [s.count("dumped") for s in summaries] == [4, 4]
        assert all(store.full_reads(key) == 1 for key in keys)
        engine = Connection(get_settings())
        for sink in SINKS:
            assert len(set(dump_ids(engine, sink).values())) == 4  # a publish is one course per dump
        # one sink alone: one course per dump too
        for i, key in enumerate(keys):
            store.structure(key).version = f"v2-{i}"
        (outline,) = dump_together(["course_outline"], keys)
        assert outline.count("dumped") == 4 and len({r.dump_id for r in outline.results}) == 4
    finally:
        set_course_source(None)


def test_a_grouped_backfill_reads_each_course_once_and_holds_one_at_a_time(embedded, monkeypatch):
    import gc
    import weakref

    store, keys = synthetic_store(12, 100)
    source = ModulestoreSource(store)
    alive: list[weakref.ref] = []
    read = source.read

    def reading(key):
        course = read(key)
        alive.append(weakref.ref(course))
        return course

    monkeypatch.setattr(source, "read", reading)
    held = []
    original = Connection.insert_columns

    def counting(self, table, *args, **kwargs):
        gc.collect()
        held.append(sum(ref() is not None for ref in alive))
        return original(self, table, *args, **kwargs)

    monkeypatch.setattr(Connection, "insert_columns", counting)
    set_course_source(source)
    try:
        summary = dump("course_outline", keys, batch_size=250, raise_errors=True)
    finally:
        set_course_source(None)
    assert summary.count("dumped") == 12 and len({r.dump_id for r in summary.results}) == 2
    assert all(store.full_reads(key) == 1 for key in keys)
    assert len(held) > 4 and max(held) <= 1  # the course being read, at most; never the group


def test_the_run_reports_its_dumped_keys_to_the_dumper(embedded, monkeypatch):
    calls = []
    monkeypatch.setattr(Dumper, "after_run", lambda self, dumped: calls.append(dumped))
    store, keys = synthetic_store(5, 60)
    set_course_source(ModulestoreSource(store))
    try:
        dump("course_outline", [*keys, "course-v1:Not+In+Store"])
        dump("course_outline", keys, skip_unchanged=True)
    finally:
        set_course_source(None)
    assert calls == [5, 0]


def test_with_aspects_on_a_backfill_of_the_outline_is_one_course_per_dump(settings, embedded, database):
    """Aspects' feed takes each course's walk extras from the course read at commit: the last of a group only."""
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "ASPECTS": {"ENABLED": True, "DATABASE": f"{database}_aspects"}}
    close_connections()
    store, keys = synthetic_store(4, 60)
    set_course_source(ModulestoreSource(store))
    try:
        assert get_sink("block_relationships").dump_group() == COURSES_PER_DUMP  # it feeds nothing of Aspects'
        summary = dump("course_outline", keys, raise_errors=True)
    finally:
        set_course_source(None)
        close_connections()
    assert len({r.dump_id for r in summary.results}) == 4
    engine = Connection(get_settings())
    overviews = engine.query(f"SELECT course_key FROM `{database}_aspects`.course_overviews ORDER BY course_key")
    assert [key for (key,) in overviews] == keys  # a row from every course's read


def test_each_course_of_a_grouped_dump_reports_its_share_of_the_bytes(embedded):
    store, keys = synthetic_store(3, 200)
    set_course_source(ModulestoreSource(store))
    try:
        grouped = dump("course_outline", keys, keys_per_dump=3)
        alone = dump("course_outline", keys[:1], skip_unchanged=False)
    finally:
        set_course_source(None)
    shared = [r for r in grouped.results if [x.dump_id for x in grouped.results].count(r.dump_id) > 1]
    assert shared  # some courses went in one dump
    assert all(r.bytes > 0 for r in grouped.results)  # the engine counts an insert's bytes, shared by rows
    assert sum(r.bytes for r in grouped.results) == pytest.approx(3 * alone.results[0].bytes, rel=0.2)
