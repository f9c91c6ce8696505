"""Hostile inputs for the fault campaign (``tests/campaign``), drawn from a ``random.Random``.

Every generator draws from the generator it is given and from nothing else, so one seed gives the same
inputs on every run and every machine. What each one returns says, besides the input, what a refusal of
it must name (``culprits``): the file, key, option, setting or statement at fault.

* :func:`olx_export` -- a small OLX course (pointer files and inline blocks, hostile titles) with some of
  the faults real exports carry: a file referenced twice, cycles, deep nesting, huge attributes, bad
  encodings, bad XML, symbolic links, FIFOs, missing files, bad dates, bad policies, bad course keys;
  written as a folder, a tarball or a folder of exports;
* :func:`hostile_tarball` -- the same course as a tarball, torn, flipped, or with hostile headers and
  members (header bombs, chains of headers, sparse, escaping and link members);
* :func:`store_course` -- a stand-in modulestore course with cycles, shared blocks, deep chains;
* :func:`hostile_sql` -- statements ``sink_query`` must refuse (writes, ``INTO OUTFILE``, table functions
  that leave the engine, several statements), disguised, and reads it must run;
* :func:`bad_setting` -- an ``EVENT_SINKS`` key and a value its declaration refuses.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import os
import random
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

#: Titles with what breaks naive code: markup, quotes, escapes, SQL, parameter look-alikes, 4-byte and
#: right-to-left characters, empty and long values.
TITLES = [
    "Intro", "Q&A <b>bold</b>", 'say "hi"', "it's", "naïve café", "emoji 🎓 𝄞", "tab\there", "back\\slash\\",
    "'; DROP TABLE course_outline; --", "{x:String} $1 ? %s", "\u202eRTL override", "\ufeffBOM", "", " ",
    "line\nbreak", "x" * 300, "`backtick` /* c */", "\\N", "控制 字符",
]
LEAF_TAGS = ("html", "problem", "video")
LEVELS = ("chapter", "sequential", "vertical")
LEAKED = "LEAKED-OUTSIDE-THE-EXPORT"
#: A billion-laughs entity bomb (small: the reader refuses any DTD).
BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n<{tag} display_name="&lol3;"/>')
EXTERNAL_DTD = '<?xml version="1.0"?>\n<!DOCTYPE {tag} SYSTEM "http://127.0.0.1:9/evil.dtd">\n<{tag}/>'
#: Byte sequences that are not UTF-8: a bad start byte, a truncated sequence, an overlong encoding, an
#: encoded surrogate, a code point above U+10FFFF, a lone continuation byte.
NOT_UTF8 = [b"\xff", b"\xc3(", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"]
#: XML declarations: encodings the parser cannot use, non-text codecs, lies, and some that are fine.
DECLARED = ["x-no-such", "rot13", "utf-16", "UTF-7", "Shift_JIS", "cp037", "utf-32", "idna", "punycode", "latin-1",
            "koi8-r", "", "utf-8\x00"]
BAD_DATES = ["1e400", "99999-12-31T00:00", "2024-02-30", "garbage", "-1", "NaN", "", "2024-01-01T00:00:00+99:00",
             "1" * 400, "0000-00-00", "inf", "2024-01-01T25:61", "\u0663\u0663"]
BAD_FLAGS = ["maybe", "2", "", "nan", "TRUE ", "[]"]


@dataclass
class Node:
    """One file of the export that holds one block: its tag, attributes and children (as XML)."""

    tag: str
    attrs: dict[str, str]
    children: list[str] = field(default_factory=list)
    body: str = ""

    def xml(self) -> str:
        attrs = "".join(f" {name}={quoteattr(value)}" for name, value in self.attrs.items())
        return f"<{self.tag}{attrs}>{''.join(self.children)}{self.body}</{self.tag}>"


@dataclass
class Export:
    """A generated export: where it is, the key it declares, what a refusal must name, what was done to it."""

    path: Path
    key: str | None
    culprits: set[str]
    faults: list[str]
    #: FIFOs in the export (a read that opens one waits for a writer: the campaign unblocks it on a hang)
    fifos: list[Path] = field(default_factory=list)
    #: paths outside the export that nothing may create (tar members that try to escape)
    forbidden: list[Path] = field(default_factory=list)
    #: a clean export is one whose every block must be read (the dump must succeed)
    clean: bool = False


class Tree:
    """An OLX course being generated: block files as :class:`Node`, other files as bytes."""

    def __init__(self, rng: random.Random, org: str, number: str, run: str = "R"):
        self.rng = rng
        self.org, self.number, self.run = org, number, run
        self.nodes: dict[str, Node] = {}
        self.raw: dict[str, bytes] = {}
        self.names = itertools.count()
        self.raw["course.xml"] = f'<course url_name="{run}" org="{org}" course="{number}"/>'.encode()
        root = Node("course", {"display_name": f"Campaign {number}: {rng.choice(TITLES)}",
                               "start": "2024-01-01T00:00:00Z"})
        self.nodes[f"course/{run}.xml"] = root
        for _ in range(rng.randint(1, 3)):
            root.children.append(self._block(0))
        if rng.random() < 0.6:
            policy = {f"course/{run}": {"display_name": f"Campaign {number} (policy)"}}
            self.raw[f"policies/{run}/policy.json"] = json.dumps(policy).encode()

    @property
    def key(self) -> str:
        return f"course-v1:{self.org}+{self.number}+{self.run}"

    def _block(self, level: int) -> str:
        """The XML of a new block at ``level`` (0: chapter ... 3: a leaf) and its subtree, as a child."""
        rng = self.rng
        tag = LEVELS[level] if level < len(LEVELS) else rng.choice(LEAF_TAGS)
        title = rng.choice(TITLES)
        node = Node(tag, {"display_name": title} if rng.random() < 0.85 else {})
        if level < len(LEVELS):
            for _ in range(rng.randint(1, 2 if level < 2 else 3)):
                node.children.append(self._block(level + 1))
        elif tag != "video":
            node.body = "<p>some text &amp; more</p>" if tag == "html" else "<p>What?</p>"
        if rng.random() < 0.55:  # a pointer to a file of its own
            name = f"{tag[:2]}{next(self.names)}"
            self.nodes[f"{tag}/{name}.xml"] = node
            return f'<{tag} url_name="{name}"/>'
        return node.xml()

    def files_of(self, *tags: str) -> list[str]:
        """The block files whose block is one of ``tags`` (all block files when none given)."""
        return [rel for rel, node in self.nodes.items() if not tags or node.tag in tags]

    def containers(self) -> list[str]:
        return self.files_of("course", *LEVELS)

    def pick(self, rng: random.Random, *groups: list[str]) -> str | None:
        """One file of the first group that has any; None when an earlier fault left none (not applied then)."""
        return next((rng.choice(group) for group in groups if group), None)

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        files = {rel: node.xml().encode() for rel, node in self.nodes.items()}
        files.update(self.raw)
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root


# -- faults of an export's files --------------------------------------------------------------------------


def _pointer(rel: str) -> str:
    tag, _, name = rel.partition("/")
    return f'<{tag} url_name="{name[:-4]}"/>'


def _parent_tag(tag: str) -> str:
    if tag == "chapter":
        return "course"
    if tag in LEVELS:
        return LEVELS[LEVELS.index(tag) - 1]
    return "vertical"


def fault_double_reference(tree: Tree, rng: random.Random) -> set[str]:
    """A block file named by a second pointer (another parent, or the same one), or a chain of files that
    each name the next twice (which once grew exponentially)."""
    if rng.random() < 0.3:
        depth = rng.randint(5, 14)
        chain = [f"vertical/twice{i}.xml" for i in range(depth)]
        for i, rel in enumerate(chain):
            node = Node("vertical", {"display_name": f"twice {i}"})
            if i + 1 < depth:
                node.children = [_pointer(chain[i + 1])] * 2
            tree.nodes[rel] = node
        host = tree.pick(rng, tree.files_of("sequential"), tree.files_of("course"))
        if host is None:
            return set()
        tree.nodes[host].children.append(_pointer(chain[0]) if tree.nodes[host].tag == "sequential"
                                         else f"<chapter><sequential>{_pointer(chain[0])}</sequential></chapter>")
        return set(chain) | {host}
    candidates = [rel for rel in tree.files_of() if tree.nodes[rel].tag != "course"]
    if not candidates:
        return set()
    target = rng.choice(candidates)
    parents = tree.files_of(_parent_tag(tree.nodes[target].tag))
    if not parents:
        return set()
    parent = rng.choice(parents)
    tree.nodes[parent].children.insert(rng.randint(0, len(tree.nodes[parent].children)), _pointer(target))
    return {target, parent}


def fault_cycle(tree: Tree, rng: random.Random) -> set[str]:
    """A pointer back to the file itself, or two files that name each other."""
    rel = f"vertical/cyc{next(tree.names)}.xml"
    other = f"vertical/cyc{next(tree.names)}.xml"
    if rng.random() < 0.5:
        tree.nodes[rel] = Node("vertical", {"display_name": "self"}, [_pointer(rel)])
        culprits = {rel}
    else:
        tree.nodes[rel] = Node("vertical", {"display_name": "a"}, [_pointer(other)])
        tree.nodes[other] = Node("vertical", {"display_name": "b"}, [_pointer(rel)])
        culprits = {rel, other}
    host = tree.pick(rng, tree.files_of("sequential"), tree.files_of("vertical"), ["course/" + tree.run + ".xml"])
    if host is None:
        return set()
    tree.nodes[host].children.append(_pointer(rel) if tree.nodes[host].tag in ("sequential", "vertical")
                                     else f"<chapter><sequential>{_pointer(rel)}</sequential></chapter>")
    return culprits | {host}


def fault_deep(tree: Tree, rng: random.Random) -> set[str]:
    """Blocks nested around and past the depth cap (32), inline or through pointer files, or XML nested
    past the parser's cap (256)."""
    depth = rng.choice([20, 28, 29, 30, 31, 40, 300, 3000])
    host = tree.pick(rng, tree.files_of("vertical"), tree.containers())
    if host is None:
        return set()
    if depth <= 40 and rng.random() < 0.5:
        chain = [f"vertical/deep{i}.xml" for i in range(depth)]
        for i, rel in enumerate(chain):
            tree.nodes[rel] = Node("vertical", {"display_name": f"level {i}"},
                                   [_pointer(chain[i + 1])] if i + 1 < depth else [])
        tree.nodes[host].children.append(_pointer(chain[0]))
        return set(chain) | {host}
    tree.nodes[host].children.append("<vertical>" * depth + "</vertical>" * depth)
    return {host}


