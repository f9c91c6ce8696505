"""A stand-in for edx-platform's split modulestore: the calls the course readers make, with split's shapes.

Tests and benchmarks run ``read_modulestore`` on it without Open edX. As in split, a course is a
compact *structure* (block key -> type, own fields, library defaults, edit info), and XBlock objects
are built from it only when asked for: ``get_course`` builds the root, each ``get_child`` /
``get_children`` builds a child and caches it on its parent's ``_child_cache`` (as XBlock does), so a
walk that never calls ``clear_child_cache()`` holds the whole course in memory, as it would inside
Open edX. Fields come out as the runtime resolves them: class default display names, inheritance
(with the ``library_content`` exception), an ErrorBlock for a block that fails to load, detached
blocks found through ``get_items``; ``read_cost`` models the real store's time per loaded block.
Like split, the course root's location has no branch while its descendants' carry the published one.
Corrupt structures found in the field can be built too: ``add_child`` lists a block under a second
parent (a DAG) or under one of its descendants (a cycle). Each behaviour says which platform source it
models.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from opaque_keys.edx.keys import CourseKey, UsageKey
from opaque_keys.edx.locator import CourseLocator

from ..courses.course import DEFAULT_START_DATE, UTC, Course
from ..courses.modulestore import DETACHED_BLOCK_TYPES

# The inheritable settings the readers use and their field defaults, which apply where nothing up
# the tree sets them: xmodule/modulestore/inheritance.py InheritanceMixin.
_INHERITED = ("graded", "start", "due", "visible_to_staff_only", "hide_from_toc")
_INHERITED_DEFAULTS = (False, DEFAULT_START_DATE, None, False, False)
_SETTINGS = ("display_name", "format", *_INHERITED)

#: The ``display_name`` default of each block class that has one; a block whose author set no name
#: reads as this. Types not listed (chapter, sequential, vertical...) default to None, the default of
#: ``XModuleFields.display_name`` in xmodule/x_module.py (seq_block.py and vertical_block.py keep it).
DEFAULT_DISPLAY_NAMES: Mapping[str, str] = {
    "course": "Empty",  # xmodule/course_block.py CourseFields.display_name
    "html": "Text",  # xmodule/html_block.py HtmlBlockMixin.display_name
    "course_info": "Text",  # xmodule/html_block.py CourseInfoBlock (HtmlBlockMixin's default)
    "about": "overview",  # xmodule/html_block.py AboutFields.display_name
    "static_tab": "Empty",  # xmodule/html_block.py StaticTabFields.display_name
    "problem": "Blank Problem",  # xmodule/capa_block.py ProblemBlock.display_name
    "video": "Video",  # xmodule/video_block/video_xfields.py VideoFields.display_name
    "library_content": "Randomized Content Block",  # xmodule/library_content_block.py
}

#: ``completion_mode`` of the block classes that set one (a class attribute, xblock/completable.py):
#: ``SequenceFields`` (xmodule/seq_block.py; ``VerticalBlock`` and ``CourseBlock`` inherit it) and
#: ``VideoBlock`` (xmodule/video_block/video_block.py). A class without it has no such attribute.
COMPLETION_MODES: Mapping[str, str] = {
    "course": "aggregator", "chapter": "aggregator", "sequential": "aggregator", "vertical": "aggregator",
    "video": "completable",
}

#: The course root's fields the readers take besides the outline's (xmodule/course_block.py
#: CourseFields) and their defaults; ``grading_policy`` holds ``GRADE_CUTOFFS`` (default {"Pass": 0.5}).
COURSE_FIELDS: Mapping[str, Any] = {
    "end": None, "enrollment_start": None, "enrollment_end": None, "advertised_start": None, "announcement": None,
    "self_paced": False, "invitation_only": False, "max_student_enrollments_allowed": None,
    "enable_proctored_exams": False, "entrance_exam_enabled": False, "language": None,
}
#: A video's play window: ``RelativeTime`` fields, timedeltas (xmodule/video_block/video_xfields.py).
VIDEO_FIELDS = ("start_time", "end_time")

_UNSET: Any = object()
_NOTHING_SET = (_UNSET,) * len(_INHERITED)
_NO_DEFAULTS: Mapping[str, Any] = {}


class ModuleStoreEnum:
    """The values of ``xmodule.modulestore.ModuleStoreEnum`` the readers use."""

    class Branch:
        draft_preferred = "draft-preferred"
        published_only = "published-only"

    class BranchName:
        draft = "draft-branch"
        published = "published-branch"


class ItemNotFoundError(KeyError):
    """A key the structure does not hold (xmodule/modulestore/exceptions.py ItemNotFoundError)."""


class BlockKey(NamedTuple):
    """A block's key inside a structure (xmodule/modulestore/split_mongo/__init__.py BlockKey)."""

    type: str
    id: str


