"""Options may come before the positional arguments they follow: ``dump_sink SINK --force KEY``.

argparse fills a ``nargs="*"`` positional with nothing once an option follows the first positional, so
``dump_sink course_outline --force course-v1:A+B+C`` used to be refused ("unrecognized arguments:
course-v1:A+B+C"), and ``--all KEY`` did not get the command's own "either KEYs or --all" (found by the
hostile campaign, tests/campaign).
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.courses.sources import set_course_source

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"


@pytest.fixture(autouse=True)
def _reset_source():
    yield
    set_course_source(None)


@pytest.mark.parametrize("args", [
    ["course_outline", "--force", DEMO_KEY, "--olx", str(DEMO)],
    ["--force", "course_outline", "--olx", str(DEMO), DEMO_KEY],
    ["course_outline", DEMO_KEY, "--force", "--olx", str(DEMO)],
], ids=["key-after-option", "sink-after-option", "key-first"])
def test_keys_may_follow_options(embedded, args):
    out = StringIO()
    call_command("dump_sink", *args, stdout=out, stderr=StringIO())
    assert "course_outline: 1 dumped" in out.getvalue()


def test_keys_and_all_are_refused_by_the_command_not_by_argparse(embedded):
    with pytest.raises(CommandError) as caught:
        call_command("dump_sink", "course_outline", "--all", DEMO_KEY, "--olx", str(DEMO), stdout=StringIO(),
                     stderr=StringIO())
    assert str(caught.value) == "give either KEYs or --all, not both"


def test_sink_schema_takes_sinks_after_apply(embedded):
    out = StringIO()
    call_command("sink_schema", "--apply", "block_relationships", stdout=out)
    assert out.getvalue().startswith("applied ")


def test_unknown_options_are_still_refused(embedded):
    with pytest.raises(CommandError, match="unrecognized arguments: --frobnicate"):
        call_command("dump_sink", "course_outline", "--all", "--frobnicate", stdout=StringIO(), stderr=StringIO())


def test_a_course_key_for_a_folder_of_exports_names_the_option(embedded, tmp_path):
    # It named neither the option nor the path ("a course key override needs exactly one OLX export").
    import shutil

    for name in ("a", "b"):
        shutil.copytree(DEMO, tmp_path / "exports" / name)
    with pytest.raises(CommandError) as caught:
        call_command("dump_sink", "course_outline", "--all", "--course-key", "course-v1:X+Y+Z",
                     "--olx", str(tmp_path / "exports"), stdout=StringIO(), stderr=StringIO())
    message = str(caught.value)
    assert message.startswith("--course-key course-v1:X+Y+Z: a course key override needs exactly one OLX export")
    assert str(tmp_path / "exports") in message
