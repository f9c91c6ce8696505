"""Pointer resolution and block ids: where each child block's definition is, and what it is called."""

from __future__ import annotations

import hashlib
import logging
import os

from .. import limits
from ..errors import CourseReadError
from .export import report
from .item import Item
from .policy import CourseReader
from .safexml import Node, parse_xml
from .tags import CONTAINER_TAGS
from .values import ID_RE, clean_id

log = logging.getLogger("event_sinks.courses.olx")

def is_pointer(node: Node) -> bool:
    """Open edX's ``is_pointer_tag``: only ``url_name`` (plus org/course on the course), no content."""
    if node.content:
        return False
    attrs = node.attrs
    if node.tag == "course":
        return len(attrs) == 3 and "url_name" in attrs and "org" in attrs and "course" in attrs
    return len(attrs) == 1 and "url_name" in attrs


class Resolver:
    """Locates each child block's definition and gives it its id; one per walk, so ids are claimed afresh.

    A pointer file is resolved once per walk: it defines one block, placed by the first pointer the walk
    reaches (see :meth:`resolve`). Each file parsed is counted by its identity on disk (device and
    inode, so symbolic links and case-insensitive names count as the file they open), up to
    ``MAX_PARSES_PER_FILE`` parses per walk.
    """

    def __init__(self, reader: CourseReader):
        self.reader = reader
        self.export = reader.export
        self.strict = reader.strict
        self.prefix = reader.prefix
        self.used: set[str] = {"course/course"}  # the root's id: a nested <course> gets an id of its own
        #: pointer file -> (its block's key, the key of the parent it is placed under); None: not readable
        self.resolved: dict[str, tuple[str, str] | None] = {}
        self.parses: dict[tuple[int, int], int] = {}
        self.max_parses = limits.MAX_PARSES_PER_FILE

    def problem(self, message: str, path: str | None, line: int | None) -> None:
        report(CourseReadError(message, path, line), self.strict, self.export.source)

    def parse(self, rel: str, *, root_only: bool, ref: str) -> Node | None:
        """Parse ``rel``, counted per file on disk; None (after reporting) past ``MAX_PARSES_PER_FILE``."""
        with self.export.open(rel) as fileobj:
            info = os.fstat(fileobj.fileno())
            identity = (info.st_dev, info.st_ino)
            count = self.parses.get(identity, 0) + 1
            if count > self.max_parses:
                self.problem(f"parsed more than {self.max_parses} times in one walk (named again at {ref}): "
                             "too many filename= attributes or links name this file", rel, None)
                return None
            self.parses[identity] = count
            return parse_xml(fileobj, rel, root_only=root_only, max_bytes=self.export.max_file_bytes)

    def load(self, rel: str, *, root_only: bool, ref: str, chain: tuple[str, ...]) -> Node | None:
        if rel in chain:
            self.problem(f"pointer cycle: {ref} leads back to a file already on the path", rel, None)
            return None
        try:
            return self.parse(rel, root_only=root_only, ref=ref)
        except FileNotFoundError:
            self.problem(f"file not found (dangling pointer at {ref})", rel, None)
        except CourseReadError as exc:
            self.problem(f"{exc.message} (pointer at {ref})", exc.path, exc.line)
        except OSError as exc:
            self.problem(f"unreadable file: {exc.strerror or exc} (pointer at {ref})", rel, None)
        return None

    def claim(self, tag: str, block_id: str) -> bool:
        name = tag + "/" + block_id
        if name in self.used:
            return False
        self.used.add(name)
        return True

    def fallback_id(self, tag: str, parent_id: str, index: int, name: str | None) -> str:
        seed = f"{parent_id}/{tag}/{index}/{name or ''}"
        stem = f"{tag}_{name}_" if name else f"{tag}_"
        attempt = 0
        while True:
            digest = hashlib.sha1(seed.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
            block_id = stem + digest
            if ID_RE.fullmatch(block_id) and self.claim(tag, block_id):
                return block_id
            if not ID_RE.fullmatch(block_id):
                stem = f"{tag}_"
            attempt += 1
            seed = f"{parent_id}/{tag}/{index}/{name or ''}/{attempt}"

    def resolve(self, node: Node, parent: Item, index: int) -> Item | None:
        """Locate a child block's definition and id; None (after reporting) when it cannot be read."""
        tag = node.tag
        attrs = node.attrs
        ref = f"{parent.file}:{node.line}"
        if not ID_RE.fullmatch(tag):
            self.problem(f"<{tag}> is not a valid block type", parent.file, node.line)
            return None
        container = tag in CONTAINER_TAGS
        if is_pointer(node):
            url_name = attrs["url_name"]
            if not ID_RE.fullmatch(url_name):
                self.problem(f"<{tag} url_name={url_name!r}> is not a valid block id", parent.file, node.line)
                return None
            rel = f"{tag}/{url_name.replace(':', '/')}.xml"
            if rel in self.resolved and rel not in parent.chain:
                self.reached_again(tag, url_name, rel, ref, parent)
                return None
            root = self.load(rel, root_only=not container, ref=ref, chain=parent.chain)
            if root is None:
                if rel not in parent.chain:
                    self.resolved[rel] = None
                return None
            block_id = url_name
            if not self.claim(tag, block_id):
                log.warning("OLX export %s: %s: <%s url_name=%r> is used by another definition already; giving "
                            "this one its own id", self.export.source, ref, tag, url_name)
                block_id = self.fallback_id(tag, parent.block_id, index, url_name)
            key = self.prefix + tag + "+block@" + block_id
            self.resolved[rel] = (key, parent.key)
            merged = dict(root.attrs)
            merged.update(attrs)
            nodes = root.children if container else ()
            return Item(tag, block_id, key, merged, nodes, rel, root.line, parent.chain + (rel,))

        block_id = self.inline_id(node, parent, index)
        if block_id is None:
            return None
        filename = attrs.get("filename") if container or tag == "problem" else None
        if filename is not None:
            rel = f"{tag}/{filename}.xml"
            if tag == "problem" and not self.export.exists(rel):
                for candidate in ("problems/" + rel[8:], rel[8:]):
                    if self.export.exists(candidate):
                        rel = candidate
                        break
            root = self.load(rel, root_only=not container, ref=ref, chain=parent.chain)
            if root is None:
                return None
            merged = dict(root.attrs)
            merged.update(attrs)
            nodes = root.children if container else ()
            return Item(tag, block_id, self.prefix + tag + "+block@" + block_id, merged, nodes, rel, root.line,
                         parent.chain + (rel,))
        return Item(tag, block_id, self.prefix + tag + "+block@" + block_id, attrs,
                     node.children if container else (), parent.file, node.line, parent.chain)

    def reached_again(self, tag: str, url_name: str, rel: str, ref: str, parent: Item) -> None:
        """A second pointer to a pointer file: its block is placed already (or could not be read)."""
        first = self.resolved[rel]
        if first is None:
            return  # the file could not be read: reported at the first pointer to it
        log.warning("OLX export %s: %s: <%s url_name=%r> points to a file read already (%s): block %s is read "
                    "once, under %s, and left out of %s", self.export.source, ref, tag, url_name, rel, first[0],
                    first[1], parent.key)

    def inline_id(self, node: Node, parent: Item, index: int) -> str | None:
        """Open edX's ``make_name_unique`` lookups, with the stable fallback described above."""
        attrs = node.attrs
        tag = node.tag
        name = None
        for key, clean in (("url_name", False), ("slug", False), ("name", True), ("display_name", True)):
            if key in attrs:
                name = clean_id(attrs[key]) if clean else attrs[key]
                if not clean and name and not ID_RE.fullmatch(name):
                    self.problem(f"<{tag} {key}={name!r}> is not a valid block id", parent.file, node.line)
                    return None
                break
        if name and ID_RE.fullmatch(name) and self.claim(tag, name):
            return name
        if name and not ID_RE.fullmatch(name):
            name = None
        return self.fallback_id(tag, parent.block_id, index, name)


def course_item(reader: CourseReader, node: Node, rel: str) -> Item:
    """The course root as a located block: its definition is ``rel`` (course.xml or the course file)."""
    return Item("course", "course", reader.prefix + "course+block@course", node.attrs, node.children, rel, node.line,
                (rel,))