class BlockData:
    """One block of a structure as split stores it (xmodule/modulestore/__init__.py BlockData).

    ``fields`` holds only what was set on the block (children as BlockKeys under ``"children"``);
    ``defaults`` the values copied from a library block (split.py ``_copy_from_template``); the edit
    times are split's ``edit_info``. ``load_error`` set makes the block fail to load.
    """

    __slots__ = ("block_type", "fields", "defaults", "edited_on", "subtree_edited_on", "load_error")

    def __init__(self, block_type: str, fields: dict[str, Any], defaults: dict[str, Any] | None = None,
                 edited_on: datetime | None = None):
        self.block_type = block_type
        self.fields = fields
        self.defaults = defaults or None
        self.edited_on = edited_on
        self.subtree_edited_on: datetime | None = None
        self.load_error: str | None = None


class CourseStructure:
    """A course's published structure: its id (the version), its root and its blocks by BlockKey."""

    __slots__ = ("course_key", "version", "root", "blocks", "_parents")

    def __init__(self, course_key: Any, version: str | None = None):
        self.course_key: Any = course_key.for_branch(None)
        self.version = version
        self.root = BlockKey("course", "course")
        self.blocks: dict[BlockKey, BlockData] = {}
        self._parents: dict[BlockKey, BlockKey] | None = None

    def add(self, block_type: str, block_id: str, parent: BlockKey | None, fields: Mapping[str, Any] | None = None,
            *, defaults: Mapping[str, Any] | None = None, edited_on: datetime | None = None) -> BlockKey:
        """Add a block, appended to ``parent``'s children; with no parent it is detached (or the root).

        Studio creates detached types without adding them to the parent's children
        (cms/djangoapps/contentstore, ``_create_block``: the "detached" class tag).
        """
        key = BlockKey(block_type, block_id)
        if key in self.blocks:
            raise ValueError(f"{key} is already in the structure of {self.course_key}")
        self.blocks[key] = BlockData(block_type, dict(fields or ()), dict(defaults or ()), edited_on)
        if parent is not None:
            self.blocks[parent].fields.setdefault("children", []).append(key)
        self._parents = None
        return key

    def link(self, parent: BlockKey, child: BlockKey) -> None:
        """List a block already in the structure as a child of ``parent`` too, last among its children.

        What corrupt structures in the field hold: a block listed by two parents (a DAG; split keeps one
        block, which each parent's ``children`` names), or by one of its own descendants (a cycle).
        Studio never makes either; an import of OLX that reuses a definition, a bad migration or a
        hand-edited structure document does.
        """
        if parent not in self.blocks or child not in self.blocks:
            raise ValueError(f"{parent} and {child} must both be in the structure of {self.course_key}")
        self.blocks[parent].fields.setdefault("children", []).append(child)
        self._parents = None

    def parent_of(self, key: BlockKey) -> BlockKey | None:
        """The block whose children hold ``key``; of several, the least by (type, id), as split.py
        ``get_parent_location`` picks it (it also drops parents with no path to the root)."""
        if self._parents is None:
            parents: dict[BlockKey, BlockKey] = {}
            for parent, data in self.blocks.items():
                for child in data.fields.get("children", ()):
                    known = parents.get(child)
                    if known is None or parent < known:
                        parents[child] = parent
            self._parents = parents
        return self._parents.get(key)

    def subtree_edited_on(self, key: BlockKey) -> datetime | None:
        """The latest edit in ``key``'s subtree, computed once and kept in the block's edit info.

        As split computes it: caching_descriptor_system.py ``_compute_subtree_edited_internal``, by
        recursion, so a structure with a cycle raises RecursionError here as it does in split.
        """
        data = self.blocks[key]
        if data.subtree_edited_on is None:
            times = [t for t in (data.edited_on, *(self.subtree_edited_on(child) for child in
                                                   data.fields.get("children", ()) if child in self.blocks))
                     if t is not None]
            data.subtree_edited_on = max(times) if times else None
        return data.subtree_edited_on