def fault_huge_attribute(tree: Tree, rng: random.Random) -> set[str]:
    """A very long title (4-byte characters among them), thousands of attributes, or a long body."""
    rel = tree.pick(rng, tree.files_of())
    if rel is None:
        return set()
    node = tree.nodes[rel]
    kind = rng.choice(["title", "attributes", "body"])
    if kind == "title":
        node.attrs["display_name"] = ("a𝄞é<>&\"'" * rng.choice([1_000, 20_000, 60_000]))
    elif kind == "attributes":
        node.attrs.update({f"a{i}": "v" * 10 for i in range(rng.choice([1_000, 10_000]))})
    else:
        node.body += "<p>" + "text " * rng.choice([10_000, 200_000]) + "</p>"
    return {rel}


def fault_oversized_file(tree: Tree, rng: random.Random) -> set[str]:
    """A block file over the 16 MB per-file cap."""
    rel = tree.pick(rng, tree.files_of(*LEAF_TAGS), tree.files_of())
    if rel is None:
        return set()
    tree.nodes[rel].body += "<!--" + "x" * (17 * 1024 * 1024) + "-->"
    return {rel}


def _file_bytes(tree: Tree, rel: str) -> bytes:
    return tree.raw[rel] if rel in tree.raw else tree.nodes[rel].xml().encode()


