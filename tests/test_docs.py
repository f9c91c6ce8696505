"""The documentation shows what the code does: the demo's output as the quick start prints it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: What varies from one run to the next: timings, rates, byte counts.
VARYING = (
    (re.compile(r"\b\d[\d,]* rows/s\b"), "N rows/s"),
    (re.compile(r"\bin \d+(\.\d+)?s\b"), "in Ns"),
    (re.compile(r"\b\d+ bytes\b"), "N bytes"),
)


def normalised(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def shown_demo_output(page: Path) -> str:
    """The fenced block of ``page`` that shows the demo's output (the one that shows the outline it reads back)."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    shown = [block for block in blocks if "read back from the course_blocks view" in block]
    assert len(shown) == 1, f"{page.name} shows the demo's output {len(shown)} times; expected once"
    return shown[0]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> str:
    """``event-sinks demo`` run as the quick start says, in a fresh folder; stderr and stdout as a terminal shows
    them."""
    script = Path(sys.executable).with_name("event-sinks")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "event_sinks"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("EVENT_SINKS_DSN", None)
    result = subprocess.run(
        [*command, "demo"], cwd=tmp_path_factory.mktemp("demo"), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.mark.parametrize("page", ["docs/quickstart.md", "README.md"])
def test_the_shown_demo_output_is_what_the_demo_prints(page, demo_output):
    assert normalised(shown_demo_output(REPO / page)) == normalised(demo_output)


def test_the_settings_page_lists_every_declared_key():
    from event_sinks.conf.settings import FIELDS

    listed = re.findall(r"^\| `([A-Z_]+)` \|", (REPO / "docs" / "settings.md").read_text(encoding="utf-8"), re.M)
    assert sorted(listed) == sorted(FIELDS)