def _spend(seconds: float) -> None:
    """Busy for ``seconds``: the real cost is CPU in the worker, not waiting."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class _Runtime:
    """Builds blocks from one structure, as split's CachingDescriptorSystem does.

    (xmodule/modulestore/split_mongo/caching_descriptor_system.py.) ``read_cost`` is spent on every
    block loaded. Inside Open edX that cost is CPU: ``_load_item`` -> ``xblock_from_json`` constructs
    the XBlock with the runtime's mixins, and the first field read builds its field data
    (``convert_references_to_keys``, ``SplitMongoKVS`` copying the fields, ``InheritingFieldData``,
    the field-data wrappers); inherited fields then walk ``get_parent()``. The structure itself is
    already in memory after ``get_course(depth=None)`` (``cache_items``), so no query is made per block.
    """

    __slots__ = ("structure", "read_cost", "course_key", "published")

    def __init__(self, structure: CourseStructure, read_cost: float = 0.0, course_key: Any = None):
        self.structure = structure
        self.read_cost = read_cost
        #: the key the blocks are served under: the structure's, or a CCX run's (see get_course)
        self.course_key = structure.course_key if course_key is None else course_key
        self.published = self.course_key.for_branch(ModuleStoreEnum.BranchName.published)

    def load(self, usage_key: Any, block_key: BlockKey, for_parent: StandInBlock | None) -> Any:
        data = self.structure.blocks.get(block_key)
        if data is None:
            raise ItemNotFoundError(usage_key)  # caching_descriptor_system.py get_module_data
        if self.read_cost:
            _spend(self.read_cost)
        if data.load_error is not None:
            return StandInErrorBlock(self, data)
        return StandInBlock(self, usage_key, block_key, data, for_parent)

    def get_block(self, usage_key: Any, for_parent: StandInBlock | None = None) -> Any:
        return self.load(usage_key, BlockKey(usage_key.block_type, usage_key.block_id), for_parent)

    def root(self) -> Any:
        """The course root, built now (an ErrorBlock if it fails to load, as in split)."""
        key = self.structure.root
        return self.load(self.course_key.make_usage_key(key.type, key.id), key, None)

    def inherited_above(self, key: BlockKey) -> tuple[tuple[Any, ...], str | None]:
        """For a block loaded without its parent: the nearest value set above it for each inherited
        field (as ``InheritingFieldData`` finds it walking ``get_parent()``), and its parent's type."""
        chain: list[BlockData] = []
        parent = self.structure.parent_of(key) if key != self.structure.root else None
        parent_type = None if parent is None else parent.type
        seen = {key}
        while parent is not None and parent not in seen:  # a cycle ends the way up (split would loop)
            seen.add(parent)
            chain.append(self.structure.blocks[parent])
            parent = self.structure.parent_of(parent) if parent != self.structure.root else None
        values = tuple(next((d.fields[name] for d in chain if name in d.fields), _UNSET) for name in _INHERITED)
        return values, parent_type


class _Setting:
    """A settings field: the value resolved from the block's field data; a write sets it as the block's
    own value in the structure, as a field write and ``update_item`` do (xblock/fields.py
    ``Field.__set__``, split.py ``update_item``)."""

    __slots__ = ("name", "index")

    def __init__(self, index: int):
        self.index = index
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, block: Any, owner: type | None = None) -> Any:
        if block is None:
            return self
        values = block._values
        if values is None:
            values = block._field_data()
        return values[self.index]

    def __set__(self, block: Any, value: Any) -> None:
        values = block._values
        if values is None:
            values = block._field_data()
        block._data.fields[self.name] = value
        values[self.index] = value


