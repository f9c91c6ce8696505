"""Which OLX elements are blocks: the container tags, and the children Open edX does not turn into blocks."""

from __future__ import annotations

#: Tags whose XML children are blocks; every other tag is a leaf component.
CONTAINER_TAGS = frozenset(
    {"course", "chapter", "sequential", "vertical", "split_test", "conditional", "library_content"}
)


#: Children of these containers that Open edX does not turn into blocks.
NOT_BLOCKS = {"course": frozenset({"wiki", "textbook"}), "conditional": frozenset({"show"})}


NO_SKIP: frozenset[str] = frozenset()
