"""XBlock attributes the anchors read that the modulestore stand-in's blocks do not have.

The stand-in (``event_sinks.testing.modulestore.StandInBlock``) models what this library's reader
uses; the anchors also read ``scope_ids``, ``display_name_with_default``, ``completion_mode`` and,
Aspects 2.1.0, a video's ``start_time`` / ``end_time``. :func:`install` adds them to the stand-in's
block classes as properties, each modelled on the XBlock or edx-platform source named beside it.
It is installed only in the anchors' worker processes: this library's dump never reads them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from xblock.fields import ScopeIds  # the XBlock library's own namedtuple (installed from PyPI)

#: ``completion_mode`` is a class attribute of the block classes that declare one (XBlock's
#: xblock/completable.py ``XBlockCompletionMode``; the base ``XBlock`` has none, so
#: ``getattr(block, "completion_mode", "")`` gives "" for the others):
#: xmodule/seq_block.py ``SequenceFields.completion_mode = AGGREGATOR`` (chapter, sequential and the
#: course block, which are sequence blocks), xmodule/vertical_block.py ``AGGREGATOR``,
#: xmodule/video_block/video_block.py ``COMPLETABLE``. html and problem declare none.
COMPLETION_MODES = {
    "course": "aggregator",
    "chapter": "aggregator",
    "sequential": "aggregator",
    "vertical": "aggregator",
    "video": "completable",
}

_NO_TIME = timedelta(0)


def _scope_ids(block: Any) -> ScopeIds:
    """xblock/core.py: every block is built with ``scope_ids``; split builds them in
    caching_descriptor_system.py ``xblock_from_json`` as ``ScopeIds(None, block_type, definition_id,
    usage_key)``. The stand-in has no definitions, so ``def_id`` is None (the anchors never read it)."""
    return ScopeIds(None, block.category, None, block.location)


def _display_name_with_default(block: Any) -> str:
    """xmodule/x_module.py ``XModuleMixin.display_name_with_default`` ->
    xmodule/block_metadata_utils.py ``display_name_with_default``: the display name, else the block
    id with underscores as spaces."""
    name = block.display_name
    return name if name is not None else block.location.block_id.replace("_", " ")


def _completion_mode(block: Any) -> str:
    mode = COMPLETION_MODES.get(block.category)
    if mode is None:
        raise AttributeError("completion_mode")  # as for a class that declares none
    return mode


def _video_time(block: Any) -> timedelta:
    """xmodule/video_block/video_xfields.py: ``start_time`` and ``end_time`` are ``RelativeTime``
    fields of video blocks with the default ``datetime.timedelta(seconds=0)``."""
    if block.category != "video":
        raise AttributeError("start_time")  # only video blocks have the fields
    return _NO_TIME


def install() -> None:
    """Add the attributes to the stand-in's block classes (for the whole process)."""
    from event_sinks.testing.modulestore import StandInBlock, StandInErrorBlock

    for cls in (StandInBlock, StandInErrorBlock):
        cls.scope_ids = property(_scope_ids)
        cls.display_name_with_default = property(_display_name_with_default)
        cls.completion_mode = property(_completion_mode)
        cls.start_time = property(_video_time)
        cls.end_time = property(_video_time)
