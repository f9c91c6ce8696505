"""The commands against the real embedded engine: dump_sink, sink_schema, list_sinks, show_course, sink_query."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.clickhouse import get_connection
from event_sinks.courses.sources import set_course_source

from ..support import sample_sink

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"


def run(*args, **kwargs):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _reset_source():
    yield
    set_course_source(None)


def run_failing(*args, match):
    """Run a command that must end in a CommandError matching ``match``; returns (error, out, err)."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=match) as info:
        call_command(*args, stdout=out, stderr=err)
    return str(info.value), out.getvalue(), err.getvalue()


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
    out, _ = run("dump_sink", "test_words", "--all", "--limit", "0")
    assert "0 dumped, 0 deleted, 0 skipped, 0 failed" in out  # --limit 0 selects nothing


def test_batch_size_is_rows_per_insert(embedded, words):
    # Batches are inserted as they fill and the dump is committed after its last batch, so a key whose
    # source breaks after 5 rows leaves exactly its complete batches in the dumps table (never in the view).
    sample_sink.SOURCE.update(small=list("abcdefg"), default=list("abcdefg"))
    sample_sink.FAIL_AFTER.update(small=5, default=5)
    run_failing("dump_sink", "test_words", "small", "--batch-size", "2", match="1 of 1 keys failed")
    run_failing("dump_sink", "test_words", "default", match="1 of 1 keys failed")
    engine = get_connection()
    written = f"SELECT doc, count() FROM `{engine.database}`.test_words_dumps GROUP BY doc ORDER BY doc"
    assert engine.query(written) == [("small", 4)]  # batches [0, 1] and [2, 3]; default: one batch, never full
    assert engine.query(f"SELECT count() FROM `{engine.database}`.test_words") == [(0,)]
    sample_sink.FAIL_AFTER.clear()
    out, _ = run("dump_sink", "test_words", "small", "--batch-size", "2")
    assert "1 dumped" in out and "7 rows" in out
    assert engine.query(f"SELECT position, word FROM `{engine.database}`.test_words ORDER BY position") == [
        (i, w) for i, w in enumerate("abcdefg")
    ]


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


def test_resume_without_an_interrupted_run_dumps_everything(embedded, words):
    sample_sink.SOURCE.update(a=["x"], b=["y"])
    out, err = run("dump_sink", "test_words", "--all", "--resume")
    assert "test_words: no interrupted run to resume; dumping all selected keys" in err
    assert "2 dumped" in out
    assert ledger("test_words") == [("a", 1), ("b", 1)]


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


def test_dry_run_reports_a_failing_key_and_prints_the_others(embedded, words):
    sample_sink.SOURCE.update(good=["a", "b"], bad=["c", "d"])
    sample_sink.FAIL_AFTER["bad"] = 0
    _, out, err = run_failing(
        "dump_sink", "test_words", "good", "bad", "--dry-run", "--format", "jsonl", match="1 of 2 keys failed"
    )
    assert [json.loads(line)["word"] for line in out.splitlines()] == ["a", "b"]
    assert "FAILED bad: RuntimeError: source of bad broke at word 0" in err
    engine = get_connection()
    assert engine.query(f"EXISTS TABLE `{engine.database}`.event_sinks_dump_log") == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name a sink to dump; known sinks: .*course_outline"),
        (["nope", "--all"], r"unknown sink 'nope'; known sinks: .*course_outline"),
        (["course_outline"], "give the KEYs to dump, or --all"),
        (["course_outline", DEMO_KEY, "--all"], "either KEYs or --all"),
        (["course_outline", DEMO_KEY, "--format", "csv"], "use it with --dry-run"),
        (["course_outline", DEMO_KEY, "--since", "2026-01-01"], "use it with --all"),
        (["course_outline", "--all", "--resume", "--dry-run"], "cannot be combined with --dry-run"),
        (["course_outline", DEMO_KEY, "--course-key", DEMO_KEY], "--course-key needs --olx"),
        (["course_outline", "--all", "--olx", "/no/such/export"], "does not exist"),
        (["course_outline", "--all", "--limit", "-1"], "--limit must be 0 or more, found -1"),
        (["course_outline", "--all", "--batch-size", "0"], "--batch-size must be 1 or more, found 0"),
        (["course_outline", "--all", "--since", "yesterday"], "expected an ISO 8601 date/time"),
        (
            ["course_outline", "--all", "--olx", str(DEMO), "--olx", str(DEMO), "--course-key", DEMO_KEY],
            "a course key override needs exactly one OLX export",
        ),
    ],
)
def test_user_mistakes_raise_command_error(embedded, args, message):
    with pytest.raises(CommandError, match=message):
        run("dump_sink", *args)


