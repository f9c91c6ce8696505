"""Property tests of the OLX reader: random course trees with random (often hostile) names.

Hypothesis writes random exports -- chapter/sequential/vertical/html/problem/video nested at random,
pointer tags and inline definitions, titles and url_names with quotes, ``<>&``, control characters,
4-byte characters, very long strings -- and ``read_olx`` must either return a valid course or raise
``CourseReadError``; never another exception. When every name is valid (the export is *exact*), the
course read back is exactly the course written: the same blocks in the same order, with the ids,
display names and children that :func:`expected_read` works out from what was written. Also here:
bytes that are not UTF-8, declared encodings, and multi-megabyte attributes (read with bounded
memory, or refused before being read).

What "exact" promises. The generator gives every url_name a name unique per block type across the
whole export -- compared as a file name on a case-insensitive, normalization-insensitive file system
(macOS, Windows), and also unlike any id the reader derives from a display name -- so every pointer
leads to a fresh file written for it alone: no pointer cycles, no shared definitions, no duplicate ids.
The hostile structures are deliberate, labelled *twists* instead (:data:`TWISTS`), each with the
outcome the test states: a pointer back to the block's own file or to an ancestor's (strict read
refuses it as a pointer cycle, a lenient read skips that pointer), a dangling pointer, a url_name used
by two blocks of one type, and two pointers to one file (one block, read once). Runs of ``.`` and
``..`` (valid key parts that name no folder) are exact too: a strict read once refused them, as the wide search found
(``test_a_run_named_dot_or_dot_dot_reads_strictly``).

Running. Every run is deterministic unless asked otherwise; developers run the same command as CI:

* ``pytest tests/courses/test_olx_properties.py`` -- the ``ci`` settings profile (the default):
  ``derandomize=True`` (the examples depend only on this file, Hypothesis and Python), no example
  database, ``max_examples=200`` (half of that for each twist), ``deadline=None``, ``print_blob=True``.
* ``pytest tests/courses/test_olx_properties.py --hypothesis-seed=N`` -- another fixed set of
  examples, still repeatable (in the ``ci`` profile a seed turns ``derandomize`` off so it counts).
* ``HYPOTHESIS_PROFILE=wide pytest tests/courses/test_olx_properties.py`` -- the wide search: ten times
  the examples (``max_examples=2000``), randomized (a new search each run), no example database;
  add ``--hypothesis-seed=N`` to repeat one.
* ``OLX_EXAMPLES=N`` overrides ``max_examples`` of whichever profile is used.

(Under tox, add ``HYPOTHESIS_PROFILE`` to ``passenv`` for the variable to reach the tests.) The same
fixed examples come back on every machine with the same Hypothesis and Python versions; another
Python can draw other examples (its Unicode tables differ), each set as deterministic.

A failure prints the falsifying example and a ``@reproduce_failure(...)`` line to replay it exactly.
The profiles are registered here (``ci`` replaces Hypothesis's built-in profile of that name with a
superset of it) and applied to these tests only, through :func:`olx_settings`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import tracemalloc
import unicodedata
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from xml.sax.saxutils import quoteattr

import hypothesis.core
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey, UsageKey

from event_sinks.courses import CourseReadError, read_olx

# -- settings profiles -------------------------------------------------------------------------------------

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", derandomize=True, database=None, max_examples=200, deadline=None,
                          print_blob=True, suppress_health_check=_SUPPRESSED)
settings.register_profile("wide", derandomize=False, database=None, max_examples=2000, deadline=None,
                          print_blob=True, suppress_health_check=_SUPPRESSED)
#: The profile these tests use: $HYPOTHESIS_PROFILE, else "ci" (an unknown name fails at collection).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or "ci"


def olx_settings(share: float = 1.0) -> settings:
    """The settings of a property test: the chosen profile, ``OLX_EXAMPLES`` and the seed applied.

    ``share``: the part of ``max_examples`` the test runs (each twist is a test of its own).
    """
    chosen = settings.get_profile(PROFILE)
    examples = int(os.environ.get("OLX_EXAMPLES") or chosen.max_examples)
    overrides = {"max_examples": max(1, round(examples * share))}
    # derandomize wins over --hypothesis-seed in Hypothesis; here a seed given on the command line
    # picks the examples (still a fixed, repeatable set). The pytest plugin stores it on hypothesis.core.
    if chosen.derandomize and getattr(hypothesis.core, "global_force_seed", None) is not None:
        overrides["derandomize"] = False
    return settings(chosen, **overrides)


CONTAINERS = ("chapter", "sequential", "vertical")
LEAVES = ("html", "problem", "video")
#: What opaque-keys accepts in a block id (Locator.ALLOWED_ID_CHARS), and the subset this test writes
#: as a plain file name (no ':', which maps to a sub-folder).
ID_RE = re.compile(r"[\w\-~.:]+")
PLAIN_ID_RE = re.compile(r"[\w\-~.]+")
#: XML 1.0's Char production: anything else makes the file malformed, even as a character reference.
XML_CHAR_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: The reader's cap on block nesting (read_olx's max_depth default).
MAX_DEPTH = 32
#: Valid runs that name no folder: the policy lookup must not treat them as unsafe paths (found by the
#: wide search; test_a_run_named_dot_or_dot_dot_reads_strictly).
DOT_RUNS = (".", "..")


@dataclass(frozen=True)
class Node:
    tag: str
    pointer: bool
    url_name: str | None
    display_name: str | None
    children: tuple = ()
    #: For a pointer: write its definition file. False (only in twists): write the pointer tag alone,
    #: pointing at whatever file is (or is not) there.
    file: bool = True


@dataclass(frozen=True)
class Spec:
    org: str
    number: str
    run: str
    display_name: str | None
    children: tuple


# -- names ---------------------------------------------------------------------------------------------------


def clean_id(value: str) -> str:
    """``BlockUsageLocator.clean``: the id the reader derives from a display name (module docstring)."""
    return re.sub("_+", "_", re.sub(r"[^\w.%-]", "_", value))


def fs_key(name: str) -> str:
    """What a case-insensitive, normalization-insensitive file system (macOS, Windows) compares."""
    return unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", name).casefold())


def walk_nodes(children):
    for node in children:
        yield node
        yield from walk_nodes(node.children)


def unique_url_names(spec: Spec) -> Spec:
    """``spec`` with url_names unique per block type: no two blocks of a type share a file or an id.

    A url_name is renamed (``NAME~2``, ``NAME~3``...) when, as a file name on any common file system,
    it equals an earlier url_name of its type (``A`` and ``a``, NFC and NFD spellings, ``x:y`` and
    ``x/y``), or the id the reader derives from the display name of a block of that type without a
    url_name (which could claim the id first). Hostile names stay hostile: only the suffix is added.
    """
    taken: dict[str, set[str]] = defaultdict(set)
    for node in walk_nodes(spec.children):
        if node.url_name is None and node.display_name is not None:
            taken[node.tag].add(fs_key(clean_id(node.display_name)))

    def fresh(tag: str, name: str) -> str:
        candidate, n = name, 1
        while fs_key(candidate.replace(":", "/")) in taken[tag]:
            n += 1
            candidate = f"{name}~{n}"
        taken[tag].add(fs_key(candidate.replace(":", "/")))
        return candidate

    def rename(node: Node) -> Node:
        url_name = None if node.url_name is None else fresh(node.tag, node.url_name)
        return replace(node, url_name=url_name, children=tuple(rename(child) for child in node.children))

    return replace(spec, children=tuple(rename(child) for child in spec.children))


# -- strategies ------------------------------------------------------------------------------------------

PIECES = st.sampled_from([
    '"', "'", "<", ">", "&", "&amp;", "&#0;", "]]>", "<!--", "\\", "\n", "\r\n", "\t", " ", ":", "/", "..", "%",
    "+", "@", "#", "?", "😀", "𝔘", "𠀀", "é", "长江", "\u202e", "\ufeff", "null", "true", '"q"', "12", "[1]", "{}",
    "a", "Z", "_", "-", ".", "~",
])
NOT_XML = st.sampled_from(["\x00", "\x01", "\x1f", "\ufffe", "\uffff"])  # no XML file can hold these
RAW_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.lists(st.one_of(PIECES, NOT_XML), max_size=8).map("".join),
)
XML_TEXT = st.one_of(  # hostile, and nearly always allowed in XML (U+FFFE and U+FFFF are Cn, not Cc)
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    st.lists(PIECES, max_size=8).map("".join),
    st.just("é\"<>&'😀" * 500),
)
VALID_TEXT = XML_TEXT.map(lambda text: XML_CHAR_RE.sub("", text))  # hostile, every character allowed


def mostly(common, rare, one_in: int):
    """``common``, and ``rare`` about once in ``one_in`` draws."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else common)


