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
    with pytest.raises(CommandError, match="sink_query only reads: .* refused: a DROP statement"):
        run("sink_query", "DROP TABLE course_outline_dumps")


# -- dump_sink --all --reconcile -----------------------------------------------------------------------


def current(sink):
    """The keys of ``sink`` whose current dump is not a tombstone, from the ledger's view."""
    engine = get_connection()
    return [k for (k,) in engine.query(
        f"SELECT key FROM `{engine.database}`.event_sinks_current_dumps WHERE sink = {{s:String}} AND NOT deleted "
        "ORDER BY key", {"s": sink})]


def runs():
    """How many dump_sink runs started (with --resume in mind: a refused command must start none)."""
    engine = get_connection()
    return engine.query(f"SELECT uniqExact(run_id) FROM `{engine.database}`.event_sinks_runs")[0][0]


def _folder_of_links(tmp_path, exports):
    """A folder of exports (symlinks to them), so a test can take one away as a deletion would."""
    folder = tmp_path / "olx"
    folder.mkdir()
    for export in exports:
        (folder / export.name).symlink_to(export, target_is_directory=True)
    return folder


def test_reconcile_tombstones_the_courses_the_source_no_longer_lists(embedded, shared_courses, tmp_path):
    from event_sinks.courses.sources import OlxSource

    exports = sorted(p for p in shared_courses.iterdir() if p.is_dir())
    folder = _folder_of_links(tmp_path, exports)
    olx = ["--olx", str(folder)]
    run("dump_sink", "course_outline", "--all", *olx)
    everything = current("course_outline")
    assert len(everything) == len(exports) == 7
    removed = exports[2]
    (removed_key,) = OlxSource([removed]).keys()
    (folder / removed.name).unlink()  # the course is deleted in the source; no signal says so

    out, _ = run("dump_sink", "course_outline", "--all", "--reconcile", *olx)
    lines = out.splitlines()
    assert lines[0] == "course_outline: reconcile: 1 keys tombstoned (no longer listed by the source), 0 failed"
    assert "tombstoned course-v1" not in out  # the keys themselves only at verbosity 2
    assert lines[1].startswith("course_outline: 0 dumped, 0 deleted, 6 skipped, 0 failed")  # and the --all dump
    assert current("course_outline") == [k for k in everything if k != removed_key]
    out, _ = run("sink_query", "SELECT DISTINCT course_key FROM course_outline ORDER BY course_key")
    assert removed_key not in out and all(k in out for k in everything if k != removed_key)
    assert dict(ledger("course_outline")) == {k: 2 if k == removed_key else 1 for k in everything}

    # Once tombstoned, a key is not current any more: the next run has nothing to do.
    out, _ = run("dump_sink", "course_outline", "--all", "--reconcile", *olx, verbosity=2)
    assert "reconcile: 0 keys tombstoned" in out
    # Another sink of the same courses keeps its own ledger: reconciled on its own run, at verbosity 2 by key.
    run("dump_sink", "block_relationships", "--all", "--olx", str(shared_courses))
    assert len(current("block_relationships")) == 7
    out, _ = run("dump_sink", "block_relationships", "--all", "--reconcile", *olx, verbosity=2)
    assert f"tombstoned {removed_key}\nblock_relationships: reconcile: 1 keys" in out
    assert current("block_relationships") == current("course_outline")


def test_reconcile_dry_run_lists_the_keys_and_writes_nothing(embedded, tmp_path):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    a, b = _export(tmp_path, "a", "A101", start), _export(tmp_path, "b", "B101", start)
    a_key, b_key = "course-v1:EventSinks+A101+2026", "course-v1:EventSinks+B101+2026"
    run("dump_sink", "course_outline", "--all", "--olx", str(a), "--olx", str(b))
    before = ledger("course_outline")
    out, err = run("dump_sink", "course_outline", "--all", "--reconcile", "--dry-run", "--olx", str(a))
    assert out == ""
    assert f"would tombstone {b_key}\ncourse_outline: dry run, reconcile: 1 keys would be tombstoned" in err
    assert "course_outline: dry run, 1 keys, 21 rows serialized, nothing written" in err
    assert ledger("course_outline") == before and current("course_outline") == [a_key, b_key]
    assert runs() == 1  # the first dump's, no other