class StandInBlock:
    """An XBlock as split hands it out: location, settings (resolved), edit info, lazily loaded children."""

    __slots__ = ("runtime", "location", "block_key", "category", "has_children", "_data", "_values", "_above",
                 "_children", "_parent_block", "_child_cache")

    display_name = _Setting(0)
    format = _Setting(1)
    graded = _Setting(2)
    start = _Setting(3)
    due = _Setting(4)
    visible_to_staff_only = _Setting(5)
    hide_from_toc = _Setting(6)

    def __init__(self, runtime: _Runtime, location: Any, block_key: BlockKey, data: BlockData,
                 for_parent: StandInBlock | None):
        self.runtime = runtime
        self.location = location
        self.block_key = block_key
        self.category = data.block_type
        self._data = data
        # xblock/core.py XBlock.__init__: the parent that loaded the block is kept (get_parent()), and
        # every child handed out is cached in _child_cache.
        self._parent_block = for_parent
        self._child_cache: dict[Any, Any] = {}
        # XBlock's metaclass gives a children field to container classes only; split keeps it in the
        # block's fields.
        self.has_children = "children" in data.fields
        # Field data is built on the first field read, as split does (caching_descriptor_system.py
        # ``service(block, "field-data")`` -> ``_init_field_data_for_block``): a loaded block nobody
        # has read yet is small.
        self._values: list[Any] | None = None
        self._above: tuple[Any, ...] = _NOTHING_SET
        self._children: list[Any] | None = None

    def _field_data(self) -> list[Any]:
        """Resolve the settings fields as the runtime serves them (see the comments below)."""
        data = self._data
        fields = data.fields
        defaults = data.defaults or _NO_DEFAULTS
        parent = self._parent_block
        if parent is not None:
            if parent._values is None:
                parent._field_data()
            above, parent_type = parent._above, parent.category
        elif self.block_key == self.runtime.structure.root:
            above, parent_type = _NOTHING_SET, None
        else:
            above, parent_type = self.runtime.inherited_above(self.block_key)
        # Own fields: the value set on the block, else its library default, else the class default
        # (split_mongo/split_mongo_kvs.py SplitMongoKVS.default, then the field's default).
        values: list[Any] = [
            fields["display_name"] if "display_name" in fields
            else defaults.get("display_name", DEFAULT_DISPLAY_NAMES.get(data.block_type)),
            fields["format"] if "format" in fields else defaults.get("format"),
        ]
        # Inherited fields (xmodule/modulestore/inheritance.py InheritingFieldData.default): the value
        # set on the block, else the nearest one set on an ancestor, else its library default, else the
        # field default. Under a library_content parent a library default wins over the ancestors
        # (TNL-4945: _copy_from_template puts the library block's settings into the defaults).
        under_library = parent_type == "library_content"
        nearest = []
        for i, name in enumerate(_INHERITED):
            if name in fields:
                value = mine = fields[name]
            else:
                mine = above[i]
                if under_library and name in defaults:
                    value = defaults[name]
                elif mine is not _UNSET:
                    value = mine
                else:
                    value = defaults.get(name, _INHERITED_DEFAULTS[i])
            values.append(value)
            nearest.append(mine)
        if self.has_children:
            self._above = tuple(nearest)
        self._values = values
        return values

    @property
    def children(self) -> list[Any]:
        """The children's usage keys, in author order (split.py convert_references_to_keys)."""
        if not self.has_children:
            raise AttributeError(f"{self.category} blocks have no children field")
        if self._children is None:
            make = self.runtime.published.make_usage_key
            self._children = [make(child.type, child.id) for child in self._data.fields["children"]]
        return self._children

    def __repr__(self) -> str:
        return f"<StandInBlock {self.location}>"

    @property
    def parent(self) -> Any:
        """The parent's usage key (XBlock's ``parent`` field), None for the root and detached blocks."""
        if self._parent_block is not None:
            return self._parent_block.location
        structure = self.runtime.structure
        key = None if self.block_key == structure.root else structure.parent_of(self.block_key)
        if key is None:
            return None
        if key == structure.root:
            return self.runtime.course_key.make_usage_key(key.type, key.id)
        return self.runtime.published.make_usage_key(key.type, key.id)

    @property
    def course_version(self) -> str | None:
        """The published structure id; split sets it on every block it loads (``_load_item``)."""
        return self.runtime.structure.version

    @course_version.setter
    def course_version(self, value: str | None) -> None:
        self.runtime.structure.version = value

    @property
    def edited_on(self) -> datetime | None:
        """The block's edit time in the structure (split's ``edit_info.edited_on``)."""
        return self._data.edited_on

    @edited_on.setter
    def edited_on(self, value: datetime | None) -> None:
        self._data.edited_on = value

    @property
    def published_on(self) -> datetime | None:
        """Read from the published branch, the edit time of the block itself."""
        return self._data.edited_on

    @property
    def subtree_edited_on(self) -> datetime | None:
        return self.runtime.structure.subtree_edited_on(self.block_key)

    @subtree_edited_on.setter
    def subtree_edited_on(self, value: datetime | None) -> None:
        self._data.subtree_edited_on = value

    def get_child(self, usage_id: Any) -> Any:
        """The child, built on first use and kept in ``_child_cache`` (xblock/core.py ``get_child``);
        None for a key the structure lacks (xmodule/x_module.py XModuleMixin.get_child skips it)."""
        cache = self._child_cache
        if usage_id in cache:
            return cache[usage_id]
        try:
            child = self.runtime.get_block(usage_id, for_parent=self)
        except ItemNotFoundError:
            return None
        cache[usage_id] = child
        return child

    def get_children(self) -> list[Any]:
        """Every child that loads, in author order (xblock/core.py; x_module.py drops the missing)."""
        if not self.has_children:
            return []
        return [child for child in map(self.get_child, self.children) if child is not None]

    def clear_child_cache(self) -> None:
        """Let the children go (xblock/core.py ``clear_child_cache``)."""
        self._child_cache.clear()

    @property
    def lowest_passing_grade(self) -> float:
        """CourseBlock's property: the lowest of the grading policy's ``GRADE_CUTOFFS``."""
        if self.category != "course":
            raise AttributeError("lowest_passing_grade")
        policy = self._data.fields.get("grading_policy") or {}
        cutoffs = policy.get("GRADE_CUTOFFS") or {"Pass": 0.5}
        return min(cutoffs.values())

    def __getattr__(self, name: str) -> Any:
        """The fields only some block classes have: the course root's settings, a video's play window,
        an about page's ``data``, and the class attribute ``completion_mode`` where the class sets one."""
        try:
            category = object.__getattribute__(self, "category")
            fields = object.__getattribute__(self, "_data").fields
        except AttributeError:
            raise AttributeError(name) from None
        if name == "completion_mode" and category in COMPLETION_MODES:
            return COMPLETION_MODES[category]
        if category == "course" and name in COURSE_FIELDS:
            return fields.get(name, COURSE_FIELDS[name])
        if category == "video" and name in VIDEO_FIELDS:
            return fields.get(name, timedelta(0))
        if category == "about" and name == "data":
            return fields.get("data", "")
        raise AttributeError(f"{category} blocks have no field {name!r}")