def _replace(tree: Tree, rel: str, data: bytes) -> None:
    tree.nodes.pop(rel, None)
    tree.raw[rel] = data


def fault_bad_encoding(tree: Tree, rng: random.Random) -> set[str]:
    """Bytes that are not UTF-8 inside a file, or an XML declaration naming an unusable or wrong encoding,
    or a file in another encoding than it says."""
    rel = rng.choice([*tree.files_of(), "course.xml", *[r for r in tree.raw if r.endswith(".json")]])
    data = _file_bytes(tree, rel)
    kind = rng.choice(["bytes", "declared", "utf16", "latin1"])
    if kind == "bytes" or rel.endswith(".json"):
        at = data.find(b'"', data.find(b"=") + 1) + 1 if b"=" in data else rng.randint(0, len(data))
        data = data[:at] + rng.choice(NOT_UTF8) + data[at:]
    elif kind == "declared":
        data = f'<?xml version="1.0" encoding="{rng.choice(DECLARED)}"?>\n'.encode("utf-8", "replace") + data
    elif kind == "utf16":
        data = '<?xml version="1.0" encoding="UTF-16"?>\n'.encode("utf-16") + data.decode().encode("utf-16-le")
    else:
        data = data.decode().encode("latin-1", "replace") + "<!-- é -->".encode("latin-1")
    _replace(tree, rel, data)
    return {rel}


def fault_bad_xml(tree: Tree, rng: random.Random) -> set[str]:
    """Truncated, garbled, empty or ill-formed XML, a DTD (entity bomb, external), forbidden characters."""
    rel = rng.choice([*tree.files_of(), "course.xml"])
    tag = tree.nodes[rel].tag if rel in tree.nodes else "course"
    data = _file_bytes(tree, rel)
    kind = rng.choice(["truncated", "garbage", "empty", "unclosed", "mismatched", "two-roots", "bomb", "external",
                       "nul", "entity", "charref", "unquoted", "text"])
    data = {
        "truncated": lambda: data[: rng.randint(1, max(1, len(data) - 1))],
        "garbage": lambda: rng.randbytes(rng.randint(1, 300)),
        "empty": lambda: b"",
        "unclosed": lambda: f"<{tag} display_name='x'><p>".encode(),
        "mismatched": lambda: f"<{tag}><a></b></{tag}>".encode(),
        "two-roots": lambda: data + data,
        "bomb": lambda: BOMB.format(tag=tag).encode(),
        "external": lambda: EXTERNAL_DTD.format(tag=tag).encode(),
        "nul": lambda: data.replace(b">", b">\x00", 1),
        "entity": lambda: f"<{tag} display_name='&nosuch;'/>".encode(),
        "charref": lambda: f"<{tag} display_name='{rng.choice(['&#0;', '&#xD800;', '&#x1;', '&#x110000;'])}'/>"
                           .encode(),
        "unquoted": lambda: f"<{tag} display_name=x/>".encode(),
        "text": lambda: b"just text, no markup",
    }[kind]()
    _replace(tree, rel, data)
    return {rel}


def fault_bad_attribute(tree: Tree, rng: random.Random) -> set[str]:
    """Dates that cannot be dates (out of range, garbage), flags that are not booleans, odd formats."""
    rel = tree.pick(rng, tree.files_of())
    if rel is None:
        return set()
    node = tree.nodes[rel]
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(["start", "due", "graded", "visible_to_staff_only", "hide_from_toc", "format",
                           "max_attempts", "weight"])
        node.attrs[name] = rng.choice(BAD_DATES if name in ("start", "due") else BAD_FLAGS)
    return {rel}


def fault_url_name(tree: Tree, rng: random.Random) -> set[str]:
    """A pointer whose url_name leaves the export, is empty, too long for a file name, or odd."""
    host = tree.pick(rng, tree.containers())
    if host is None:
        return set()
    name = rng.choice(["../../outside", "..:..:outside", "/etc/passwd", "", " ", "a b", "x" * 300, ":", "con",
                       "a%2Fb", "é", ".", ".."])
    tag = "chapter" if tree.nodes[host].tag == "course" else LEVELS[min(2, LEVELS.index(tree.nodes[host].tag) + 1)] \
        if tree.nodes[host].tag in LEVELS else "chapter"
    if tree.nodes[host].tag == "vertical":
        tag = rng.choice(LEAF_TAGS)
    tree.nodes[host].children.append(f"<{tag} url_name={quoteattr(name)}/>")
    return {host, f"{tag}/"}


def fault_policy(tree: Tree, rng: random.Random) -> set[str]:
    """policy.json (or grading_policy.json) that is not JSON, nested too deeply, of the wrong shape, with
    out-of-range dates or wrong types."""
    which = rng.choice(["policy.json", "policy.json", "grading_policy.json"])
    rel = f"policies/{tree.run}/{which}"
    entry = f"course/{tree.run}"
    data = rng.choice([
        b"{not json", b"", b"[" * 100_000 + b"]" * 100_000, b"[]", json.dumps({entry: "x"}).encode(),
        json.dumps({entry: {"start": "1e400"}}).encode(), json.dumps({entry: {"display_name": 123}}).encode(),
        json.dumps({entry: {"display_name": None}}).encode(), b'{"course/R": {"display_name": NaN}}',
        json.dumps({entry: {"display_name": "\ud800"}}).encode("utf-8", "surrogatepass"),
        b'{"a": 1, "a": 2}', b"\xff\xfe{}", json.dumps({entry: {"due": "99999-01-01"}}).encode(),
        json.dumps({"GRADER": "x" * 100}).encode(),
    ])
    tree.raw[rel] = data
    return {rel, which}


