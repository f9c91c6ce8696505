"""Hostile values travel as data, never as SQL: quotes, backslashes, newlines, NUL, SQL fragments,
placeholder look-alikes and 4-byte Unicode come back unchanged, through a sink dump (keys and values)
and through ``Engine.query`` parameters, on both engines (embedded chDB and HTTP)."""

from __future__ import annotations

import attrs

from event_sinks import Sink, column, dump, get_sink
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.dumping import Dumper
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

HOSTILE = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "ends with a backslash\\",
    "\\'",
    "\\\\'",
    "\\N",
    "\\0",
    "new\nline",
    "cr\rlf\r\n",
    "tab\there",
    "nul\x00byte",
    "\x00",
    "\x01\x02\x1b[31m\x7f",
    "'); DROP TABLE x; --",
    "\"; DROP DATABASE event_sinks; --",
    "' OR '1'='1",
    "1; SELECT * FROM system.users",
    "{x:String}",
    "{{key:String}}",
    "$1 ? %s %(x)s :name",
    "`backticks`",
    "/* comment */ --",
    "emoji 😀, math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, CJK ext-B 𠀀𠀁",
    "长江 \u202eRTL override\u202c",
    "\ufeffBOM and \u200bzero width",
    "",
    " ",
    "<html>&amp;</html>",
    "x" * 20_000,
]


@attrs.define
class HostileRow:
    key: str = column("String")
    position: int = column("UInt32")
    title: str = column("String")
    label: str = column("LowCardinality(String)")
    note: str | None = column("Nullable(String)")


class HostileSink(Sink):
    """Rows whose key and values are whatever the source holds."""

    name = "test_hostile"
    row_type = HostileRow
    key_field = "key"
    order_by = ("position",)
    keys_per_dump = 100  # a backfill writes every key in one dump; a single key still gets its own

    def __init__(self, source: dict[str, list[str]]):
        self.source = source

    def keys(self):
        return list(self.source)

    def version(self, key):
        return "version " + key  # a hostile version string too

    def serialize(self, key):
        for i, value in enumerate(self.source[key]):
            yield HostileRow(key, i, value, value, value if i % 2 else None)


def read_back(engine, key):
    return engine.query(
        f"SELECT title, label, note FROM `{engine.database}`.test_hostile WHERE key = {{key:String}} "
        "ORDER BY position",
        {"key": key},
    )


def test_hostile_keys_and_values_round_trip_through_a_dump(engine):
    keys = [value for value in HOSTILE if value]  # "" is no key
    source = {key: list(HOSTILE) for key in keys}
    sink = HostileSink(source)
    summary = dump(sink, connection=engine, skip_unchanged=True)
    assert summary.count("dumped") == len(keys) and not summary.failed
    for key in keys:
        rows = read_back(engine, key)
        assert [r[0] for r in rows] == HOSTILE
        assert [r[1] for r in rows] == HOSTILE
        assert [r[2] for r in rows] == [v if i % 2 else None for i, v in enumerate(HOSTILE)]
    dumper = Dumper(sink, engine)
    assert dumper.current_versions(keys) == {key: "version " + key for key in keys}  # keys as an Array parameter

    # Unchanged versions are recognised (skip), a new dump replaces the rows, a tombstone removes the key.
    assert dump(sink, keys, connection=engine, skip_unchanged=True).count("skipped") == len(keys)
    source[keys[0]] = list(reversed(HOSTILE))
    dump(sink, [keys[0]], connection=engine)
    assert [r[0] for r in read_back(engine, keys[0])] == list(reversed(HOSTILE))
    dumper.delete_key(keys[1])
    assert read_back(engine, keys[1]) == []
    assert [r[0] for r in read_back(engine, keys[2])] == HOSTILE  # the others untouched
    tables = {r[0] for r in engine.query(f"SHOW TABLES FROM `{engine.database}`")}
    assert {"test_hostile_dumps", "event_sinks_dump_log"} <= tables


def test_hostile_values_round_trip_as_query_parameters(engine):
    # One statement, every value bound three ways: a scalar, its length on the server, inside an array.
    params = {f"v{i}": value for i, value in enumerate(HOSTILE)}
    select = ", ".join(f"{{v{i}:String}}, length({{v{i}:String}})" for i in range(len(HOSTILE)))
    row = engine.query(f"SELECT {select}, {{all:Array(String)}}", {**params, "all": HOSTILE})[0]
    assert list(row[:-1:2]) == HOSTILE
    assert list(row[1:-1:2]) == [len(value.encode()) for value in HOSTILE]
    assert row[-1] == HOSTILE
    counts = engine.query("SELECT count() FROM (SELECT arrayJoin({all:Array(String)}) AS v) WHERE v = {probe:String}",
                          {"all": HOSTILE, "probe": HOSTILE[15]})
    assert counts == [(1,)]  # the SQL fragment is compared as a value


def test_hostile_titles_round_trip_through_the_course_outline(engine):
    store = StandInModuleStore()
    root = synthetic_course("Hostile", "Titles", "R", 10 + len(HOSTILE), sections=2, units_per_subsection=1,
                            leaves_per_unit=2)
    blocks = []
    stack = [root]
    while stack:
        block = stack.pop()
        blocks.append(block)
        stack.extend(reversed(block.get_children()))
    titles = {str(b.location.for_branch(None)): HOSTILE[i % len(HOSTILE)] for i, b in enumerate(blocks)}
    for block in blocks:
        block.display_name = titles[str(block.location.for_branch(None))]
    root.course_version = "'); DROP TABLE course_outline_dumps; --"
    store.add_course(root)
    set_course_source(ModulestoreSource(store))
    try:
        key = "course-v1:Hostile+Titles+R"
        assert dump("course_outline", [key], connection=engine).count("dumped") == 1
        db = f"`{engine.database}`"
        rows = engine.query(f"SELECT location, display_name FROM {db}.course_outline "
                            "WHERE course_key = {k:String}", {"k": key})
        assert dict(rows) == titles
        labels = engine.query(f"SELECT location, label FROM {db}.course_blocks WHERE course_key = {{k:String}} "
                              "AND display_name = {t:String}", {"k": key, "t": HOSTILE[15]})
        assert labels and all(label.endswith(" - " + HOSTILE[15]) for _, label in labels)
        version = engine.query(f"SELECT DISTINCT source_version FROM {db}.course_outline")
        assert version == [(get_sink("course_outline")._revised(root.course_version),)]  # with the sink's revision
    finally:
        set_course_source(None)