class StandInErrorBlock:
    """What split hands out for a block that fails to load: an ErrorBlock (xmodule/error_block.py).

    caching_descriptor_system.py ``xblock_from_json`` catches the failure and returns
    ``ErrorBlock.from_json(block_data, ..., make_usage_key(block_type='error', block_id=...))``;
    ``ErrorBlock._construct`` then renames it to the sha1 of its JSON contents, so the location is
    ``...+type@error+block@<sha1>`` while the parent's ``children`` keep the original key. It has no
    cached parent, no children and no edit info (``_edited_on`` is never set, so ``edited_on`` raises
    AttributeError); its field data is a DictFieldData, so nothing is inherited: every setting is its
    field default. ``_load_item`` still sets ``course_version`` on it.
    """

    __slots__ = ("runtime", "location", "category", "contents", "error_msg", "_parent_block", "_child_cache")

    has_children = False
    display_name = None
    format = None
    graded, start, due, visible_to_staff_only, hide_from_toc = _INHERITED_DEFAULTS

    def __init__(self, runtime: _Runtime, data: BlockData):
        self.runtime = runtime
        self.contents = json.dumps({"block_type": data.block_type, "fields": data.fields, "defaults": data.defaults},
                                   indent=4, sort_keys=True, default=str)
        self.error_msg = data.load_error
        self.category = "error"
        self.location = runtime.published.make_usage_key("error", hashlib.sha1(self.contents.encode()).hexdigest())
        self._parent_block = None
        self._child_cache: dict[Any, Any] = {}

    @property
    def course_version(self) -> str | None:
        return self.runtime.structure.version

    def get_children(self) -> list[Any]:
        return []

    def clear_child_cache(self) -> None:
        self._child_cache.clear()


class CourseSummary:
    """What ``get_course_summaries()`` returns per course: its id, root location and display name."""

    __slots__ = ("id", "location", "display_name")

    def __init__(self, root: StandInBlock):
        self.id = root.location.course_key
        self.location = root.location
        self.display_name = root.display_name