TEXT = mostly(XML_TEXT, RAW_TEXT, 8)
ID_CHARS = st.characters(whitelist_categories=("Ll", "Lu", "Lo", "Nd"), whitelist_characters="_-.~")
CLEAN_ID = st.text(ID_CHARS, min_size=1, max_size=20)
URL_NAME = mostly(CLEAN_ID, st.one_of(TEXT, st.just("x" * 300), CLEAN_ID.map(lambda s: s + ":" + s)), 6)
TITLE = st.one_of(st.none(), TEXT)
VALID_TITLE = st.one_of(st.none(), VALID_TEXT)
KEY_PART = mostly(CLEAN_ID, TEXT, 12)
NO_CHILDREN = st.just(())


def specs(key_part, url_name, title, max_leaves: int, run=None):
    """Random courses: trees of containers and leaves, names from the strategies given, url_names unique."""

    def nodes(tags, children=NO_CHILDREN):
        return st.builds(Node, tag=st.sampled_from(tags), pointer=st.booleans(),
                         url_name=st.one_of(st.none(), url_name), display_name=title, children=children)

    trees = st.recursive(nodes(LEAVES), lambda kids: nodes(CONTAINERS, st.lists(kids, max_size=4).map(tuple)),
                         max_leaves=max_leaves)
    return st.builds(Spec, org=key_part, number=key_part, run=key_part if run is None else run, display_name=title,
                     children=st.lists(trees, max_size=5).map(tuple)).map(unique_url_names)


