"""The layout a newcomer reads: module docstrings, the README's Layout section, the public API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import event_sinks

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "event_sinks"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "demo" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_says_what_it_is_for_in_its_first_line(path):
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path.relative_to(REPO)} has no module docstring"
    first = docstring.strip().splitlines()[0]
    assert len(first.split()) >= 3 and first.rstrip().endswith((".", ":", ")")), (
        f"{path.relative_to(REPO)}: the docstring's first line should say what the module is for: {first!r}")


def _layout_block() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1]
    block = section.split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def _named_in_layout() -> set[str]:
    """Paths the README's Layout names, relative to event_sinks/ (``core/``, ``core/sink.py``...)."""
    named: set[str] = set()
    parent = ""
    for line in _layout_block():
        indent = len(line) - len(line.lstrip())
        words = line.split()
        first = words[0]
        if indent == 2:
            parent = first if first.endswith("/") else ""
            names = [first]
        elif indent == 4 and parent:
            names = [parent + first]
        else:
            continue
        # "apps.py ...; checks.py: ..." names two root modules on one line
        names += [w.rstrip(":;,") for w in words[1:] if re.fullmatch(r"[a-z_]+\.py[:;,]?", w)]
        named.update(n for n in names if n.endswith((".py", "/")))
    return named


def test_the_readme_layout_and_the_tree_agree():
    named = _named_in_layout()
    missing = sorted(n for n in named if not (PACKAGE / n).exists())
    assert not missing, f"the README's Layout names what the tree does not have: {missing}"
    top = {p.name + "/" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top |= {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    layered = {"core/", "conf/", "clickhouse/", "courses/", "dumping/", "modelsinks/", "sinks/"}
    inner = {f"{d}{p.name}" for d in layered for p in (PACKAGE / d).iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())}
    inner = {n + "/" if (PACKAGE / n).is_dir() else n for n in inner}
    unlisted = sorted((top | inner) - named - {"management/"} - {"management/commands/"})
    assert not unlisted, f"modules missing from the README's Layout: {unlisted}"


def test_the_public_api_gives_a_sink_author_what_they_need():
    for name in event_sinks.__all__:
        assert getattr(event_sinks, name) is not None
    from event_sinks.core import ColumnBatch, Constant, Sink, Trigger, column
    from event_sinks.modelsinks import ModelSink
    from event_sinks.sinks.course_sink import CourseSink

    assert (event_sinks.Sink, event_sinks.column, event_sinks.ColumnBatch, event_sinks.Constant,
            event_sinks.Trigger, event_sinks.ModelSink, event_sinks.CourseSink) == (
        Sink, column, ColumnBatch, Constant, Trigger, ModelSink, CourseSink)
    assert issubclass(event_sinks.InvalidKeyError, event_sinks.EventSinksError)
    assert (PACKAGE / "py.typed").exists()


def test_the_readme_sink_example_runs_and_follows_its_signal():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    code = readme.split("## Writing a sink", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md (Writing a sink)", "exec"), namespace)  # noqa: S102 - our own README
    sink_class = namespace["CourseTagsSink"]
    (trigger,) = sink_class.triggers
    from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED

    assert trigger.resolve_signal() is COURSE_CATALOG_INFO_CHANGED
    info = type("Info", (), {"course_key": "course-v1:A+B+C"})()
    assert trigger.key({"catalog_info": info}) == "course-v1:A+B+C"
    assert sink_class.table_name.fget is not None and sink_class().table().name == "course_tags_dumps"