def fault_course_xml(tree: Tree, rng: random.Random) -> set[str]:
    """course.xml declaring a key that cannot be one, naming a missing course file, or not a course."""
    kind = rng.choice(["org", "course", "url_name", "missing-file", "not-course", "no-attributes", "long"])
    attrs = {"url_name": tree.run, "org": tree.org, "course": tree.number}
    if kind in ("org", "course", "url_name"):
        attrs[kind] = rng.choice(["a b", "", "x/y", "a+b", "Ünï", "a:b", "\u202e", "a\tb"])
    elif kind == "missing-file":
        attrs["url_name"] = "NoSuchRun"
    elif kind == "long":
        attrs["org"] = "O" * rng.choice([300, 5000])
    if kind == "not-course":
        data = f'<chapter url_name="{tree.run}" org="{tree.org}" course="{tree.number}"/>'
    elif kind == "no-attributes":
        data = "<course/>"
    else:
        data = "<course" + "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"
    tree.raw["course.xml"] = data.encode()
    return {"course.xml", f"course/{attrs['url_name']}.xml"}


def fault_nested_course(tree: Tree, rng: random.Random) -> set[str]:
    """An inline ``<course>`` inside a chapter (shows one location twice if taken for the root)."""
    host = tree.pick(rng, tree.files_of("chapter", "sequential"), tree.containers())
    if host is None:
        return set()
    tree.nodes[host].children.append(f'<course url_name="{tree.run}" display_name="nested"/>')
    return {host}


def fault_wide(tree: Tree, rng: random.Random) -> set[str]:
    """A unit with thousands of children."""
    host = tree.pick(rng, tree.files_of("vertical"), tree.containers())
    if host is None:
        return set()
    tree.nodes[host].children.extend(f'<html display_name="w{i}"/>' for i in range(rng.choice([500, 3000])))
    return {host}


#: Faults applied to the tree before it is written, by name.
TREE_FAULTS = {
    "double-reference": fault_double_reference,
    "cycle": fault_cycle,
    "deep": fault_deep,
    "huge-attribute": fault_huge_attribute,
    "bad-encoding": fault_bad_encoding,
    "bad-xml": fault_bad_xml,
    "bad-attribute": fault_bad_attribute,
    "url-name": fault_url_name,
    "policy": fault_policy,
    "course-xml": fault_course_xml,
    "nested-course": fault_nested_course,
    "wide": fault_wide,
}
#: Faults applied to the written folder: symbolic links, FIFOs, missing files, files that are folders.
DISK_FAULTS = ("symlink", "fifo", "missing")


def fault_on_disk(kind: str, tree: Tree, root: Path, outside: Path, rng: random.Random,
                  export: Export) -> set[str]:
    rel = rng.choice([r for r in tree.files_of() if r != f"course/{tree.run}.xml"] or tree.files_of())
    target = root / rel
    if kind == "symlink":
        how = rng.choice(["outside-file", "etc-passwd", "loop", "dangling", "folder", "dir-to-parent", "dir-outside"])
        if how.startswith("dir-"):
            folder = target.parent
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
            if how == "dir-to-parent":
                os.symlink("..", folder)
            else:
                (outside / folder.name).mkdir(parents=True, exist_ok=True)
                (outside / folder.name / target.name).write_text(
                    f'<{tree.nodes[rel].tag} display_name="{LEAKED}"/>')
                os.symlink(outside / folder.name, folder)
            return {rel, folder.name}
        target.unlink()
        if how == "outside-file":
            leak = outside / f"leak-{target.name}"
            leak.write_text(f'<{tree.nodes[rel].tag} display_name="{LEAKED}"/>')
            os.symlink(leak, target)
        elif how == "etc-passwd":
            os.symlink("/etc/passwd", target)
        elif how == "loop":
            os.symlink(target.name, target)
        elif how == "dangling":
            os.symlink(outside / "no-such-file.xml", target)
        else:
            os.symlink(outside, target)
        return {rel}
    if kind == "fifo":
        which = rng.choice([rel, rel, "course.xml", f"policies/{tree.run}/policy.json"])
        path = root / which
        if path.exists() or path.is_symlink():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        export.fifos.append(path)
        return {which}
    how = rng.choice(["file", "file", "course-file", "course-xml", "folder-is-file", "file-is-folder"])
    if how == "file":
        target.unlink()
        return {rel}
    if how == "course-file":
        (root / "course" / f"{tree.run}.xml").unlink()
        return {f"course/{tree.run}.xml", str(root)}
    if how == "course-xml":
        (root / "course.xml").unlink()
        return {str(root)}
    if how == "folder-is-file":
        folder = target.parent
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        folder.write_text("not a folder")
        return {rel, folder.name}
    target.unlink()
    target.mkdir()
    return {rel}


# -- packaging ----------------------------------------------------------------------------------------------


def tar_member(name: str | bytes, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields) -> bytes:
    """One tar member: its 512-byte header (GNU format), its data and the padding."""
    info = tarfile.TarInfo(name if isinstance(name, str) else name.decode("latin-1"))
    info.size, info.type, info.mtime = fields.pop("size", len(data)), kind, 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info.tobuf(format=tarfile.GNU_FORMAT) + data + b"\0" * (-len(data) % 512)