#: Random courses with random, often invalid, names.
SPECS = specs(KEY_PART, URL_NAME, TITLE, max_leaves=24)
#: Random courses whose every name is valid (titles still hostile): the base of the twists.
EXACT_SPECS = specs(CLEAN_ID, CLEAN_ID, VALID_TITLE, max_leaves=16,
                    run=CLEAN_ID)


# -- writing an export -------------------------------------------------------------------------------------


def expected_text(raw: str | None):
    """An attribute's value as Open edX reads it: JSON-decoded when it is a JSON string or null."""
    if raw is None:
        return None
    if raw[:1] in '"-0123456789[{' or raw in ("null", "true", "false"):
        try:
            value = json.loads(raw)
        except ValueError:
            return raw
        return value if value is None or isinstance(value, str) else raw
    return raw


@dataclass
class Element:
    """An element as written: a pointer tag (``points_to`` its file), or an inline definition."""

    tag: str
    url_name: str | None = None  # attribute values as written (None: no attribute)
    display_name: str | None = None
    children: list = field(default_factory=list)
    points_to: str | None = None


class Writer:
    """Writes a Spec as an OLX export, and keeps what it wrote for :func:`expected_read`.

    ``exact`` is True while every name and character written is valid and every file was written.
    Structure (cycles, dangling or shared pointers) never makes an export inexact: the model reads it.
    """

    def __init__(self, root: Path):
        self.root = root
        self.flaws: list[str] = []  # why the export is not exact
        self.files: dict[str, Element] = {}  # definition files written: relative path -> root element
        self.keys: dict[str, str] = {}  # fs_key of every definition file -> its path
        self.course_rel: str | None = None
        self.course_root: Element | None = None

    @property
    def exact(self) -> bool:
        return not self.flaws

    def check_text(self, text: str | None, what: str) -> None:
        if text is not None and XML_CHAR_RE.search(text):
            self.flaws.append(f"{what} has a character XML cannot hold")  # the reader must refuse it

    def write_file(self, rel: str, text: str) -> bool:
        parts = rel.split("/")
        if any(p in ("", ".", "..") or "\x00" in p or len(p.encode()) > 200 for p in parts):
            return False
        path = self.root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
        except (OSError, ValueError):
            return False
        return True

    def define(self, rel: str, text: str, definition: Element) -> None:
        key = fs_key(rel)
        assert key not in self.keys, f"generator bug: {rel} and {self.keys[key]} are one file on some systems"
        self.keys[key] = rel
        if self.write_file(rel, text):
            self.files[rel] = definition
        else:
            self.flaws.append(f"{rel} could not be written")  # a dangling pointer

    def attributes(self, node: Node) -> str:
        attrs = []
        if node.url_name is not None:
            attrs.append(f"url_name={quoteattr(node.url_name)}")
        if node.display_name is not None:
            attrs.append(f"display_name={quoteattr(node.display_name)}")
        if node.url_name is not None and node.display_name is None and not node.children:
            attrs.append('inline="yes"')  # a lone url_name would make it a pointer tag
        return " ".join(attrs)

    def element(self, node: Node) -> tuple[str, Element]:
        self.check_text(node.url_name, "a url_name")
        self.check_text(node.display_name, "a display_name")
        if node.url_name is not None and not (ID_RE.fullmatch(node.url_name) and PLAIN_ID_RE.fullmatch(node.url_name)
                                              and len(node.url_name.encode()) <= 200):
            self.flaws.append(f"url_name {node.url_name!r} is not a valid block id (or not a plain file name)")
        written = [self.element(child) for child in node.children]
        inner = "".join(xml for xml, _ in written)
        kids = [element for _, element in written]
        if node.tag == "problem" and not inner:
            inner = "<p>2 &lt; 3 &amp; 4 &gt; 1</p>"
        if not (node.pointer and node.url_name is not None):
            return (f"<{node.tag} {self.attributes(node)}>{inner}</{node.tag}>",
                    Element(node.tag, node.url_name, node.display_name, kids))
        rel = f"{node.tag}/{node.url_name.replace(':', '/')}.xml"
        if node.file:
            title = "" if node.display_name is None else f" display_name={quoteattr(node.display_name)}"
            definition = Element(node.tag, None, node.display_name, kids)
            self.define(rel, f"<{node.tag}{title}>{inner}</{node.tag}>", definition)
        return f"<{node.tag} url_name={quoteattr(node.url_name)}/>", Element(node.tag, node.url_name, points_to=rel)

    def course(self, spec: Spec) -> None:
        for what, part in (("org", spec.org), ("course", spec.number), ("run", spec.run)):
            self.check_text(part, what)
            if not PLAIN_ID_RE.fullmatch(part):
                self.flaws.append(f"{what} {part!r} is not a plain key part")
        self.check_text(spec.display_name, "the course display_name")
        written = [self.element(child) for child in spec.children]
        inner = "".join(xml for xml, _ in written)
        title = "" if spec.display_name is None else f" display_name={quoteattr(spec.display_name)}"
        if not self.write_file("course.xml", f"<course url_name={quoteattr(spec.run)} org={quoteattr(spec.org)} "
                                             f"course={quoteattr(spec.number)}/>"):
            self.flaws.append("course.xml could not be written")
        self.course_rel = f"course/{spec.run.replace(':', '/')}.xml"
        if not self.write_file(self.course_rel, f"<course{title}>{inner}</course>"):
            self.flaws.append(f"{self.course_rel} could not be written")
        self.course_root = Element("course", None, spec.display_name, [element for _, element in written])


