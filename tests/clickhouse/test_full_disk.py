"""A full disk never bricks the embedded engine, and a damaged metadata file is named with its recovery.

Every step runs the command line in a process of its own, as every start of a worker or of
``event-sinks`` does: chDB allows one data directory per process, and a start is what a damaged
metadata file breaks (the engine refuses to start). Before, each start re-issued ``CREATE OR REPLACE
VIEW``; on a full disk that left an empty view definition behind, and the engine never started again.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from event_sinks.cli import DEMO_COURSE

REPO = Path(__file__).resolve().parents[2]
DATABASE = "event_sinks"  # the command line's default


def cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    """``event-sinks --dsn chdb://DATA ARGS`` in a new process; its output is text."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EVENT_SINKS_DSN", None)
    return subprocess.run([sys.executable, "-m", "event_sinks", "--dsn", f"chdb://{data}", *args],
                          capture_output=True, text=True, env=env, cwd=data.parent, timeout=300)


def said(process: subprocess.CompletedProcess) -> str:
    return process.stdout + process.stderr


def rows_shown(data: Path) -> int:
    """The rows the ``course_outline`` view shows, read by a new process."""
    process = cli(data, "query", "SELECT count() AS n FROM course_outline")
    assert process.returncode == 0, said(process)
    return int(process.stdout.split()[2])  # "n", "--", the count


def dump_demo(data: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli(data, "dump_sink", "course_outline", "--all", *extra, "--olx", str(DEMO_COURSE))


#: A dump through the library in a new process (a worker's start, then one publish), printing its summary.
LIBRARY_DUMP = """
import sys
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=["event_sinks"], DATABASES={}, USE_TZ=True,
                   EVENT_SINKS={"DSN": "chdb://" + sys.argv[1], "OLX_PATHS": [sys.argv[2]], "DISPATCH": "sync"})
django.setup()
from event_sinks import dump
summary = dump("course_outline", ["course-v1:EventSinks+Demo101+2026"])
print(summary, *(result.error for result in summary.failed), sep="\\n")
"""


def library_dump(data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EVENT_SINKS_DSN", None)
    return subprocess.run([sys.executable, "-c", LIBRARY_DUMP, str(data), str(DEMO_COURSE)], capture_output=True,
                          text=True, env=env, cwd=data.parent, timeout=300)


def definition(data: Path, name: str) -> Path:
    """The metadata file of ``name`` in the library's database."""
    return Path(os.path.realpath(data / "metadata" / DATABASE / f"{name}.sql"))


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs mounted for the test (root only); skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until ``disk`` has no space left; returns it."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    for size in (4096, 512, 1):  # the last few blocks too
        try:
            with open(filler, "ab", buffering=0) as handle:
                while True:
                    handle.write(b"\0" * size)
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_a_dump_on_a_full_disk_fails_clearly_and_every_dump_before_it_stays_readable(small_disk):
    data = small_disk / "data"
    first = dump_demo(data)
    assert first.returncode == 0, said(first)
    assert rows_shown(data) == 21
    filler = fill(small_disk)
    try:
        full = dump_demo(data, "--force")  # a new process: its start checks the schema, then the dump fails
        text = said(full)
        assert full.returncode != 0, text
        assert "no space left" in text and "Traceback" not in text, text
        published = library_dump(data)  # a worker starts and dumps a publish: its inserts fail
        assert published.returncode == 0 and "1 failed" in published.stdout, said(published)
        assert "no space left" in published.stdout and "Traceback" not in said(published), said(published)
        started = cli(data, "query", "SELECT 1 AS one")  # one more start on the full disk
        assert "Traceback" not in said(started), said(started)
    finally:
        filler.unlink()
    assert rows_shown(data) == 21  # the engine starts, and shows the dump made before the disk filled
    again = dump_demo(data, "--force")
    assert again.returncode == 0, said(again)
    assert rows_shown(data) == 21


@pytest.mark.slow
def test_a_damaged_view_definition_is_named_with_how_to_recover(tmp_path):
    data = tmp_path / "data"
    assert dump_demo(data).returncode == 0
    view = definition(data, "event_sinks_current_dumps")
    view.write_bytes(b"")  # what a full disk left behind before
    broken = cli(data, "query", "SELECT 1 AS one")
    text = said(broken)
    assert broken.returncode != 0 and "Traceback" not in text, text
    assert str(view) in text and "is empty" in text and "is a view" in text, text
    assert "sink_schema --apply" in text, text
    shutil.move(view, tmp_path / "event_sinks_current_dumps.sql.damaged")  # what the message says to do
    recreated = cli(data, "sink_schema", "--apply")
    assert recreated.returncode == 0, said(recreated)
    assert rows_shown(data) == 21  # the view is back, and the dump with it


@pytest.mark.slow
def test_a_damaged_table_definition_says_to_restore_it(tmp_path):
    data = tmp_path / "data"
    assert dump_demo(data).returncode == 0
    table = definition(data, "course_outline_dumps")
    table.write_bytes(b"")
    broken = cli(data, "query", "SELECT 1 AS one")
    text = said(broken)
    assert broken.returncode != 0 and "Traceback" not in text, text
    assert str(table) in text and "is a table" in text and "restore this file from a backup" in text, text