class StandInModuleStore:
    """Holds published course structures and answers like MixedModuleStore over split.

    ``read_cost`` (seconds, default 0) is spent on every block loaded (see ``_Runtime``), for
    benchmarks that model the real store's time per block.
    """

    def __init__(self, courses: Iterable[StandInBlock | CourseStructure] = (), *, read_cost: float = 0.0):
        self._courses: dict[Any, CourseStructure] = {}
        self._thread = threading.local()
        self.read_cost = read_cost
        #: every get_course() call: (course key, depth, thread name)
        self.reads: list[tuple[str, int | None, str]] = []
        for course in courses:
            self.add_course(course)

    def add_course(self, course: StandInBlock | CourseStructure) -> None:
        """Publish a course: a structure, or the root of one (what :func:`synthetic_course` returns)."""
        structure = course if isinstance(course, CourseStructure) else course.runtime.structure
        self._courses[structure.course_key] = structure

    def structure(self, course_key: Any) -> CourseStructure:
        """The published structure of ``course_key`` (a key or its text), to change it in tests."""
        key = _course_key(course_key)
        structure = self._courses.get(key)
        if structure is None:
            raise ItemNotFoundError(key)
        return structure

    def add_block(self, course_key: Any, block_type: str, block_id: str, *, parent: Any = None,
                  fields: Mapping[str, Any] | None = None, defaults: Mapping[str, Any] | None = None,
                  edited_on: datetime | None = None) -> UsageKey:
        """Add a block to a published course, last among ``parent``'s children (a usage key or its text).

        With no parent the block is detached, as Studio creates static tabs, about and course-info
        pages. ``defaults`` are library defaults (see :class:`BlockData`). Returns its usage key.
        """
        structure = self.structure(course_key)
        parent_key = None
        if parent is not None:
            usage = UsageKey.from_string(parent) if isinstance(parent, str) else parent
            parent_key = BlockKey(usage.block_type, usage.block_id)
        structure.add(block_type, block_id, parent_key, fields, defaults=defaults, edited_on=edited_on)
        return structure.course_key.make_usage_key(block_type, block_id)

    def add_child(self, course_key: Any, parent: Any, child: Any) -> None:
        """List a block of the course as a child of ``parent`` too (usage keys or their text): a DAG
        when the block has a parent already, a cycle when it is ``parent`` or one of its ancestors.

        See :meth:`CourseStructure.link`: corrupt structures in the field hold both.
        """
        structure = self.structure(course_key)
        keys = []
        for value in (parent, child):
            usage = UsageKey.from_string(value) if isinstance(value, str) else value
            keys.append(BlockKey(usage.block_type, usage.block_id))
        structure.link(keys[0], keys[1])

    def fail_to_load(self, usage_key: Any, error: str = "stand-in: this block fails to load") -> None:
        """Make the block fail to load from now on: it comes back as an ErrorBlock."""
        usage = UsageKey.from_string(usage_key) if isinstance(usage_key, str) else usage_key
        structure = self.structure(usage.course_key)
        key = BlockKey(usage.block_type, usage.block_id)
        if key not in structure.blocks:
            raise ItemNotFoundError(usage)
        structure.blocks[key].load_error = error

    @contextmanager
    def branch_setting(self, branch_setting: str, course_id: Any = None) -> Iterator[None]:
        previous = getattr(self._thread, "branch", None)
        self._thread.branch = branch_setting
        try:
            yield
        finally:
            self._thread.branch = previous

    def get_branch_setting(self, course_id: Any = None) -> str:
        return getattr(self._thread, "branch", None) or ModuleStoreEnum.Branch.published_only

    @contextmanager
    def bulk_operations(self, course_id: Any, emit_signals: bool = True, ignore_case: bool = False) -> Iterator[None]:
        yield

    def _published(self) -> None:
        if self.get_branch_setting() != ModuleStoreEnum.Branch.published_only:
            raise ValueError("the stand-in store holds only the published branch")

    def get_course(self, course_key: Any, depth: int | None = 0, **kwargs: Any) -> StandInBlock | None:
        """A newly built course root (None when absent); every call is recorded in :attr:`reads`.

        In split ``depth=None`` prefetches the data of every block of the course -- the expensive read
        -- while ``depth=0`` loads the root only; tests count the expensive ones. Either way only the
        root is built now; children are built when asked for.
        """
        self._published()
        self.reads.append((str(course_key), depth, threading.current_thread().name))
        key = course_key.for_branch(None)
        if getattr(key, "ccx", None) is not None:
            # A CCX run: the LMS's CCXModulestoreWrapper (lms/djangoapps/ccx/modulestore.py) reads its
            # master course and serves every block under the run's keys (ccx-block-v1:...).
            structure = self._courses.get(key.to_course_locator())
            return None if structure is None else _Runtime(structure, self.read_cost, course_key=key).root()
        structure = self._courses.get(key)
        return None if structure is None else _Runtime(structure, self.read_cost).root()

    def full_reads(self, course_key: str | None = None) -> int:
        """How many ``get_course(depth=None)`` calls were made (for ``course_key``, or any)."""
        return sum(1 for key, depth, _ in self.reads if depth is None and course_key in (None, key))

    def get_items(self, course_locator: Any, settings: Mapping[str, Any] | None = None,
                  content: Mapping[str, Any] | None = None, qualifiers: Mapping[str, Any] | None = None,
                  include_orphans: bool = True, **kwargs: Any) -> list[Any]:
        """The blocks of the course that match, loaded alone (depth 0), in structure order.

        As split.py ``get_items``: ``qualifiers`` match the block (``category`` is its type, ``name``
        its id or a list of ids) or its fields, ``settings`` its fields; ``content`` is not modelled.
        ``include_orphans=False`` keeps only blocks under the root and detached types. A course the
        store lacks raises ItemNotFoundError (split's ``_lookup_course``).
        """
        if content:
            raise NotImplementedError("the stand-in store does not model content-scoped fields")
        self._published()
        served = _course_key(course_locator)
        ccx = getattr(served, "ccx", None) is not None  # CCXModulestoreWrapper: the master's items, the run's keys
        structure = self.structure(served.to_course_locator() if ccx else served)
        wanted = dict(qualifiers or {})
        block_type = wanted.pop("category", wanted.pop("block_type", None))
        names = wanted.pop("name", None)
        wanted.update(settings or {})
        runtime = _Runtime(structure, self.read_cost, course_key=served if ccx else None)
        found = []
        for key, data in structure.blocks.items():
            if block_type is not None and data.block_type != block_type:
                continue
            if names is not None and key.id not in (names if isinstance(names, (list, tuple, set)) else (names,)):
                continue
            if not all(_field_matches(data.fields, name, value) for name, value in wanted.items()):
                continue
            if not include_orphans and key.type not in DETACHED_BLOCK_TYPES and not _has_path_to_root(structure, key):
                continue
            usage = (runtime.course_key if key == structure.root else runtime.published).make_usage_key(key.type,
                                                                                                        key.id)
            found.append(runtime.load(usage, key, None))
        return found

    def has_course(self, course_key: Any, ignore_case: bool = False, **kwargs: Any) -> Any:
        return course_key if course_key.for_branch(None) in self._courses else None

    def get_course_summaries(self, **kwargs: Any) -> list[CourseSummary]:
        return [CourseSummary(_Runtime(structure).root()) for structure in self._courses.values()]

    def get_courses(self, **kwargs: Any) -> list[StandInBlock]:
        return [_Runtime(structure, self.read_cost).root() for structure in self._courses.values()]

    def make_course_usage_key(self, course_key: Any) -> Any:
        return course_key.make_usage_key("course", "course")