# -- what the reader must return -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: str  # words the reader's message contains
    path: str  # the file it names


def expected_read(writer: Writer) -> tuple[list[tuple], list[Problem]]:
    """What ``read_olx`` must give for an exact export, by the rules in the reader's module docstring.

    Returns ``(type, id, display name, number of children)`` for every block in pre-order (as a
    lenient read returns them: a broken block skipped with its subtree), and the problems in the order
    the reader meets them (a strict read raises the first). Ids: a url_name, else the id derived from
    the display name, unless already claimed by a block of that type (claims are made child by child,
    each block's children before the walk goes down into them); then ``TYPE[_NAME]_HASH``. A pointer
    file is resolved once: a later pointer to it (not a cycle) adds nothing. An id is
    a compiled pattern where only its form is known (see :func:`matching`).
    """
    blocks: list[tuple] = []
    problems: list[Problem] = []
    used: set[tuple[str, str]] = {("course", "course")}  # the root's id
    resolved: set[str] = set()  # pointer files met (read or not): each is resolved once

    def claim(tag: str, wanted: str | None, parent_id, index: int):
        if wanted and ID_RE.fullmatch(wanted) and (tag, wanted) not in used:
            used.add((tag, wanted))
            return wanted
        name = wanted if wanted and ID_RE.fullmatch(wanted) else None
        stem = f"{tag}_{name}_" if name else f"{tag}_"
        if isinstance(parent_id, re.Pattern):  # the parent's own id is known only by its form
            return re.compile(re.escape(stem) + "[0-9a-f]{12}")
        digest = hashlib.sha1(f"{parent_id}/{tag}/{index}/{name or ''}".encode(), usedforsecurity=False).hexdigest()
        if (tag, stem + digest[:12]) in used:
            # Two parents of different types can share an id, and the hash does not name the parent's
            # type: the reader then tries further hashes. Some other id of this form.
            return re.compile(re.escape(stem) + "[0-9a-f]{12}")
        used.add((tag, stem + digest[:12]))
        return stem + digest[:12]

    def resolve(element: Element, parent_id: str, index: int, chain: tuple[str, ...]):
        if element.points_to is not None:
            rel = element.points_to
            if rel in chain:
                problems.append(Problem("pointer cycle", rel))
                return None
            if rel in resolved:  # read already: its block is placed (a warning), or it could not be read
                return None
            resolved.add(rel)
            definition = writer.files.get(rel)
            if definition is None:
                problems.append(Problem("dangling pointer", rel))
                return None
            return element.tag, claim(element.tag, element.url_name, parent_id, index), definition, chain + (rel,)
        wanted = element.url_name
        if wanted is None and element.display_name is not None:
            wanted = clean_id(element.display_name)
        return element.tag, claim(element.tag, wanted, parent_id, index), element, chain

    def visit(tag: str, block_id: str, definition: Element, chain: tuple[str, ...], depth: int) -> None:
        kids = []
        if definition.children and depth >= MAX_DEPTH:
            problems.append(Problem("nested deeper", chain[-1]))
        else:
            for index, child in enumerate(definition.children):
                kid = resolve(child, block_id, index, chain)
                if kid is not None:
                    kids.append(kid)
        blocks.append((tag, block_id, expected_text(definition.display_name), len(kids)))
        for kid in kids:
            visit(*kid, depth + 1)

    visit("course", "course", writer.course_root, (writer.course_rel,), 0)
    return blocks, problems


# -- what a valid course is ---------------------------------------------------------------------------------


