"""Which OLX elements are blocks: the container tags, and the children Open edX does not turn into blocks."""

from __future__ import annotations

#: Tags whose XML children are blocks; every other tag is a leaf component.
CONTAINER_TAGS = frozenset(
    {"course", "chapter", "sequential", "vertical", "split_test", "conditional", "library_content"}
)


#: Children of these containers that Open edX does not turn into blocks.
NOT_BLOCKS = {"course": frozenset({"wiki", "textbook"}), "conditional": frozenset({"show"})}


NO_SKIP: frozenset[str] = frozenset()


#: ``completion_mode`` of the XBlock class Open edX registers for a type, where it is known without
#: loading the class (xblock/completable.py values): the outline's containers (``SequenceFields``,
#: ``VerticalBlock``, ``CourseBlock``: "aggregator") and ``VideoBlock`` ("completable"). Other types are
#: '' here, which is what a class without the attribute gives too (platform-plugin-aspects writes
#: ``getattr(block, "completion_mode", "")``); inside the platform the modulestore reader reads each
#: class's own value.
COMPLETION_MODES = {
    "course": "aggregator",
    "chapter": "aggregator",
    "sequential": "aggregator",
    "vertical": "aggregator",
    "video": "completable",
}
