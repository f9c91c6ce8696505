"""A key with a line break (or another unprintable character) is quoted in the lines that name it.

``dump_sink`` printed such keys as they were: ``FAILED course-v1:A+B+C`` and the error on a line of its
own, or a second line the key forged (found by the hostile campaign, tests/campaign).
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.courses.sources import set_course_source

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"


@pytest.fixture(autouse=True)
def _reset_source():
    yield
    set_course_source(None)


@pytest.mark.parametrize("key", ["course-v1:A+B+C\n", "course-v1:A+B\x00+C", "course-v1:A+B+C\r\nFAILED forged"])
def test_a_key_with_a_line_break_is_quoted_in_its_failed_line(embedded, key):
    # It was printed as is: "FAILED course-v1:A+B+C" then the error on a line of its own (or a forged line).
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("dump_sink", "course_outline", key, "--olx", str(DEMO), stdout=out, stderr=err)
    failed = [line for line in (out.getvalue() + err.getvalue()).splitlines() if line.startswith("FAILED")]
    assert failed and all(line.startswith(f"FAILED {key!r}: ") for line in failed), failed
    assert f"last: {key!r}" in err.getvalue()  # the progress line too