def check_valid(course, blocks) -> None:
    """Keys well-formed and unique, blocks in pre-order consistent with parents, children and positions."""
    course_key = CourseKey.from_string(course.course_key)
    assert str(course_key) == course.course_key and course.org == course_key.org
    assert course.source_version.startswith("sha256:")
    assert blocks, "a course has at least its root"
    root = blocks[0]
    assert (root.block_type, root.block_id, root.parent, root.depth, root.position) == ("course", "course", None, 0, 0)
    by_key = {}
    for block in blocks:
        usage = UsageKey.from_string(block.usage_key)
        assert str(usage) == block.usage_key
        assert (usage.block_type, usage.block_id) == (block.block_type, block.block_id)
        assert str(usage.course_key) == course.course_key
        assert block.usage_key not in by_key, f"duplicate key {block.usage_key}"
        if block.parent is not None:
            parent = by_key[block.parent]  # parents come before their children
            assert parent.children[block.position] == block.usage_key
            assert block.depth == parent.depth + 1
        by_key[block.usage_key] = block
    order = []
    stack = [root.usage_key]
    while stack:  # the pre-order walk of the children lists gives back exactly the blocks, in order
        key = stack.pop()
        order.append(key)
        stack.extend(reversed(by_key[key].children))
    assert order == [b.usage_key for b in blocks]


@contextmanager
def quiet_reader():
    logger = logging.getLogger("event_sinks.courses.olx")
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def read_all(path, strict):
    """(course, blocks), or the CourseReadError raised; any other exception fails the test."""
    try:
        course = read_olx(path, strict=strict)
        return course, list(course.blocks())
    except CourseReadError as exc:
        assert str(exc)
        return exc


def refused(outcome) -> bool:
    return isinstance(outcome, CourseReadError)


def outline(outcome) -> list[tuple]:
    return [(b.block_type, b.block_id, b.display_name, len(b.children)) for b in outcome[1]]


def write_and_read(spec: Spec) -> tuple[Writer, object, object]:
    """Write ``spec`` as an export, read it leniently and strictly: (writer, lenient, strict)."""
    with tempfile.TemporaryDirectory(prefix="olx-prop-") as folder, quiet_reader():
        writer = Writer(Path(folder))
        writer.course(spec)
        lenient = read_all(folder, strict=False)
        strict = read_all(folder, strict=True)
    for outcome in (lenient, strict):
        if not refused(outcome):
            check_valid(*outcome)
    if not refused(strict):  # no problem: the same course both ways
        assert not refused(lenient)
        assert [b.usage_key for b in strict[1]] == [b.usage_key for b in lenient[1]]
    return writer, lenient, strict


def matching(expected: list[tuple], got: list[tuple]) -> list[tuple]:
    """``expected`` with each id given as a pattern replaced by the id read, where it matches."""
    out = list(expected)
    for i, (want, read) in enumerate(zip(expected, got, strict=False)):
        if isinstance(want[1], re.Pattern) and want[1].fullmatch(read[1]):
            out[i] = (want[0], read[1], *want[2:])
    return out


def check_against_model(writer: Writer, lenient, strict) -> list[Problem]:
    """An exact export reads as :func:`expected_read` says: leniently always, strictly unless a problem."""
    expected, problems = expected_read(writer)
    assert not refused(lenient), f"a lenient read refused an exact export: {lenient}"
    assert outline(lenient) == matching(expected, outline(lenient))
    if problems:
        assert refused(strict), f"a strict read accepted an export with {problems[0]}"
        assert problems[0].kind in strict.message and strict.path == problems[0].path, str(strict)
    else:
        assert not refused(strict), f"a valid export was refused: {strict}"
        assert outline(strict) == outline(lenient)
    return problems


@olx_settings()
@given(SPECS)
def test_random_exports_read_as_valid_courses_or_fail_cleanly(spec):
    writer, lenient, strict = write_and_read(spec)
    event(f"exact={writer.exact}, strict read {'refused' if refused(strict) else 'ok'}, "
          f"lenient read {'refused' if refused(lenient) else 'ok'}")
    event(f"blocks written: {len(list(walk_nodes(spec.children))) // 10 * 10}+")
    if writer.exact:
        problems = check_against_model(writer, lenient, strict)
        assert not problems, f"generator bug: an exact random export has {problems}"  # twists come below


# -- deliberate twists: cycles, dangling and shared pointers, a url_name used twice --------------------------

#: Each twist and its stated outcome (checked by test_twists_have_their_stated_outcome).
TWISTS = {
    "self-cycle": "a pointer container's own file holds a pointer back to that file: a strict read refuses "
                  "it ('pointer cycle', naming the file); a lenient read skips that pointer, keeps the rest",
    "ancestor-cycle": "a container below a pointer container (in its file or a file below) holds a pointer "
                      "back to the ancestor's file: refused or skipped as for self-cycle",
    "dangling": "a pointer whose file was never written: a strict read refuses it ('dangling pointer'); "
                "a lenient read skips that block and its subtree",
    "duplicate-inline": "an inline block reuses another block's url_name (same type): both are read; the one "
                        "claimed first keeps the url_name as id, the other gets TYPE_NAME_HASH",
    "shared-file": "a second pointer to an existing file, outside that block's subtree: one block, read once "
                   "(its file is its one definition, as Open edX imports it), under the first parent the walk "
                   "reaches that lists it; the other pointer is left out, with a warning, in both modes",
}


