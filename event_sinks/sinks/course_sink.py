"""CourseSink: the base of sinks dumped by course key -- the course source and the publish triggers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar

from opaque_keys import InvalidKeyError as OpaqueInvalidKeyError
from opaque_keys.edx.keys import CourseKey

from ..aspects import FEEDS
from ..conf import get_settings
from ..core.columns import ColumnBatch
from ..core.sink import Sink
from ..core.triggers import Trigger
from ..courses import Course
from ..courses.ccx import ccx_keys
from ..courses.sources import CourseSource, get_course_source, read_course, shared_course, shared_reads
from ..errors import InvalidKeyError, NotHandledKeyError


def _kwarg(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda kwargs: kwargs.get(name)


def _course_of(data_kwarg: str, attribute: str) -> Callable[[dict[str, Any]], Any]:
    def key(kwargs: dict[str, Any]) -> Any:
        data = kwargs.get(data_kwarg)
        value = getattr(data, attribute, None) if data is not None else None
        return getattr(value, "course_key", value)  # usage keys carry their course key

    return key


#: Rows per column batch behind ``rows()`` (dry runs, library readers): small, it only bounds memory.
ROWS_BATCH = 4096

#: Courses per dump in a backfill, at most (:attr:`CourseSink.keys_per_dump`). Measured: engine seconds
#: of two backfill passes over 300 stand-in courses x 1,000 blocks (embedded engine, 2 shared cores, load
#: 2.5-4, so +-30%), by courses per dump: 1: 25.5 + 51.8 s; 5: 7.3 + 16.1; 10: 9.9 + 13.6; 20: 11.5 + 6.1;
#: 50: 4.3 + 5.8; 100: 2.1 + 4.5; 200: 3.7 + 4.3. Past 50 the gain is within the noise, and the whole
#: pass is then bound by reading the courses (about 26k rows/s of walk alone), while a bigger dump
#: loses more work when the engine fails it and holds its courses back from readers longer.
COURSES_PER_DUMP = 50
#: Rows a dump of several courses aims at (:attr:`CourseSink.rows_per_dump`): two inserts of the default
#: BATCH_SIZE; 1,000-block courses fill COURSES_PER_DUMP first.
ROWS_PER_DUMP = 100_000

#: A Studio publish fires several of these; dispatch coalesces them into one dump per course.
COURSE_TRIGGERS = (
    Trigger("xmodule.modulestore.django:SignalHandler.course_published", _kwarg("course_key")),
    Trigger("xmodule.modulestore.django:SignalHandler.course_deleted", _kwarg("course_key"), delete=True),
    Trigger("openedx_events.content_authoring.signals.COURSE_CATALOG_INFO_CHANGED",
            _course_of("catalog_info", "course_key")),
    Trigger("openedx_events.content_authoring.signals.XBLOCK_PUBLISHED", _course_of("xblock_info", "usage_key")),
    Trigger("openedx_events.content_authoring.signals.XBLOCK_DELETED", _course_of("xblock_info", "usage_key")),
    Trigger("openedx_events.content_authoring.signals.COURSE_IMPORT_COMPLETED", _course_of("course", "course_key")),
    Trigger("openedx_events.content_authoring.signals.COURSE_RERUN_COMPLETED", _course_of("course", "course_key")),
)


class CourseSink(Sink, abstract=True):
    """A sink dumped by course key, reading the published course from the course source."""

    key_field = "course_key"
    triggers = COURSE_TRIGGERS
    # A backfill (a run of many courses) dumps several courses per dump: a dump costs six engine
    # requests whatever its size, which capped one-course dumps of 1,000 blocks near 8k rows/s. The
    # engine's share stops falling past a few dozen courses per dump (figures at COURSES_PER_DUMP). The
    # rows bound keeps dumps of big courses small (a 100k-block course is a dump of its own). A publish
    # dumps one course per dump (dump_together), and so does a run over OLX exports (dump_group).
    keys_per_dump = COURSES_PER_DUMP
    rows_per_dump = ROWS_PER_DUMP
    #: Bump when the rows of an unchanged course change (a new column): its version then differs
    #: from the ledger's, so every course dumped under an older revision is dumped again by the next
    #: publish or ``dump_sink --all``, instead of being skipped as unchanged.
    revision: ClassVar[int] = 1

    def normalize_key(self, key: str) -> str:
        """The course key without branch or version: what tracking events and the published branch use.

        Studio's signals may carry ``+branch@draft-branch`` or ``+version@...`` (an XBLOCK_DELETED
        location as its caller gave it); kept, the key would name another course and read the draft.
        Content libraries (``library-v1:``) are not courses: :class:`NotHandledKeyError`.
        """
        try:
            parsed = CourseKey.from_string(str(key))
        except OpaqueInvalidKeyError:
            raise InvalidKeyError(
                f"expected a course key like 'course-v1:ORG+COURSE+RUN', found {key!r}"
            ) from None
        if not getattr(parsed, "is_course", True):
            raise NotHandledKeyError(f"{key!r} is a content library, not a course: the course sinks skip it")
        if hasattr(parsed, "for_branch"):
            parsed = parsed.for_branch(None)
        if hasattr(parsed, "version_agnostic"):
            parsed = parsed.version_agnostic()
        return str(parsed)

    def keys(self) -> Iterator[str]:
        return get_course_source().keys()

    def fan_out(self, key: str) -> list[str]:
        """A course's CCX runs (where the platform has CCX on): their content is the course's."""
        return ccx_keys(key)

    def keys_since(self, since: datetime) -> Iterator[str]:
        return get_course_source().keys_since(since)

    def job(self) -> AbstractContextManager[object]:
        """Course sinks share course reads within a job: one read per course for all of them."""
        return shared_reads()

    def dump_group(self) -> int:
        """Courses per dump in a backfill: one where the source reads a whole course to tell its version.

        A run asks every key's version before its dump; a shared read keeps only the course read last,
        so a dump of several courses would read each again (OLX exports: a tarball extracted twice).
        The modulestore tells a version from the course index or the root alone. One too for a sink that
        feeds Aspects with the compatibility on (see below).
        """
        if self.name in FEEDS and get_settings().aspects.get("ENABLED"):
            # Aspects' feed takes each course's walk extras (completion modes, tags, play windows, the root's
            # settings for course_overviews) from the course read at commit: only the last of a group's.
            return 1
        try:
            source = get_course_source()
        except Exception:  # no source here: every key fails alone, as it would one by one
            return 1
        return self.keys_per_dump if type(source).version is not CourseSource.version else 1

    def course(self, key: str) -> Course:
        """The course ``key`` (read once per job, whichever course sink asks first)."""
        return read_course(key)

    def version(self, key: str) -> str:
        """The published version, as cheaply as the source can tell it (modulestore: the course root only).

        When another course sink of this job has read the course already, its version is that read's:
        a dump is never labelled with a version newer than the rows it writes.
        """
        shared = shared_course(key)
        return self._revised(shared.source_version if shared is not None else get_course_source().version(key))

    def read_version(self, key: str, announced: str) -> str:
        """The version of the course read for the rows (the cheap version may be older)."""
        shared = shared_course(key)
        return self._revised(shared.source_version) if shared is not None else announced

    def _revised(self, version: str) -> str:
        """The course's version as this sink stores it: with the sink's revision when above 1."""
        return version if self.revision == 1 or not version else f"{version}+r{self.revision}"

    def serialize(self, key: str) -> Iterator[tuple]:
        return self.rows(self.course(key))

    def serialize_columns(self, key: str, batch_size: int) -> Iterator[ColumnBatch] | None:
        if type(self).batches is CourseSink.batches:
            return None  # a subclass with rows() only: the dumper takes serialize()
        return self.batches(self.course(key), batch_size)

    def rows(self, course: Course) -> Iterator[tuple]:
        """Rows of ``course`` as tuples in field order (by default: the column batches, transposed)."""
        if type(self).batches is CourseSink.batches:
            raise NotImplementedError(f"sink {self.name} implements neither rows() nor batches()")
        for batch in self.batches(course, ROWS_BATCH):
            yield from batch.rows()

    def batches(self, course: Course, batch_size: int) -> Iterator[ColumnBatch]:
        """Rows of ``course`` as column batches of at most ``batch_size`` rows (the dumper's fast path).

        Subclasses implement this or :meth:`rows`; implementing this gives both.
        """
        raise NotImplementedError
