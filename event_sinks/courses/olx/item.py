"""A located block: a block whose definition file is known, waiting in the walk to be emitted."""

from __future__ import annotations


class Item:
    """A block whose definition has been located, waiting in the walk to be emitted."""

    __slots__ = ("tag", "block_id", "key", "attrs", "nodes", "file", "chain")

    def __init__(self, tag, block_id, key, attrs, nodes, file, chain):
        self.tag = tag
        self.block_id = block_id
        self.key = key
        self.attrs = attrs
        self.nodes = nodes
        self.file = file
        self.chain = chain  # definition files from the course down to this block (cycle detection)