def paths(children, prefix=()):
    """(path, node) for every node, in pre-order; a path is the child indexes from the course down."""
    for i, node in enumerate(children):
        yield prefix + (i,), node
        yield from paths(node.children, prefix + (i,))


def _update(children: tuple, path: tuple, fn) -> tuple:
    node = children[path[0]]
    node = fn(node) if len(path) == 1 else replace(node, children=_update(node.children, path[1:], fn))
    return children[:path[0]] + (node,) + children[path[0] + 1:]


def node_at(spec: Spec, path: tuple) -> Node:
    node = None
    children = spec.children
    for i in path:
        node = children[i]
        children = node.children
    return node


def insert(spec: Spec, path: tuple, index: int, new: Node) -> Spec:
    """``spec`` with ``new`` as child number ``index`` of the container at ``path`` (``()``: the course)."""
    def add(kids):
        return kids[:index] + (new,) + kids[index:]

    if not path:
        return replace(spec, children=add(spec.children))
    return replace(spec, children=_update(spec.children, path, lambda node: replace(node, children=add(node.children))))


def apply_twist(spec: Spec, twist: str, data) -> tuple[Spec, Node]:
    """``spec`` with ``twist`` applied, and the block it is about (its final tag and url_name)."""
    containers_only = twist.endswith("cycle")
    # The anchor: a block made a pointer (or, for duplicate-inline, given a url_name), added if need be.
    candidates = [path for path, node in paths(spec.children) if node.tag in CONTAINERS or not containers_only]
    if not candidates:
        tag = data.draw(st.sampled_from(CONTAINERS if containers_only else CONTAINERS + LEAVES))
        spec = insert(spec, (), len(spec.children), Node(tag, True, "anchor", data.draw(VALID_TITLE)))
        candidates = [(len(spec.children) - 1,)]
    at = data.draw(st.sampled_from(candidates))

    def make_anchor(node):
        return replace(node, pointer=node.pointer or twist != "duplicate-inline", url_name=node.url_name or "anchor")

    spec = unique_url_names(replace(spec, children=_update(spec.children, at, make_anchor)))
    anchor = node_at(spec, at)
    back = Node(anchor.tag, True, anchor.url_name, None, file=False)  # a pointer tag to the anchor's file

    def place(paths_ok):
        where = data.draw(st.sampled_from(paths_ok))
        size = len(node_at(spec, where).children) if where else len(spec.children)
        return where, data.draw(st.integers(0, size))

    below = [path for path, node in paths(spec.children) if path[:len(at)] == at and node.tag in CONTAINERS]
    if twist == "self-cycle":
        spec = insert(spec, *place([at]), back)
    elif twist == "ancestor-cycle":
        deeper = [path for path in below if path != at]
        if deeper:
            spec = insert(spec, *place(deeper), back)
        else:
            spec = insert(spec, *place([at]), Node(data.draw(st.sampled_from(CONTAINERS)), False, None, None, (back,)))
    elif twist == "dangling":
        spec = replace(spec, children=_update(spec.children, at, lambda node: replace(node, file=False)))
    elif twist == "duplicate-inline":
        anywhere = [()] + [path for path, node in paths(spec.children) if node.tag in CONTAINERS]
        spec = insert(spec, *place(anywhere), Node(anchor.tag, False, anchor.url_name, data.draw(VALID_TITLE)))
    else:
        assert twist == "shared-file"
        outside = [()] + [path for path, node in paths(spec.children)
                          if node.tag in CONTAINERS and path[:len(at)] != at]
        spec = insert(spec, *place(outside), back)
    return spec, anchor


