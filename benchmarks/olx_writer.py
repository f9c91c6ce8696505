"""Write a course of the Course/Block model as an OLX export on disk, shaped like a Studio export.

The benchmarks use it to measure the OLX path on the very course the modulestore stand-in serves
(``event_sinks.testing.modulestore.synthetic_course``): reading the written export back with
``event_sinks.courses.read_olx`` gives the same blocks, keys and settings (OLX has no edit times).

Layout, as Studio writes it: ``course.xml`` points to ``course/RUN.xml``; every other block is a
pointer tag (``<TYPE url_name="ID"/>``) in its parent's file and has its own ``TYPE/ID.xml``; an
``html`` block's body is a separate ``html/ID.html``. Attributes hold a block's *own* settings only --
the values that differ from what it inherits from its parent -- with dates as JSON strings and booleans
as ``true``/``false``, like a real export.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

from event_sinks.courses import Course

#: Settings a block inherits from its parent in Open edX (written only where a block changes them).
INHERITED = ("graded", "start", "due", "visible_to_staff_only", "hide_from_toc")
#: What an attribute-less course root inherits (see ``event_sinks.courses.model``).
ROOT_DEFAULTS = {"graded": False, "start": None, "due": None, "visible_to_staff_only": False,
                 "hide_from_toc": False}

_BODIES = {
    "html": None,  # the body goes to html/ID.html
    "problem": "<multiplechoiceresponse><choicegroup type=\"MultipleChoice\">"
               "<choice correct=\"true\">yes</choice><choice correct=\"false\">no</choice>"
               "</choicegroup></multiplechoiceresponse>",
    "video": None,
}


def _value(name: str, value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if value is None:
        return "null"
    return str(value)


def _attributes(block, inherited: dict) -> list[tuple[str, str]]:
    attrs = []
    if block.display_name is not None:
        attrs.append(("display_name", block.display_name))
    if block.format is not None:
        attrs.append(("format", block.format))
    for name in INHERITED:
        value = getattr(block, name)
        if value != inherited[name]:
            attrs.append((name, _value(name, value)))
    return attrs


def _tag(tag: str, attrs: list[tuple[str, str]], inner: str = "") -> str:
    text = "".join(f" {name}={quoteattr(value)}" for name, value in attrs)
    if inner:
        return f"<{tag}{text}>\n{inner}</{tag}>\n"
    return f"<{tag}{text}/>\n"


def write_olx(course: Course, dest: str | os.PathLike) -> Path:
    """Write ``course`` as an OLX export folder at ``dest`` (created); returns its path.

    Streams the course: memory holds the open containers' child lists, not the whole course.
    """
    root = Path(dest)
    org, number, run = course.course_key.removeprefix("course-v1:").split("+")
    root.mkdir(parents=True, exist_ok=True)
    (root / "course.xml").write_text(
        _tag("course", [("url_name", run), ("org", org), ("course", number)]), encoding="utf-8")
    made_dirs: set[str] = set()
    # usage key -> (tag, block id, attributes, child pointer lines, settings its children inherit)
    open_containers: dict[str, tuple] = {}
    pending_children: dict[str, int] = {}

    def write_file(tag: str, block_id: str, text: str, suffix: str = ".xml") -> None:
        if tag not in made_dirs:
            (root / tag).mkdir(exist_ok=True)
            made_dirs.add(tag)
        with open(root / tag / f"{block_id}{suffix}", "w", encoding="utf-8") as out:
            out.write(text)

    def close(key: str) -> None:
        tag, block_id, attrs, lines, _ = open_containers.pop(key)
        pending_children.pop(key, None)
        write_file(tag, run if tag == "course" else block_id, _tag(tag, attrs, "".join(lines)))

    def finished_child(parent: str | None) -> None:
        while parent is not None:
            pending_children[parent] -= 1
            if pending_children[parent]:
                return
            grand = open_containers[parent][4]["__parent__"]
            close(parent)
            parent = grand

    for block in course.blocks():
        parent = block.parent
        if parent is None:
            inherited = ROOT_DEFAULTS
        else:
            inherited = open_containers[parent][4]
            open_containers[parent][3].append(_tag(block.block_type, [("url_name", block.block_id)]))
        attrs = _attributes(block, inherited)
        if block.children:
            passes = {name: getattr(block, name) for name in INHERITED}
            passes["__parent__"] = parent
            open_containers[block.usage_key] = (block.block_type, block.block_id, attrs, [], passes)
            pending_children[block.usage_key] = len(block.children)
            continue
        if block.block_type == "html":
            write_file("html", block.block_id, f"<p>Body of {block.block_id}.</p>\n", ".html")
            attrs.append(("filename", block.block_id))
        write_file(block.block_type, block.block_id, _tag(block.block_type, attrs, _BODIES.get(block.block_type) or ""))
        finished_child(parent)
    for key in list(open_containers):  # containers without children left
        close(key)
    policies = root / "policies" / run
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "policy.json").write_text(json.dumps({f"course/{run}": {}}), encoding="utf-8")
    return root
