"""Safe XML parsing with expat: no DTDs, no entities, no external resources, capped size and nesting."""

from __future__ import annotations

from typing import IO, NoReturn
from xml.parsers import expat

from ..errors import CourseReadError
from .tags import CONTAINER_TAGS

#: XML element nesting allowed inside one file (a block's content can nest deeper than blocks do).
MAX_XML_NESTING = 256


class Node:
    """An element of an OLX file: only what the outline needs (tag, attributes, block children)."""

    __slots__ = ("tag", "attrs", "children", "line", "content")

    def __init__(self, tag: str, attrs: dict, line: int):
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node] = []
        self.line = line
        self.content = False  # has child elements or non-blank text (decides "pointer tag")


class _Stop(Exception):
    """Raised from an expat handler to stop parsing once the root element has been seen."""


class _Refused(Exception):
    """Raised from an expat handler for input that is refused (DTD, entities, too deep)."""


def parse_xml(fileobj: IO[bytes], rel: str, *, root_only: bool, max_bytes: int) -> Node:
    """Parse an OLX file safely with expat; with ``root_only`` stop after the root's start tag.

    Container elements keep their element children as nodes; the content of leaf elements is
    scanned (to find where it ends) but not kept.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node | None] = []
    found: list[Node] = []
    containers = CONTAINER_TAGS

    def refuse_doctype(*_args: object) -> NoReturn:
        raise _Refused("DOCTYPE declarations are refused (no DTDs or entities in OLX)")

    def refuse_entity(*_args: object) -> NoReturn:
        raise _Refused("entity declarations are refused")

    def start(tag: str, attrs: dict[str, str]) -> None:
        if not stack:
            if found:
                raise _Refused("more than one root element")
            node = Node(tag, attrs, parser.CurrentLineNumber)
            found.append(node)
            if root_only:
                raise _Stop
            stack.append(node)
            return
        if len(stack) >= MAX_XML_NESTING:
            raise _Refused(f"XML nested deeper than {MAX_XML_NESTING} elements")
        parent = stack[-1]
        if parent is None:
            stack.append(None)
        elif parent.tag in containers:
            node = Node(tag, attrs, parser.CurrentLineNumber)
            parent.children.append(node)
            parent.content = True
            stack.append(node)
        else:
            parent.content = True
            stack.append(None)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            top = stack[-1]
            if top is not None and not top.content and not data.isspace():
                top.content = True

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text

    total = 0
    try:
        while True:
            chunk = fileobj.read(65536)
            total += len(chunk)
            if total > max_bytes:
                raise CourseReadError(f"file is larger than the {max_bytes}-byte cap", rel, None)
            parser.Parse(chunk, not chunk)
            if not chunk:
                break
    except _Stop:
        pass
    except _Refused as exc:
        raise CourseReadError(f"unsafe XML: {exc}", rel, parser.CurrentLineNumber) from None
    except expat.ExpatError as exc:
        raise CourseReadError(f"malformed XML: {expat.ErrorString(exc.code)}", rel, exc.lineno) from None
    except (LookupError, ValueError) as exc:  # an encoding declaration Python cannot decode
        raise CourseReadError(f"unreadable XML: {exc}", rel, parser.CurrentLineNumber) from None
    if not found:
        raise CourseReadError("no root element", rel, None)
    return found[0]