@pytest.mark.parametrize("twist", sorted(TWISTS))
@olx_settings(share=0.5)
@given(spec=EXACT_SPECS, data=st.data())
def test_twists_have_their_stated_outcome(twist, spec, data):
    spec, anchor = apply_twist(spec, twist, data)
    writer, lenient, strict = write_and_read(spec)
    assert writer.exact, writer.flaws  # every name valid: only the structure is hostile
    problems = check_against_model(writer, lenient, strict)
    event(f"anchor: {'pointer ' if anchor.pointer else ''}{anchor.tag}")
    tag, name = anchor.tag, anchor.url_name
    rel = f"{tag}/{name}.xml"
    read = outline(lenient)
    fallback = re.compile(re.escape(f"{tag}_{name}_") + "[0-9a-f]{12}")
    if twist in ("self-cycle", "ancestor-cycle"):
        assert problems == [Problem("pointer cycle", rel)]
        assert refused(strict) and "pointer cycle" in strict.message and strict.path == rel
        assert sum(1 for block in read if block[:2] == (tag, name)) == 1  # the block, read once
    elif twist == "dangling":
        assert problems == [Problem("dangling pointer", rel)]
        assert refused(strict) and "dangling pointer" in strict.message and strict.path == rel
        assert not any(block[0] == tag and (block[1] == name or fallback.fullmatch(block[1])) for block in read)
    else:
        assert not problems and not refused(strict), f"{twist}: {strict}"
        same = [block for block in read if block[0] == tag and (block[1] == name or fallback.fullmatch(block[1]))]
        if twist == "shared-file":
            assert [block[1] for block in same] == [name]  # one definition, one block
        else:
            assert len(same) == 2 and sorted(bool(fallback.fullmatch(block[1])) for block in same) == [False, True]


@pytest.mark.parametrize("run", DOT_RUNS)
def test_a_run_named_dot_or_dot_dot_reads_strictly(tmp_path, run):
    """Found by the wide search: a valid run ('.' and '..' are valid key parts) and no policy file at all."""
    (tmp_path / "course.xml").write_text(f'<course url_name="{run}" org="O" course="C"/>', encoding="utf-8")
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / f"{run}.xml").write_text('<course><chapter display_name="c"/></course>', encoding="utf-8")
    with quiet_reader():
        assert [b.block_id for b in read_olx(tmp_path).blocks()] == ["course", "c"]  # lenient: read, warned
        course = read_olx(tmp_path, strict=True)  # once refused: "policies/./policy.json: unsafe path"
    assert course.course_key == f"course-v1:O+C+{run}"
    assert [b.block_id for b in course.blocks()] == ["course", "c"]


# -- bytes that are not UTF-8, declared encodings ------------------------------------------------------------

BAD_UTF8 = {
    "invalid-start-byte": b"\xff\xfe",
    "truncated-sequence": b"\xe6\x97",
    "overlong-slash": b"\xc0\xaf",
    "encoded-surrogate": b"\xed\xa0\x80",
    "beyond-u10ffff": b"\xf4\x90\x80\x80",
}


def chapter_with(tiny: Path, raw: bytes) -> Path:
    (tiny / "chapter" / "ch1.xml").write_bytes(b'<chapter display_name="bad ' + raw + b'">\n'
                                               b'  <sequential url_name="seq1"/>\n</chapter>\n')
    return tiny


@pytest.mark.parametrize("raw", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_invalid_utf8_in_a_block_file_is_a_located_course_read_error(tiny, caplog, raw):
    path = chapter_with(tiny, raw)
    with pytest.raises(CourseReadError) as error:
        list(read_olx(path, strict=True).blocks())
    assert (error.value.path, error.value.line) == ("chapter/ch1.xml", 1) and "malformed XML" in str(error.value)
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        ids = {b.block_id for b in read_olx(path).blocks()}
    assert "ch1" not in ids and "seq1" not in ids and "Inline_chapter" in ids  # the rest of the course is read
    assert "chapter/ch1.xml:1" in caplog.text


@pytest.mark.parametrize("raw", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_invalid_utf8_in_course_xml_stops_the_read(tiny, raw):
    (tiny / "course.xml").write_bytes(b'<course url_name="T1" org="Tiny' + raw + b'X" course="Tiny"/>')
    with pytest.raises(CourseReadError) as error:
        read_olx(tiny)
    assert error.value.path == "course.xml"


def test_invalid_utf8_in_the_policy_is_reported(tiny, caplog):
    (tiny / "policies" / "T1" / "policy.json").write_bytes(b'{"course/T1": {"display_name": "\xff"}}')
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        course = read_olx(tiny)
    assert course.display_name == "Tiny course" and "policies/T1/policy.json" in caplog.text  # the XML's name
    with pytest.raises(CourseReadError, match="policy"):
        read_olx(tiny, strict=True)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "windows-1252", "KOI8-R", "UTF-16"])
def test_declared_single_byte_and_utf16_encodings_are_read(tiny, encoding):
    title = {"KOI8-R": "Глава", "UTF-16": "Ch\xe2teau 😀"}.get(encoding, "Ch\xe2teau")
    xml = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
           f'<chapter display_name="{title}"><sequential url_name="seq1"/></chapter>')
    (tiny / "chapter" / "ch1.xml").write_bytes(xml.encode(encoding))
    blocks = {b.block_id: b for b in read_olx(tiny, strict=True).blocks()}
    assert blocks["ch1"].display_name == title and "p1" in blocks


#: Encodings the XML parser cannot use: unknown to Python, multi-byte, or not text encodings at all.
UNUSABLE_ENCODINGS = ["x-no-such", "Shift_JIS", "UTF-7", "rot13", "idna", "punycode"]