def test_malformed_key_fails_with_what_was_expected(embedded):
    with pytest.raises(CommandError, match="1 of 1 keys failed"):
        out, _ = run("dump_sink", "course_outline", "not-a-key", "--olx", str(DEMO))


def _export(tmp_path, name, course, mtime):
    """A copy of the demo export as course ``course``, every file's mtime set to ``mtime``."""
    path = tmp_path / name
    shutil.copytree(DEMO, path)
    xml = path / "course.xml"
    xml.write_text(xml.read_text().replace('course="Demo101"', f'course="{course}"'))
    for f in path.rglob("*"):
        os.utime(f, (mtime.timestamp(), mtime.timestamp()))
    return path


def test_since_selects_changed_exports(embedded, tmp_path, settings):
    before = datetime(2020, 1, 1, tzinfo=UTC)
    edit = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    old = _export(tmp_path, "old", "Old101", before)
    new = _export(tmp_path, "new", "New101", before)
    os.utime(new / "sequential" / "nile.xml", (edit.timestamp(), edit.timestamp()))  # edited at 12:00 UTC
    old_key, new_key = "course-v1:EventSinks+Old101+2026", "course-v1:EventSinks+New101+2026"
    olx = ["--olx", str(old), "--olx", str(new)]

    out, _ = run("dump_sink", "course_outline", "--all", "--since", "2024-06-01", *olx)
    assert "1 dumped, 0 deleted, 0 skipped, 0 failed; 21 rows" in out
    assert ledger("course_outline") == [(new_key, 1)]  # the old export is left alone

    # Naive times are UTC, whatever the host's time zone: 13:00 UTC is after the edit, 13:00 in Tokyo is not.
    settings.TIME_ZONE = "Asia/Tokyo"
    out, _ = run("dump_sink", "course_outline", "--all", "--since", "2024-06-01T13:00", *olx)
    assert "0 dumped, 0 deleted, 0 skipped, 0 failed" in out  # nothing selected
    # An explicit zone is honoured, and the edit time itself counts (at or after): 14:00+02:00 is 12:00 UTC.
    out, _ = run("dump_sink", "course_outline", "--all", "--since", "2024-06-01T14:00+02:00", *olx)
    assert "0 dumped, 0 deleted, 1 skipped, 0 failed" in out  # selected, and unchanged since its dump

    out, _ = run("dump_sink", "course_outline", "--all", "--since", "2019-12-31", *olx)
    assert "1 dumped, 0 deleted, 1 skipped, 0 failed" in out  # both exports are listed: --since did the choosing
    assert ledger("course_outline") == [(new_key, 1), (old_key, 1)]


def test_since_needs_a_sink_that_tracks_changes(embedded, words):
    sample_sink.SOURCE.update(a=["x"])
    run_failing(
        "dump_sink",
        "test_words",
        "--all",
        "--since",
        "2024-01-01",
        match="sink test_words cannot list keys changed since a date: drop --since",
    )
    engine = get_connection()
    assert engine.query(f"EXISTS TABLE `{engine.database}`.event_sinks_dump_log") == [(0,)]


def test_course_key_dumps_an_export_under_another_key(embedded):
    other = "course-v1:Other+Copy+2027"
    out, _ = run("dump_sink", "course_outline", other, "--olx", str(DEMO), "--course-key", other)
    assert "1 dumped" in out and "21 rows" in out
    assert ledger("course_outline") == [(other, 1)]
    out, _ = run("sink_query", "SELECT DISTINCT course_key FROM course_outline")
    assert other in out and DEMO_KEY not in out


def test_strict_fails_a_broken_export_that_is_otherwise_read_in_part(embedded, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(DEMO, broken)
    (broken / "sequential" / "yangtze.xml").unlink()  # a dangling pointer from chapter/rivers.xml
    _, out, _ = run_failing(
        "dump_sink", "course_outline", "--all", "--olx", str(broken), "--strict", match="1 of 1 keys failed"
    )
    assert f"FAILED {DEMO_KEY}: " in out and "yangtze" in out
    assert ledger("course_outline") == []
    out, _ = run("dump_sink", "course_outline", "--all", "--olx", str(broken))
    assert "1 dumped" in out and "17 rows" in out  # the Yangtze sequential and its 3 blocks skipped, not 21
    assert ledger("course_outline") == [(DEMO_KEY, 1)]


def test_list_lists_the_sinks(embedded):
    out, _ = run("dump_sink", "--list")
    assert "course_outline (enabled)" in out and "block_relationships (enabled)" in out


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