def test_reconcile_dry_run_before_any_dump_creates_nothing(embedded):
    _, err = run("dump_sink", "course_outline", "--all", "--reconcile", "--dry-run", "--olx", str(DEMO))
    assert "reconcile: 0 keys would be tombstoned (no longer listed by the source)" in err
    engine = get_connection()
    assert engine.query(f"EXISTS TABLE `{engine.database}`.event_sinks_dump_log") == [(0,)]


def _empty_olx_folder(tmp_path):
    """A folder of exports none of which can be read (so the source lists no course)."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "course1").mkdir()
    (folder / "course1" / "course.xml").write_text("<not a course")
    return folder


def _empty_modulestore(tmp_path):
    from event_sinks.courses.sources import ModulestoreSource
    from event_sinks.testing.modulestore import StandInModuleStore

    set_course_source(ModulestoreSource(StandInModuleStore()))
    return []


def _unreadable_olx(tmp_path):
    return ["--olx", str(_empty_olx_folder(tmp_path))]


@pytest.mark.parametrize("empty_source", [_empty_modulestore, _unreadable_olx], ids=["modulestore", "olx"])
def test_reconcile_refuses_a_source_that_lists_nothing(embedded, tmp_path, empty_source):
    run("dump_sink", "course_outline", "--all", "--olx", str(DEMO))
    set_course_source(None)
    args = empty_source(tmp_path)
    error, out, _ = run_failing("dump_sink", "course_outline", "--all", "--reconcile", *args,
                                match="the source lists no keys while the ledger holds 1 current keys")
    assert "--allow-empty-source" in error and out == ""
    assert ledger("course_outline") == [(DEMO_KEY, 1)] and current("course_outline") == [DEMO_KEY]
    assert runs() == 1  # the first dump's: the refused one never started
    # A dry run refuses the same way: it shows what the real run would do.
    run_failing("dump_sink", "course_outline", "--all", "--reconcile", "--dry-run", *args,
                match="the source lists no keys")

    # Said explicitly, an empty source means every course is gone.
    out, _ = run("dump_sink", "course_outline", "--all", "--reconcile", "--allow-empty-source", *args)
    assert "reconcile: 1 keys tombstoned (no longer listed by the source)" in out
    assert current("course_outline") == []


def test_an_empty_source_with_an_empty_ledger_is_not_refused(embedded, words):
    out, _ = run("dump_sink", "test_words", "--all", "--reconcile")
    assert "test_words: reconcile: 0 keys" in out and "0 dumped, 0 deleted, 0 skipped, 0 failed" in out


def test_reconcile_leaves_skipped_keys_and_normalizes_the_listing(embedded, words, monkeypatch):
    sample_sink.SOURCE.update(a=["x"], b=["y"], c=["z"], d=["w"])
    run("dump_sink", "test_words", "--all")
    del sample_sink.SOURCE["b"], sample_sink.SOURCE["c"]
    # A listing may hold keys in another spelling than the ledger's (normalize_key makes them the same).
    monkeypatch.setattr(sample_sink.WordsSink, "keys", lambda self: ["A", "d"])
    monkeypatch.setattr(sample_sink.WordsSink, "normalize_key", lambda self, key: key.lower())
    out, _ = run("dump_sink", "test_words", "--all", "--reconcile", "--skip", "b", verbosity=2)
    assert "tombstoned c\ntest_words: reconcile: 1 keys tombstoned (no longer listed by the source), 0 failed" in out
    assert current("test_words") == ["a", "b", "d"]


def test_reconcile_takes_the_ledger_before_listing(embedded, words, monkeypatch):
    # A key created and dumped (by a publish elsewhere) while the listing runs is missing from the
    # listing but not gone: it must not be tombstoned.
    from event_sinks.dumping import dump

    sample_sink.SOURCE.update(a=["x"])
    run("dump_sink", "test_words", "--all")

    def listing_while_a_key_is_created(self):
        listed = sorted(sample_sink.SOURCE)
        sample_sink.SOURCE["new"] = ["n"]
        dump("test_words", ["new"])
        return listed

    monkeypatch.setattr(sample_sink.WordsSink, "keys", listing_while_a_key_is_created)
    out, _ = run("dump_sink", "test_words", "--all", "--reconcile")
    assert "reconcile: 0 keys" in out
    assert current("test_words") == ["a", "new"]


def test_reconcile_with_resume_compares_the_whole_listing(embedded, words):
    sample_sink.SOURCE.update({f"doc{i}": ["w"] for i in range(6)})
    original = sample_sink.WordsSink.serialize

    def interrupt_at_doc3(self, key):
        if key == "doc3":
            raise KeyboardInterrupt
        return original(self, key)

    sample_sink.WordsSink.serialize = interrupt_at_doc3
    try:
        with pytest.raises(CommandError, match="interrupted after 3 of 6 keys"):
            run("dump_sink", "test_words", "--all", "--force")
    finally:
        sample_sink.WordsSink.serialize = original
    del sample_sink.SOURCE["doc1"]
    out, err = run("dump_sink", "test_words", "--all", "--force", "--resume", "--reconcile", verbosity=2)
    assert "2 keys already done, 3 to go" in err  # doc0 and doc2 done; doc1 gone from the source
    assert "tombstoned doc1\ntest_words: reconcile: 1 keys" in out and "3 dumped" in out
    assert current("test_words") == ["doc0", "doc2", "doc3", "doc4", "doc5"]  # done keys are not "gone"


def test_reconcile_reports_a_failing_tombstone(embedded, words, monkeypatch):
    from event_sinks.dumping.dumper import Dumper
    from event_sinks.errors import EngineError

    sample_sink.SOURCE.update(a=["x"], b=["y"])
    run("dump_sink", "test_words", "--all")
    del sample_sink.SOURCE["b"]

    def refused(self, keys):
        raise EngineError("the engine said no")

    monkeypatch.setattr(Dumper, "delete_keys", refused)
    _, out, _ = run_failing("dump_sink", "test_words", "--all", "--reconcile", match="1 of 2 keys failed")
    assert "FAILED b: the engine said no\ntest_words: reconcile: 0 keys" in out and ", 1 failed" in out
    assert current("test_words") == ["a", "b"]


def test_reconcile_refuses_a_listing_that_fails(embedded, words, monkeypatch):
    sample_sink.SOURCE.update(a=["x"])
    run("dump_sink", "test_words", "--all")

    def unreachable(self):
        raise ConnectionError("modulestore unreachable")

    monkeypatch.setattr(sample_sink.WordsSink, "keys", unreachable)
    run_failing("dump_sink", "test_words", "--all", "--reconcile",
                match="sink test_words could not list its keys: ConnectionError: modulestore unreachable")
    assert current("test_words") == ["a"]


def test_reconcile_refuses_a_sink_that_cannot_list_its_keys(embedded, words, monkeypatch):
    from event_sinks.core.sink import Sink

    monkeypatch.setattr(sample_sink.WordsSink, "keys", Sink.keys)
    run_failing("dump_sink", "test_words", "--all", "--reconcile",
                match="sink test_words cannot list its keys, so --reconcile cannot tell which are gone")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([DEMO_KEY, "--reconcile"], "--reconcile compares the sink's whole key listing .*not with explicit KEYs"),
        ([DEMO_KEY, "--all", "--reconcile"], "--reconcile .*not with explicit KEYs"),
        (["--reconcile"], "--reconcile compares the sink's whole key listing with the ledger: add --all"),
        (["--all", "--reconcile", "--since", "2026-01-01"], "--since lists only the keys changed .*drop --since"),
        (["--all", "--reconcile", "--limit", "2"], "--limit cuts the key listing short.*drop --limit"),
        (["--all", "--allow-empty-source"], "--allow-empty-source only changes what --reconcile does"),
    ],
)
def test_reconcile_refuses_options_it_cannot_work_with(embedded, args, message):
    run("dump_sink", "course_outline", "--all", "--olx", str(DEMO))
    before = ledger("course_outline")
    run_failing("dump_sink", "course_outline", *args, "--olx", str(DEMO), match=message)
    assert ledger("course_outline") == before and runs() == 1