@pytest.mark.parametrize("encoding", UNUSABLE_ENCODINGS)
def test_an_unusable_declared_encoding_in_a_block_file_is_a_located_course_read_error(tiny, caplog, encoding):
    (tiny / "chapter" / "ch1.xml").write_bytes(
        f'<?xml version="1.0" encoding="{encoding}"?>\n<chapter display_name="x"><sequential url_name="seq1"/>'
        '</chapter>'.encode("ascii"))
    with pytest.raises(CourseReadError) as error:
        list(read_olx(tiny, strict=True).blocks())
    assert error.value.path == "chapter/ch1.xml"
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        ids = {b.block_id for b in read_olx(tiny).blocks()}  # lenient: that block is skipped, the rest read
    assert "ch1" not in ids and "Inline_chapter" in ids and "chapter/ch1.xml" in caplog.text


@pytest.mark.parametrize("encoding", UNUSABLE_ENCODINGS)
def test_an_unusable_declared_encoding_in_course_xml_is_a_course_read_error(tiny, encoding):
    (tiny / "course.xml").write_bytes(
        f'<?xml version="1.0" encoding="{encoding}"?>\n<course url_name="T1" org="TinyX" course="Tiny"/>'.encode())
    with pytest.raises(CourseReadError) as error:
        read_olx(tiny)
    assert error.value.path == "course.xml"


def test_one_unreadable_export_does_not_stop_a_folder_of_exports(tmp_path, caplog):
    from event_sinks.courses.sources import OlxSource

    from .conftest import TINY, write_tree

    write_tree(tmp_path / "exports" / "good", TINY)
    bad = write_tree(tmp_path / "exports" / "bad", {**TINY, "course.xml": '<course url_name="T2" org="X" course="Y"/>'})
    (bad / "course.xml").write_bytes(b'<?xml version="1.0" encoding="x-no-such"?>\n'
                                     b'<course url_name="T2" org="X" course="Y"/>')
    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        keys = list(OlxSource([tmp_path / "exports"]).keys())  # what dump_sink --all --olx iterates
    assert keys == ["course-v1:TinyX+Tiny+T1"] and "bad" in caplog.text


def test_a_file_name_that_is_not_utf8_does_not_break_the_read(tiny):
    before = read_olx(tiny).source_version
    (tiny / os.fsdecode(b"problem/p\xff.xml")).write_bytes(b"<problem/>")
    course = read_olx(tiny, strict=True)
    assert len(list(course.blocks())) == 10
    assert course.source_version != before and course.source_version == read_olx(tiny).source_version


# -- huge attributes: read with bounded memory, or refused before reading -------------------------------------


def peak_while(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_multi_megabyte_attribute_is_read_with_bounded_memory(tiny):
    title = "é\"<>&😀" * 400_000  # 2.8 million characters, 6 MB of UTF-8, 9 MB as escaped XML
    xml = f"<chapter display_name={quoteattr(title)}><sequential url_name=\"seq1\"/></chapter>"
    (tiny / "chapter" / "ch1.xml").write_text(xml, encoding="utf-8")
    size = (tiny / "chapter" / "ch1.xml").stat().st_size
    blocks, peak = peak_while(lambda: {b.block_id: b for b in read_olx(tiny, strict=True).blocks()})
    assert blocks["ch1"].display_name == title and "seq1" in blocks
    # The title is held as a str of 4-byte characters (11 MB) by the parser's attributes, the block and
    # this test: memory follows the attribute, and the per-file cap (16 MB) bounds it.
    assert peak < 5 * size, f"peak {peak} bytes for a {size}-byte file"
    print(f"\n[reliability] OLX: a {size / 1e6:.1f} MB file with a {len(title):,}-character attribute read "
          f"with a peak of {peak / 1e6:.1f} MB")


def test_an_attribute_over_the_file_cap_is_refused_before_it_is_read(tiny, caplog):
    from event_sinks.courses import olx

    big = olx.DEFAULT_MAX_FILE_BYTES + 1024
    with open(tiny / "chapter" / "ch1.xml", "wb") as handle:
        handle.write(b'<chapter display_name="')
        handle.write(b"x" * big)
        handle.write(b'"/>')
    error, peak = peak_while(lambda: read_all(tiny, strict=True))
    assert isinstance(error, CourseReadError) and error.path == "chapter/ch1.xml" and "cap" in str(error)
    # Refused on its size before parsing; only the source-version hash reads it, in 1 MiB chunks.
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {big}-byte file"
    print(f"\n[reliability] OLX: a {big / 1e6:.1f} MB file over the cap refused with a peak of {peak / 1e6:.1f} MB")
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        ids = {b.block_id for b in read_olx(tiny).blocks()}
    assert "ch1" not in ids and "Inline_chapter" in ids and "chapter/ch1.xml" in caplog.text
