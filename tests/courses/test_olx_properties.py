"""Property tests of the OLX reader: random course trees with random (often hostile) names.

Hypothesis writes random exports -- chapter/sequential/vertical/html/problem/video nested at random,
pointer tags and inline definitions, titles and url_names with quotes, ``<>&``, control characters,
4-byte characters, very long strings -- and ``read_olx`` must either return a valid course or raise
``CourseReadError``; never another exception. When every name is valid, the course read back is
exactly the course written. Also here: bytes that are not UTF-8, declared encodings, and
multi-megabyte attributes (read with bounded memory, or refused before being read).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey, UsageKey

from event_sinks.courses import CourseReadError, read_olx

CONTAINERS = ("chapter", "sequential", "vertical")
LEAVES = ("html", "problem", "video")
#: What opaque-keys accepts in a block id (Locator.ALLOWED_ID_CHARS), and the subset this test writes
#: as a plain file name (no ':', which maps to a sub-folder).
ID_RE = re.compile(r"[\w\-~.:]+")
PLAIN_ID_RE = re.compile(r"[\w\-~.]+")
#: XML 1.0's Char production: anything else makes the file malformed, even as a character reference.
XML_CHAR_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Node:
    tag: str
    pointer: bool
    url_name: str | None
    display_name: str | None
    children: tuple = ()


@dataclass(frozen=True)
class Spec:
    org: str
    number: str
    run: str
    display_name: str | None
    children: tuple


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
XML_TEXT = st.one_of(  # hostile, but every character is allowed in XML
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    st.lists(PIECES, max_size=8).map("".join),
    st.just("é\"<>&'😀" * 500),
)


def mostly(common, rare, one_in: int):
    """``common``, and ``rare`` about once in ``one_in`` draws."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else common)


TEXT = mostly(XML_TEXT, RAW_TEXT, 8)
ID_CHARS = st.characters(whitelist_categories=("Ll", "Lu", "Lo", "Nd"), whitelist_characters="_-.~")
CLEAN_ID = st.text(ID_CHARS, min_size=1, max_size=20)
URL_NAME = mostly(CLEAN_ID, st.one_of(TEXT, st.just("x" * 300), CLEAN_ID.map(lambda s: s + ":" + s)), 6)
TITLE = st.one_of(st.none(), TEXT)


NO_CHILDREN = st.just(())


def nodes(tags, children=NO_CHILDREN):
    return st.builds(Node, tag=st.sampled_from(tags), pointer=st.booleans(), url_name=st.one_of(st.none(), URL_NAME),
                     display_name=TITLE, children=children)


TREES = st.recursive(
    nodes(LEAVES),
    lambda kids: nodes(CONTAINERS, st.lists(kids, max_size=4).map(tuple)),
    max_leaves=24,
)
KEY_PART = mostly(CLEAN_ID, TEXT, 12)
SPECS = st.builds(Spec, org=KEY_PART, number=KEY_PART, run=KEY_PART, display_name=TITLE,
                  children=st.lists(TREES, max_size=5).map(tuple))


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


class Writer:
    """Writes a Spec as an OLX export; ``exact`` stays True while everything written is valid."""

    def __init__(self, root: Path):
        self.root = root
        self.exact = True
        self.pointers: set[str] = set()
        self.expected: list[tuple] = []  # (tag, display name as read, number of children) in pre-order

    def check_text(self, text: str | None) -> None:
        if text is not None and XML_CHAR_RE.search(text):
            self.exact = False  # the file is malformed: the reader must refuse it

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

    def attributes(self, node: Node) -> str:
        attrs = []
        if node.url_name is not None:
            attrs.append(f"url_name={quoteattr(node.url_name)}")
        if node.display_name is not None:
            attrs.append(f"display_name={quoteattr(node.display_name)}")
        if node.url_name is not None and node.display_name is None and not node.children:
            attrs.append('inline="yes"')  # a lone url_name would make it a pointer tag
        return " ".join(attrs)

    def element(self, node: Node) -> str:
        self.check_text(node.url_name)
        self.check_text(node.display_name)
        if node.url_name is not None and not (ID_RE.fullmatch(node.url_name) and PLAIN_ID_RE.fullmatch(node.url_name)
                                              and len(node.url_name.encode()) <= 200):
            self.exact = False  # not a valid block id (or not a plain file name): skipped or refused
        pointer = node.pointer and node.url_name is not None
        rel = f"{node.tag}/{(node.url_name or '').replace(':', '/')}.xml"
        if pointer and rel in self.pointers:
            pointer = False  # two pointers to one file would be one definition: keep this one inline
        self.expected.append((node.tag, expected_text(node.display_name), len(node.children)))
        inner = "".join(self.element(child) for child in node.children)
        if node.tag == "problem" and not inner:
            inner = "<p>2 &lt; 3 &amp; 4 &gt; 1</p>"
        if not pointer:
            return f"<{node.tag} {self.attributes(node)}>{inner}</{node.tag}>"
        self.pointers.add(rel)
        title = "" if node.display_name is None else f" display_name={quoteattr(node.display_name)}"
        if not self.write_file(rel, f"<{node.tag}{title}>{inner}</{node.tag}>"):
            self.exact = False  # a dangling pointer
        return f"<{node.tag} url_name={quoteattr(node.url_name)}/>"

    def course(self, spec: Spec) -> None:
        for part in (spec.org, spec.number, spec.run):
            self.check_text(part)
            if not PLAIN_ID_RE.fullmatch(part):
                self.exact = False
        self.check_text(spec.display_name)
        self.expected.append(("course", expected_text(spec.display_name), len(spec.children)))
        inner = "".join(self.element(child) for child in spec.children)
        title = "" if spec.display_name is None else f" display_name={quoteattr(spec.display_name)}"
        self.write_file("course.xml", f"<course url_name={quoteattr(spec.run)} org={quoteattr(spec.org)} "
                                      f"course={quoteattr(spec.number)}/>")
        if not self.write_file(f"course/{spec.run.replace(':', '/')}.xml", f"<course{title}>{inner}</course>"):
            self.exact = False


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


@settings(max_examples=int(os.environ.get("OLX_EXAMPLES", 50)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(SPECS)
def test_random_exports_read_as_valid_courses_or_fail_cleanly(spec):
    with tempfile.TemporaryDirectory(prefix="olx-prop-") as folder, quiet_reader():
        writer = Writer(Path(folder))
        writer.course(spec)
        outcomes = {strict: read_all(folder, strict) for strict in (False, True)}
    for outcome in outcomes.values():
        if not isinstance(outcome, CourseReadError):
            check_valid(*outcome)
    lenient, strict = outcomes[False], outcomes[True]
    event(f"exact={writer.exact}, strict read {'refused' if isinstance(strict, CourseReadError) else 'ok'}, "
          f"lenient read {'refused' if isinstance(lenient, CourseReadError) else 'ok'}")
    event(f"blocks written: {len(writer.expected) // 10 * 10}+")
    if not isinstance(strict, CourseReadError):
        assert not isinstance(lenient, CourseReadError)
        assert [b.usage_key for b in strict[1]] == [b.usage_key for b in lenient[1]]  # no problem, same course
    if writer.exact:
        assert not isinstance(strict, CourseReadError), f"a valid export was refused: {strict}"
        got = [(b.block_type, b.display_name, len(b.children)) for b in strict[1]]
        assert got == writer.expected


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
    from event_sinks.sinks.course_source import OlxSource

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