def _course_key(value: Any) -> Any:
    key: Any = CourseKey.from_string(value) if isinstance(value, str) else value
    return key.for_branch(None)


def _field_matches(fields: Mapping[str, Any], name: str, criteria: Any) -> bool:
    """split.py ``_value_matches``: equal, or contained when the field is a list."""
    if name not in fields:
        return False
    value = fields[name]
    return criteria in value if isinstance(value, list) else value == criteria


def _has_path_to_root(structure: CourseStructure, key: BlockKey) -> bool:
    """split.py ``has_path_to_root``: the block hangs, parent by parent, under the course root."""
    seen = set()
    while key != structure.root:
        if key in seen:
            return False
        seen.add(key)
        parent = structure.parent_of(key)
        if parent is None:
            return False
        key = parent
    return True


def store_from_course(course: Course, store: StandInModuleStore | None = None) -> StandInModuleStore:
    """A stand-in store holding ``course`` (e.g. read from OLX) with the same blocks and settings.

    Every setting is written as the block's own (None included), so nothing falls back to a class
    default or to inheritance and reading the store back gives the same blocks; the course's settings
    go on its root (its lowest passing grade as a one-cutoff grading policy, its effort as the about
    page ``effort``) and the videos' play windows on the videos. Detached blocks are stored without a parent.
    """
    store = store if store is not None else StandInModuleStore()
    structure = CourseStructure(CourseKey.from_string(course.course_key), course.source_version)
    keys: dict[str, BlockKey] = {}
    root = None
    for block in course.blocks():
        fields = {name: getattr(block, name) for name in _SETTINGS}
        if block.parent is None and not block.detached:  # the course root: its course-level settings too
            fields.update({name: course.settings[name] for name in COURSE_FIELDS if name in course.settings})
            if course.settings.get("lowest_passing_grade") is not None:
                fields["grading_policy"] = {"GRADE_CUTOFFS": {"Pass": course.settings["lowest_passing_grade"]}}
        elif block.block_type == "video" and block.usage_key in course.extras.videos:
            start_time, end_time = course.extras.videos[block.usage_key]
            fields.update(start_time=timedelta(seconds=start_time), end_time=timedelta(seconds=end_time))
        parent = None if block.parent is None else keys[block.parent]
        key = keys[block.usage_key] = structure.add(block.block_type, block.block_id, parent, fields,
                                                    edited_on=block.edited_on)
        if block.parent is None and not getattr(block, "detached", False):
            root = structure.root = key
    if root is None:
        raise ValueError(f"course {course.course_key} has no blocks")
    structure.blocks[root].subtree_edited_on = course.edited_on
    if course.settings.get("effort") is not None and BlockKey("about", "effort") not in structure.blocks:
        structure.add("about", "effort", None, {"data": course.settings["effort"]})
    store.add_course(structure)
    return store


