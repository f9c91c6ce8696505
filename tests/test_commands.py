"""The commands against the real embedded engine: dump_sink, sink_schema, list_sinks, show_course, sink_query."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.clickhouse import get_connection
from event_sinks.courses.sources import set_course_source

from . import sample_sink

DEMO = Path(__file__).resolve().parents[1] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"


def run(*args, **kwargs):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _reset_source():
    yield
    set_course_source(None)


def ledger(sink):
    engine = get_connection()
    return engine.query(
        f"SELECT key, count() FROM `{engine.database}`.event_sinks_dump_log WHERE sink = {{s:String}} "
        "GROUP BY key ORDER BY key",
        {"s": sink},
    )


def test_dump_sink_olx_skip_unchanged_and_force(embedded):
    out, err = run("dump_sink", "course_outline", "--all", "--olx", str(DEMO))
    assert "course_outline: 1 dumped, 0 deleted, 0 skipped, 0 failed; 21 rows" in out
    assert "1/1 keys, 21 rows" in err  # plain progress lines when not a terminal
    out, _ = run("dump_sink", "course_outline", DEMO_KEY, "--olx", str(DEMO))
    assert "0 dumped, 0 deleted, 1 skipped" in out
    out, _ = run("dump_sink", "course_outline", DEMO_KEY, "--olx", str(DEMO), "--force")
    assert "1 dumped" in out
    assert ledger("course_outline") == [(DEMO_KEY, 2)]


def test_backfill_all_real_courses_then_skip_then_force(embedded, shared_courses):
    out, _ = run("dump_sink", "course_outline", "--all", "--olx", str(shared_courses))
    assert "7 dumped, 0 deleted, 0 skipped, 0 failed" in out
    out, _ = run("dump_sink", "course_outline", "--all", "--olx", str(shared_courses))
    assert "0 dumped, 0 deleted, 7 skipped, 0 failed" in out
    out, _ = run("dump_sink", "course_outline", "--all", "--olx", str(shared_courses), "--force")
    assert "7 dumped" in out
    assert [n for _, n in ledger("course_outline")] == [2] * 7


def test_limit_skip_and_batch_size(embedded, words):
    sample_sink.SOURCE.update({f"doc{i}": ["w"] * 7 for i in range(10)})
    out, _ = run("dump_sink", "test_words", "--all", "--limit", "3", "--batch-size", "2", "--skip", "doc0")
    assert "3 dumped" in out and "21 rows" in out
    assert [k for k, _ in ledger("test_words")] == ["doc1", "doc2", "doc3"]


def test_a_failing_key_is_reported_and_the_others_land(embedded, words):
    sample_sink.SOURCE.update(good=["a"], bad=["b", "c"], fine=["d"])
    sample_sink.FAIL_AFTER["bad"] = 1
    with pytest.raises(CommandError, match="1 of 3 keys failed"):
        run("dump_sink", "test_words", "good", "bad", "fine")
    assert [k for k, _ in ledger("test_words")] == ["fine", "good"]


def test_resume_after_interruption(embedded, words):
    sample_sink.SOURCE.update({f"doc{i}": ["w"] for i in range(6)})

    original = sample_sink.WordsSink.serialize

    def interrupt_at_doc3(self, key):
        if key == "doc3":
            raise KeyboardInterrupt
        return original(self, key)

    sample_sink.WordsSink.serialize = interrupt_at_doc3
    try:
        with pytest.raises(CommandError, match="interrupted after 3 of 6 keys; .*--resume"):
            run("dump_sink", "test_words", "--all", "--force")
    finally:
        sample_sink.WordsSink.serialize = original
    out, err = run("dump_sink", "test_words", "--all", "--force", "--resume")
    assert "3 keys already done, 3 to go" in err
    assert "3 dumped" in out
    assert ledger("test_words") == [(f"doc{i}", 1) for i in range(6)]  # nothing redone


def test_dry_run_formats_write_nothing(embedded):
    out, err = run("dump_sink", "block_relationships", DEMO_KEY, "--olx", str(DEMO), "--dry-run", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 20 and rows[0]["parent_type"] == "course" and rows[0]["position"] == 0
    assert "nothing written" in err
    out, _ = run("dump_sink", "course_outline", DEMO_KEY, "--olx", str(DEMO), "--dry-run", "--format", "csv")
    lines = out.splitlines()
    assert lines[0].startswith("org,course_key,location,block_type,display_name") and len(lines) == 22
    assert '"Reading: ""the long river"", dams & floods"' in out
    out, _ = run("dump_sink", "course_outline", DEMO_KEY, "--olx", str(DEMO), "--dry-run", "--format", "table")
    assert "长江 (The Yangtze)" in out and "(21 rows)" in out
    engine = get_connection()
    assert engine.query(f"EXISTS TABLE `{engine.database}`.event_sinks_dump_log") == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--all"], r"unknown sink 'nope'; known sinks: .*course_outline"),
        (["course_outline"], "give the KEYs to dump, or --all"),
        (["course_outline", DEMO_KEY, "--all"], "either KEYs or --all"),
        (["course_outline", DEMO_KEY, "--format", "csv"], "use it with --dry-run"),
        (["course_outline", DEMO_KEY, "--since", "2026-01-01"], "use it with --all"),
        (["course_outline", "--all", "--resume", "--dry-run"], "cannot be combined with --dry-run"),
        (["course_outline", DEMO_KEY, "--course-key", DEMO_KEY], "--course-key needs --olx"),
        (["course_outline", "--all", "--olx", "/no/such/export"], "does not exist"),
    ],
)
def test_user_mistakes_raise_command_error(embedded, args, message):
    with pytest.raises(CommandError, match=message):
        run("dump_sink", *args)


def test_malformed_key_fails_with_what_was_expected(embedded):
    with pytest.raises(CommandError, match="1 of 1 keys failed"):
        out, _ = run("dump_sink", "course_outline", "not-a-key", "--olx", str(DEMO))


def test_since_selects_changed_exports(embedded, tmp_path):
    out, _ = run("dump_sink", "course_outline", "--all", "--since", "2000-01-01", "--olx", str(DEMO), "--force")
    assert "1 dumped" in out
    out, _ = run("dump_sink", "course_outline", "--all", "--since", "2999-01-01", "--olx", str(DEMO))
    assert "0 dumped" in out


def test_schema_list_show_query(embedded):
    out, _ = run("sink_schema", "course_outline")
    assert "CREATE TABLE IF NOT EXISTS" in out and "`course_outline_dumps`" in out
    assert "CREATE OR REPLACE VIEW" in out and "`course_blocks`" in out
    out, _ = run("sink_schema", "--apply")
    assert out.startswith("applied ")
    out, _ = run("list_sinks")
    assert "course_outline (enabled)" in out and "openedx-event-sinks" in out
    assert "trigger: openedx_events.content_authoring.signals.COURSE_CATALOG_INFO_CHANGED" in out
    run("dump_sink", "course_outline", DEMO_KEY, "--olx", str(DEMO))
    out, _ = run("show_course", DEMO_KEY)
    assert out.splitlines()[0] == "Event Sinks Demo: Rivers of the World (course)"
    assert "        2:1:0 The Nile (sequential) [graded]" in out
    out, _ = run("sink_query", "SELECT count() AS blocks FROM course_outline")
    assert "blocks" in out and "21" in out and "(1 row)" in out
    with pytest.raises(CommandError, match="readonly|Cannot execute query in readonly mode"):
        run("sink_query", "DROP TABLE course_outline_dumps")
