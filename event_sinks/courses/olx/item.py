"""A located block: a block whose definition file is known, waiting in the walk to be emitted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .safexml import Node


class Item:
    """A block whose definition has been located, waiting in the walk to be emitted."""

    __slots__ = ("tag", "block_id", "key", "attrs", "nodes", "file", "line", "chain")

    def __init__(self, tag: str, block_id: str, key: str, attrs: dict[str, Any], nodes: Sequence[Node], file: str,
                 line: int | None, chain: tuple[str, ...]):
        self.tag = tag
        self.block_id = block_id
        self.key = key
        self.attrs = attrs
        self.nodes = nodes
        self.file = file  # where the block is defined (its element's file), and the line of that element
        self.line = line
        self.chain = chain  # definition files from the course down to this block (cycle detection)