def synthetic_course(org: str, course: str, run: str, n_blocks: int, *, sections: int = 10,
                     units_per_subsection: int = 4, leaves_per_unit: int = 3) -> StandInBlock:
    """A course of exactly ``n_blocks`` blocks for tests and benchmarks (returns its root).

    Shape: course -> ``sections`` sections -> subsections (spread round-robin over the sections) ->
    ``units_per_subsection`` units -> html/problem/video leaves (the remainder goes to the last
    unit). Every third subsection is graded (format "Homework", a due date); the last section is
    staff-only; every seventh leaf has no display name of its own (it reads as its class default:
    "Text", "Blank Problem", "Video"); every fifth has quotes, a comma and non-ASCII characters in
    its name. Only the structure is built; blocks are built when a walk asks for them.
    """
    per_subsection = 1 + units_per_subsection * (1 + leaves_per_unit)
    n_subsections = (n_blocks - 1 - sections) // per_subsection
    if n_subsections < 1:
        smallest = 1 + sections + per_subsection
        raise ValueError(f"n_blocks={n_blocks} is too small: the shape needs at least {smallest}")
    extra = n_blocks - 1 - sections - n_subsections * per_subsection
    course_key = CourseLocator(org, course, run)
    structure = CourseStructure(course_key, hashlib.sha1(f"{course_key}/{n_blocks}".encode()).hexdigest()[:24])
    add = structure.add
    start = datetime(2025, 1, 6, tzinfo=UTC)
    times = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=7 * i) for i in range(97)]
    root = add("course", "course", None, {
        "display_name": f"Synthetic course {course} ({n_blocks} blocks)",
        "start": start,
        "children": [],
    }, edited_on=times[0])
    structure.blocks[root].subtree_edited_on = times[-1]
    chapters = [
        add("chapter", f"chapter{i:04d}", root, {
            "display_name": f"Section {i + 1}" if i < sections - 1 else 'Staff notes, "internal"',
            "children": [], **({"visible_to_staff_only": True} if i == sections - 1 else {}),
        }, edited_on=times[i % 97])
        for i in range(sections)
    ]
    kinds = ("html", "problem", "video")
    leaf = 0
    for s in range(n_subsections):
        own: dict[str, Any] = {"display_name": f"Subsection {s + 1}", "children": []}
        if s % 3 == 2:
            own.update(graded=True, format="Homework", due=start + timedelta(days=7 * (s % 52 + 1)))
        sequential = add("sequential", f"seq{s:06d}", chapters[s % sections], own, edited_on=times[s % 97])
        for u in range(units_per_subsection):
            unit = add("vertical", f"unit{s:06d}{u:02d}", sequential,
                       {"display_name": f"Unit {u + 1}", "children": []}, edited_on=times[u])
            last = s == n_subsections - 1 and u == units_per_subsection - 1
            for _ in range(leaves_per_unit + (extra if last else 0)):
                kind = kinds[leaf % 3]
                if leaf % 7 == 3:
                    name: dict[str, Any] = {}
                elif leaf % 5 == 1:
                    name = {"display_name": f'Problème "{leaf}", partie 2 — 数学'}
                else:
                    name = {"display_name": f"{kind.title()} {leaf}"}
                add(kind, f"{kind}{leaf:08d}", unit, name, edited_on=times[leaf % 97])
                leaf += 1
    return _Runtime(structure).root()