def tar_of(root: Path, prefix: str = "course/") -> bytes:
    """The tar bytes of the folder ``root`` (links and FIFOs as such), members under ``prefix``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for path in sorted(root.rglob("*")):
            arcname = prefix + path.relative_to(root).as_posix()
            info = archive.gettarinfo(str(path), arcname)
            info.mtime = 0
            if info.isreg():
                with open(path, "rb") as data:
                    archive.addfile(info, data)
            else:
                archive.addfile(info)
    return out.getvalue()


def package(rng: random.Random, folder: Path, where: Path, key_number: str) -> tuple[Path, str]:
    """The export as ``--olx`` will get it: the folder, a tarball (.tar.gz, .tgz, .tar, upper-case), or a
    folder of exports that also holds a clean one. Returns (path, how)."""
    how = rng.choices(["folder", "tar.gz", "tgz", "tar", "TAR.GZ", "exports"], [60, 18, 5, 5, 4, 8])[0]
    if how == "folder":
        return folder, how
    if how == "exports":
        exports = where / "exports"
        exports.mkdir()
        folder.rename(exports / folder.name)
        sibling = Tree(random.Random(rng.random()), "Camp", f"Sib{key_number}")
        sibling.write(exports / "sibling")
        return exports, how
    suffix = {"tar.gz": ".tar.gz", "tgz": ".tgz", "tar": ".tar", "TAR.GZ": ".TAR.GZ"}[how]
    data = tar_of(folder) + b"\0" * 1024
    tarball = where / f"export{suffix}"
    tarball.write_bytes(data if how == "tar" else gzip.compress(data, mtime=0))
    return tarball, how


def olx_export(rng: random.Random, where: Path, number: str) -> Export:
    """A generated export under ``where`` (a fresh folder) of the course ``course-v1:Camp+<number>+R``,
    with 0 to 2 faults; about one in seven is clean (no fault: it must be dumped whole)."""
    tree = Tree(rng, "Camp", number)
    faults: list[str] = []
    culprits: set[str] = set()
    count = 0 if rng.random() < 0.14 else rng.choice([1, 1, 1, 2])
    names = [*TREE_FAULTS, "oversized-file", *DISK_FAULTS]
    weights = [10] * len(TREE_FAULTS) + [1] + [6, 3, 6]
    chosen = [rng.choices(names, weights)[0] for _ in range(count)]
    for name in chosen:
        if name in TREE_FAULTS:
            culprits |= TREE_FAULTS[name](tree, rng)
        elif name == "oversized-file":
            culprits |= fault_oversized_file(tree, rng)
        if name not in DISK_FAULTS:
            faults.append(name)
    folder = tree.write(where / "course")
    outside = where / "outside"
    outside.mkdir()
    export = Export(folder, tree.key, culprits, faults, clean=not chosen)
    for name in chosen:
        if name in DISK_FAULTS:
            export.culprits |= fault_on_disk(name, tree, folder, outside, rng, export)
            export.faults.append(name)
    if export.fifos:  # a tarball of a FIFO holds a FIFO member: keep those as folders
        return export
    path, how = package(rng, folder, where, number)
    export.path = path
    export.culprits |= {str(path), path.name}
    export.faults.append(how)
    if how == "exports":
        export.culprits |= {str(path / "course")}
        export.fifos = [path / "course" / p.relative_to(folder) for p in export.fifos]
    return export


# -- tarballs ------------------------------------------------------------------------------------------------

MiB = 1 << 20
ZEROS = gzip.compress(b"\0" * MiB, compresslevel=9, mtime=0)
TAR_FAULTS = ("torn", "flipped", "not-gzip", "empty", "nested-tarball", "header-bomb", "header-chain", "sparse",
              "escaping-member", "link-member", "huge-declared", "many-members", "bad-member-name",
              "early-end", "duplicate-member")


def hostile_tarball(rng: random.Random, where: Path, number: str) -> Export:
    """The generated course as a .tar.gz with one tarball fault (see TAR_FAULTS)."""
    tree = Tree(rng, "Camp", number)
    folder = tree.write(where / "src")
    members = tar_of(folder)
    kind = rng.choice(TAR_FAULTS)
    tarball = where / rng.choice(["export.tar.gz", "export.tgz", "EXPORT.TAR.GZ"])
    # a refusal names the tarball, or the file in it that is at fault (torn, cut short, flipped)
    inside = {*tree.files_of(), *tree.raw}
    export = Export(tarball, tree.key, {str(tarball), tarball.name, *inside}, ["tar:" + kind])
    end = b"\0" * 1024
    if kind == "torn":
        whole = gzip.compress(members + end, mtime=0)
        tarball.write_bytes(whole[: rng.randint(1, len(whole) - 1)])
    elif kind == "flipped":
        whole = bytearray(gzip.compress(members + end, mtime=0))
        for _ in range(rng.randint(1, 8)):
            at = rng.randint(10, len(whole) - 9)
            whole[at] ^= 1 << rng.randint(0, 7)
        tarball.write_bytes(bytes(whole))
    elif kind == "not-gzip":
        tarball.write_bytes(rng.choice([rng.randbytes(rng.randint(1, 4000)), gzip.compress(b"not a tar" * 100),
                                        members[:700]]))
    elif kind == "empty":
        tarball.write_bytes(rng.choice([b"", gzip.compress(b""), gzip.compress(end)]))
    elif kind == "nested-tarball":
        inner = gzip.compress(members + end, mtime=0)
        tarball.write_bytes(gzip.compress(tar_member("course.tar.gz", inner) + end, mtime=0))
    elif kind == "header-bomb":
        header_kind = rng.choice([tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                                  tarfile.XGLTYPE])
        size = rng.choice([MiB + 512, 2 * MiB, 16 * MiB])
        header = tarfile.TarInfo("././@LongLink")
        header.size, header.type, header.mtime = size, header_kind, 0
        with open(tarball, "wb") as out:
            out.write(gzip.compress(members + header.tobuf(format=tarfile.GNU_FORMAT), mtime=0))
            for _ in range(size // MiB):
                out.write(ZEROS)
            out.write(gzip.compress(tar_member("course/after.txt", b"x") + end, mtime=0))
    elif kind == "header-chain":
        link = tar_member("././@LongLink", b"course/" + b"n" * 90 + b".xml\0", tarfile.GNUTYPE_LONGNAME)
        tarball.write_bytes(gzip.compress(members + link * rng.choice([9, 40, 3000]) + tar_member(
            "course/last.xml", b"<x/>") + end, mtime=0))
    elif kind == "sparse":
        tarball.write_bytes(gzip.compress(members + tar_member("course/chapter/sparse.xml", b"",
                                                               tarfile.GNUTYPE_SPARSE) + end, mtime=0))
    elif kind == "escaping-member":
        name = rng.choice([f"../escaped-{number}.xml", f"course/../../escaped-{number}.xml",
                           f"{where}/escaped-{number}.xml"])
        export.forbidden = [where.parent / f"escaped-{number}.xml", where / f"escaped-{number}.xml"]
        export.culprits.add(name)
        tarball.write_bytes(gzip.compress(members + tar_member(name, b"<x/>") + end, mtime=0))
    elif kind == "link-member":
        member = rng.choice([
            tar_member("course/chapter/link.xml", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
            tar_member("course/chapter/hard.xml", kind=tarfile.LNKTYPE, linkname="/etc/passwd"),
            tar_member("course/chapter/hard2.xml", kind=tarfile.LNKTYPE, linkname="course/course.xml"),
            tar_member("course/dev.xml", kind=tarfile.CHRTYPE, devmajor=1, devminor=3),
            tar_member("course/fifo.xml", kind=tarfile.FIFOTYPE),
        ])
        tarball.write_bytes(gzip.compress(members + member + end, mtime=0))
    elif kind == "huge-declared":
        tarball.write_bytes(gzip.compress(members + tar_member("course/static/huge.bin", b"x" * 512,
                                                               size=rng.choice([10 * 1024 ** 3, 2 ** 40])),
                                          mtime=0))
    elif kind == "many-members":
        extra = b"".join(tar_member(f"course/static/f{i}.txt", b"x") for i in range(rng.choice([2000, 6000])))
        tarball.write_bytes(gzip.compress(members + extra + end, mtime=0))
    elif kind == "bad-member-name":
        name = rng.choice([b"course/static/\xff\xfe.xml", b"course/" + b"n" * 99, b"course/a\x00b.xml",
                           b"course//double.xml", b"course/./dot.xml"])
        tarball.write_bytes(gzip.compress(members + tar_member(name, b"<x/>") + end, mtime=0))
    elif kind == "early-end":
        cut = rng.randint(1, max(1, len(members) // 512 - 1)) * 512
        tarball.write_bytes(gzip.compress(members[:cut] + end + members[cut:] + end, mtime=0))
    else:  # duplicate-member: course.xml twice, the second naming another course
        second = tar_member("course/course.xml", f'<course url_name="R" org="Camp" course="Dup{number}"/>'.encode())
        tarball.write_bytes(gzip.compress(members + second + end, mtime=0))
    return export


# -- the modulestore ------------------------------------------------------------------------------------------

STORE_FAULTS = ("clean", "cycle", "self-loop", "root-cycle", "dag", "listed-twice", "deep", "wide", "load-error",
                "surrogate", "detached")


@dataclass
class StoreCourse:
    store: object
    key: str
    culprits: set[str]
    fault: str
    fails: bool  # whether the read must fail (a cycle, past the depth cap)


def store_course(rng: random.Random, number: str) -> StoreCourse:
    """A stand-in modulestore holding one synthetic course with one structural fault."""
    from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

    root = synthetic_course("Store", number, "R", rng.randint(20, 40), sections=2, units_per_subsection=2,
                            leaves_per_unit=2)
    root.course_version = f"v{rng.getrandbits(48):x}"
    store = StandInModuleStore([root])
    key = f"course-v1:Store+{number}+R"
    structure = store.structure(key)
    by_type: dict[str, list] = {}
    for block_key in structure.blocks:
        by_type.setdefault(block_key.type, []).append(block_key)

    def usage(block_key) -> str:
        return f"block-v1:Store+{number}+R+type@{block_key.type}+block@{block_key.id}"

    fault = rng.choice(STORE_FAULTS)
    culprits = {key}
    fails = False
    if fault == "cycle":  # a unit that lists one of its ancestors
        unit = rng.choice(by_type["vertical"])
        ancestors, above = [], structure.parent_of(unit)
        while above is not None and above.type != "course":
            ancestors.append(above)
            above = structure.parent_of(above)
        store.add_child(key, usage(unit), usage(rng.choice(ancestors)))
        fails = True
    elif fault == "self-loop":
        unit = rng.choice(by_type["vertical"])
        store.add_child(key, usage(unit), usage(unit))
        fails = True
    elif fault == "root-cycle":
        leaf = rng.choice(by_type["html"] + by_type.get("problem", []))
        store.add_child(key, usage(leaf), usage(by_type["course"][0]))
        fails = True
    elif fault == "dag":
        for _ in range(rng.randint(1, 4)):
            leaf, unit = rng.choice(by_type["html"] + by_type.get("problem", [])), rng.choice(by_type["vertical"])
            store.add_child(key, usage(unit), usage(leaf))
    elif fault == "listed-twice":
        unit = rng.choice(by_type["vertical"])
        child = structure.blocks[unit].fields["children"][0]
        store.add_child(key, usage(unit), usage(child))
    elif fault in ("deep", "wide"):
        parent = usage(rng.choice(by_type["vertical"]))
        levels = rng.choice([20, 28, 29, 40]) if fault == "deep" else 0
        for i in range(levels or rng.choice([500, 2000])):
            added = store.add_block(key, "vertical" if fault == "deep" else "html", f"x{i:04d}", parent=parent)
            parent = added if fault == "deep" else parent
        fails = fault == "deep" and levels + 3 > 32
    elif fault == "load-error":
        store.fail_to_load(usage(rng.choice(by_type["html"])))
    elif fault == "surrogate":
        unit = rng.choice(by_type["vertical"])
        structure.blocks[unit].fields["display_name"] = "bad \ud800 title"
    elif fault == "detached":
        store.add_block(key, rng.choice(["static_tab", "about", "course_info"]), "extra", parent=None)
    return StoreCourse(store, key, culprits, fault, fails)


# -- sink_query --------------------------------------------------------------------------------------------

#: Statements sink_query must refuse: {canary} is a path outside the engine nothing may create, {secret}
#: a file whose content nothing may print, {t} a table of the sinks.
WRITES = [
    "INSERT INTO {t} SELECT * FROM {t}",
    "INSERT INTO FUNCTION file('{canary}', 'CSV', 'a String') SELECT 'x'",
    "INSERT INTO TABLE FUNCTION file('{canary}', 'TSV') SELECT 1",
    "CREATE TABLE campaign_new (a Int8) ENGINE = Memory",
    "CREATE TABLE campaign_f ENGINE = File(TSV, '{canary}') AS SELECT 1",
    "CREATE VIEW campaign_v AS SELECT 1",
    "DROP TABLE {t}", "DROP TABLE IF EXISTS {t}", "DROP DATABASE {db}", "TRUNCATE TABLE {t}",
    "ALTER TABLE {t} DELETE WHERE 1", "ALTER TABLE {t} UPDATE block_type = 'x' WHERE 1", "DELETE FROM {t} WHERE 1",
    "OPTIMIZE TABLE {t} FINAL", "RENAME TABLE {t} TO campaign_renamed", "DETACH TABLE {t}",
    "EXCHANGE TABLES {t} AND event_sinks_runs", "SYSTEM STOP MERGES", "SYSTEM DROP MARK CACHE",
    "SYSTEM FLUSH LOGS", "KILL QUERY WHERE 1", "KILL MUTATION WHERE 1", "SET readonly = 0",
    "SET max_execution_time = 0", "GRANT ALL ON *.* TO default", "CREATE USER campaign_u",
    "BACKUP TABLE {t} TO File('{canary}')", "CREATE FUNCTION campaign_fn AS x -> x", "USE system",
    "CHECK TABLE {t}", "ATTACH TABLE campaign_a (a Int8) ENGINE = Memory", "UNDROP TABLE campaign_x",
]
OUTFILES = [
    "SELECT * FROM {t} INTO OUTFILE '{canary}'",
    "SELECT 1 INTO OUTFILE '{canary}' TRUNCATE",
    "SELECT 'x' INTO OUTFILE '{canary}' APPEND FORMAT CSV",
    "SELECT 1 INTO OUTFILE '{canary}' AND STDOUT",
    "WITH 1 AS x SELECT x INTO OUTFILE '{canary}' COMPRESSION 'gzip'",
]
#: Table functions that read or write outside the engine's tables (or reach a host that never answers).
OUTSIDE = [
    "file('{secret}', 'LineAsString')", "file('/etc/passwd', 'LineAsString')", "file('{secret}')",
    "url('http://127.0.0.1:1/', 'CSV', 'a String')", "s3('http://127.0.0.1:1/b/k', 'CSV', 'a String')",
    "remote('127.0.0.1:1', system.one)", "remoteSecure('127.0.0.1:1', system.one)", "cluster('default', system.one)",
    "mysql('127.0.0.1:1', 'd', 't', 'u', 'p')", "postgresql('127.0.0.1:1', 'd', 't', 'u', 'p')",
    "executable('cat /etc/passwd', 'LineAsString', 'x String')", "sqlite('{secret}', 't')",
    "urlCluster('default', 'http://127.0.0.1:1/')", "fileCluster('default', '{secret}')",
    "hdfs('hdfs://127.0.0.1:1/x', 'CSV', 'a String')", "input('a String')", "jdbc('x', 'y', 'z')",
    "azureBlobStorage('http://127.0.0.1:1/', 'c', 'b')", "mongodb('127.0.0.1:1', 'd', 'c', 'u', 'p', 'x String')",
    "redis('127.0.0.1:1', 'k', 'k String')", "deltaLake('http://127.0.0.1:1/x')", "python('x')",
]
#: How a refused part hides in a statement that starts as a read.
DISGUISES = [
    "SELECT * FROM {f}", "select * from {f}", "SELECT * FROM (SELECT * FROM {f})",
    "WITH a AS (SELECT * FROM {f}) SELECT * FROM a", "SELECT 1 UNION ALL SELECT count() FROM {f}",
    "SELECT * FROM system.one AS o, {f} AS x", "SELECT (SELECT count() FROM {f})", "EXPLAIN SELECT * FROM {f}",
    "EXPLAIN PIPELINE SELECT * FROM {f}", "DESCRIBE {f}", "/* c */ SELECT * FROM {f} -- c",
    "SELECT * FROM {f} WHERE 1 IN (SELECT 1)", "SELECT 1 WHERE 1 IN (SELECT count() FROM {f})",
]
SEVERAL = [
    "SELECT 1; {w}", "SELECT 1;\n{w};", "SELECT 1 ; -- \n {w}", "{w}; SELECT 1", "SELECT ';'; {w}",
    "SELECT 1 /* ; */; {w}",
]
#: Statements that are refused or fail, with nothing to write: the message must still be plain.
ODD = [
    "", "   ", ";", ";;", "-- only a comment", "/* */", "SELECT", "SELEC 1", "SELECT 1 /*", "SELECT '",
    "SELECT " + "(" * 5000 + "1" + ")" * 5000, "SELECT 1 FORMAT JSON", "SELECT 1 SETTINGS readonly = 0",
    "SELECT 1 SETTINGS max_execution_time = 0", "SELECT throwIf(1, 'boom')", "SELECT * FROM no_such_table",
    "SELECT file('{secret}')", "SELECT \x00", "SELECT '\ud800'", "SELECT 1 " + "-- x\n" * 2000,
    "SELECT sleep(3)", "SELECT count() FROM numbers(1e12)", "SELECT * FROM system.numbers",
    "SELECT * FROM loop(numbers(3))", "SELECT * FROM generateRandom('a String')",
]
#: Reads that must run.
READS = [
    "SELECT count() FROM {t}", "SHOW TABLES", "DESCRIBE TABLE {t}", "EXPLAIN SELECT 1", "WITH 1 AS x SELECT x",
    "SELECT * FROM numbers(3)", "SELECT * FROM system.one", "select 'a;b' AS semi", "SELECT 'é🎓', NULL, [1, 2]",
    "SELECT * FROM {t} LIMIT 2", "SHOW CREATE TABLE {t}", "SELECT 1 -- trailing comment",
]
TABLES = ["course_outline_dumps", "event_sinks_dump_log", "event_sinks_runs", "course_outline", "block_relationships"]


@dataclass
class Statement:
    sql: str
    kind: str  # "write", "outfile", "outside", "several", "odd", "read"
    culprits: set[str]
    timeout: float | None  # --timeout, when the statement could run long


def _recase(rng: random.Random, sql: str) -> str:
    """The statement with its keywords (the words in capitals) in random case and its spaces as random
    blanks; quoted text, identifiers and a trailing ``--`` comment are kept (a line break inside the
    comment would end it, and turn its words into SQL)."""
    sql, dashes, comment = sql.partition(" --")
    parts = re.split(r"('(?:[^']|'')*')", sql)
    for i in range(0, len(parts), 2):  # outside the quotes
        parts[i] = re.sub(r"\b[A-Z]{2,}\b", lambda m: "".join(c.swapcase() if rng.random() < 0.4 else c
                                                              for c in m.group(0)), parts[i])
        parts[i] = re.sub(r" ", lambda m: rng.choice([" ", "  ", "\t", "\n", " "]), parts[i])
    return "".join(parts) + dashes + comment


def hostile_sql(rng: random.Random, *, db: str, canary: Path, secret: Path) -> Statement:
    kind = rng.choices(["write", "outfile", "outside", "several", "odd", "read"], [26, 8, 26, 12, 16, 12])[0]
    fill = {"t": rng.choice(TABLES), "db": db, "canary": str(canary), "secret": str(secret)}
    timeout = None
    if kind == "write":
        sql = rng.choice(WRITES).format(**fill)
        culprits = {sql.split()[0].upper(), "refused"}
    elif kind == "outfile":
        sql = rng.choice(OUTFILES).format(**fill)
        culprits = {"INTO OUTFILE"}
    elif kind == "outside":
        function = rng.choice(OUTSIDE).format(**fill)
        sql = rng.choice(DISGUISES).format(f=function)
        culprits = {function.split("(")[0], function.split("(")[0].lower(), "refused"}
        timeout = 3.0
    elif kind == "several":
        write = rng.choice(WRITES).format(**fill)
        sql = rng.choice(SEVERAL).format(w=write)
        culprits = {"one statement", "multi", "Multi-statements", "refused", write.split()[0].upper()}
    elif kind == "odd":
        sql = rng.choice(ODD).format(**fill)
        culprits = {"sink_query", "statement", "query", "Syntax", "syntax", "boom", "readonly", "no_such_table",
                    "max_execution_time", "timeout", "Timeout", "FORMAT", "file"}
        timeout = 2.0
    else:
        sql = rng.choice(READS).format(**fill)
        culprits = set()
    if kind != "odd" and rng.random() < 0.35:
        sql = _recase(rng, sql)
    return Statement(sql, kind, culprits, timeout)


# -- keys, sinks, options, settings ------------------------------------------------------------------------

HOSTILE_KEYS = [
    "", " ", "garbage", "course-v1:", "course-v1:A+B", "course-v1:A+B+C+D", "course-v1:A B+C+D",
    "library-v1:Org+Lib", "lib:Org:Lib", "ccx-v1:Org+C+R+ccx@1", "block-v1:Org+C+R+type@html+block@x",
    "course-v1:Camp+C0+R'; DROP TABLE course_outline_dumps; --", "course-v1:Camp+C0+R\x00", "course-v1:Camp+C0+R\n",
    "course-v1:" + "A" * 5000 + "+B+C", "course-v1:Ünï+B+C", "course-v1:Camp+NoSuch+R", "Camp/C0/R",
    "course-v1:Camp+C0+R\ud800", "{x:String}", "../../etc/passwd", "course-v1:%2e%2e+B+C",
]
SINK_NAMES = ["course_outlin", "Course_Outline", "", " ", "../course_outline", "x; DROP TABLE t", "course_overviews",
              "naïve", "course_outline ", "test_words", "c" * 2000, "*"]


def bad_setting(rng: random.Random, fields: dict) -> tuple[str, object]:
    """An ``EVENT_SINKS`` key and a value its own check refuses (drawn until one is refused)."""
    from event_sinks.conf.settings import Invalid

    key = rng.choice(sorted(fields))
    check = fields[key].metadata["check"]
    for _ in range(200):
        value = _random_value(rng, depth=0)
        try:
            check(value)
        except Invalid:
            return key, value
        except Exception as exc:  # a check that fails another way is what the campaign reports
            return key, _Raises(value, exc)
    return key, ("never", "valid")


@dataclass
class _Raises:
    """A value whose check raised something other than ``Invalid`` (kept to be reported)."""

    value: object
    error: Exception


def _random_value(rng: random.Random, depth: int) -> object:
    choices = [
        lambda: None, lambda: rng.choice(["", " ", "3", "yes", "off", "ftp://h/db", "chdb://", "http://", "my-db",
                                          "x" * 500, "\x00", "é", "None", "-1", "1e400", "http://u:p@h:99999/d"]),
        lambda: rng.choice([0, -1, 1, 2, 10 ** 20, -(10 ** 20), 2 ** 63]), lambda: rng.choice([True, False]),
        lambda: rng.choice([math.nan, math.inf, -math.inf, -0.5, 0.0, 1e-300, 2.5, 1e308]),
        lambda: [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 2))] if depth < 2 else [],
        lambda: {rng.choice(["x", "course_outline", "ENABLED", 1, None]): _random_value(rng, depth + 1)
                 for _ in range(rng.randint(0, 2))} if depth < 2 else {},
        lambda: b"bytes", lambda: Path("/tmp"), lambda: (1, "a"), lambda: {"course_outline": {"ENABLED": "yes"}},
        lambda: {"course_outline": {"NOPE": 1}}, lambda: {"x": {"MODEL": "nodot"}},
    ]
    return rng.choice(choices)()
