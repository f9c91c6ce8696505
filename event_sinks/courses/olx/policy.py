"""A course's identity and block settings: XML attributes, with ``policy.json`` over them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..course import has_lone_surrogate, replace_lone_surrogates
from ..errors import CourseReadError
from .export import Export, report, safe_rel
from .item import Item
from .values import (
    UNSET,
    bool_value,
    date_value,
    int_value,
    relative_time,
    string_value,
    xml_bool,
    xml_date,
    xml_int,
    xml_relative_time,
    xml_string,
)


class CourseReader:
    """What one ``read_olx`` call learned: where the export is, its keys, policy and settings rules."""

    def __init__(self, export: Export, strict: bool, max_depth: int):
        self.export = export
        self.strict = strict
        self.max_depth = max_depth
        self.prefix = ""
        self.course_key = ""
        self.org = ""
        self.run_name = ""
        self.policy: dict = {}
        self.policy_file = ""  # the policy file read, relative to the export

    def load_policy(self) -> None:
        for rel in (f"policies/{self.run_name}/policy.json", f"policies/{self.run_name}.json"):
            if not safe_rel(rel):  # a run of "." or "..": no policy folder inside the export can be named so
                continue
            try:
                with self.export.open(rel) as fileobj:
                    data = json.loads(fileobj.read().decode("utf-8"))
            except FileNotFoundError:
                continue
            except RecursionError:
                report(CourseReadError("unreadable policy: JSON nested too deeply to decode", rel, None), self.strict,
                       self.export.source)
                continue
            except (CourseReadError, OSError, ValueError) as exc:
                problem = exc if isinstance(exc, CourseReadError) else CourseReadError(
                    f"unreadable policy: {exc}", rel, getattr(exc, "lineno", None))
                report(problem, self.strict, self.export.source)
                continue
            if not isinstance(data, dict):
                report(CourseReadError("policy is not a JSON object", rel, None), self.strict,
                        self.export.source)
                continue
            if data:
                self.policy = data
                self.policy_file = rel
                return

    def settings(self, item: Item) -> tuple:
        """The block's own settings: attributes, then policy.json over them; UNSET where not set.

        A value that cannot be read (an unreadable or out-of-range date, JSON nested too deeply) is a
        problem naming the file, line and attribute -- the policy file and ``"TYPE/ID" NAME`` when it
        comes from the policy -- and is treated as not set; text holding lone surrogates (which JSON
        escapes can spell, and which cannot be stored) is a problem too, each surrogate replaced by
        U+FFFD.
        """
        attrs = item.attrs
        source = self.export.source
        # the root's entry is "course/RUN"; a <course> nested in the tree has an id of its own (never "course")
        policy_key = item.tag + "/" + (self.run_name if item.tag == "course" and item.block_id == "course"
                                       else item.block_id)
        policy = self.policy.get(policy_key) if self.policy else None
        if not isinstance(policy, dict):
            policy = None
        values = []
        for name, from_xml, from_json in FIELDS:
            if policy is not None and name in policy:
                raw, convert = policy[name], from_json
            elif name in attrs:
                raw, convert = attrs[name], from_xml
            else:
                values.append(None if from_json is string_value else UNSET)
                continue
            try:
                value = convert(raw)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                why = "a value nested too deeply" if isinstance(exc, RecursionError) else exc
                report(self._located(f"{why}; treated as not set", item, policy_key, name, convert is from_json),
                       self.strict, source)
                values.append(UNSET)
                continue
            if value.__class__ is str and has_lone_surrogate(value):
                report(self._located("lone surrogates (not text, not encodable as UTF-8); each replaced by U+FFFD",
                                     item, policy_key, name, convert is from_json), self.strict, source)
                value = replace_lone_surrogates(value)
            values.append(value)
        return tuple(values)

    def own_values(self, item: Item, fields: tuple[tuple[str, Callable[[str], Any], Callable[[Any], Any]], ...],
                   ) -> dict[str, Any]:
        """The values ``item`` sets itself (attribute, then policy.json) of ``fields``; the others absent.

        A value that cannot be read is logged as a warning naming where it is (never raised, even when
        strict: these are extras beyond the outline, a course that reads today keeps reading), and
        treated as not set.
        """
        policy_key = item.tag + "/" + (self.run_name if item.tag == "course" and item.block_id == "course"
                                       else item.block_id)
        policy = self.policy.get(policy_key) if self.policy else None
        if not isinstance(policy, dict):
            policy = None
        found: dict[str, Any] = {}
        for name, from_xml, from_json in fields:
            if policy is not None and name in policy:
                raw, convert = policy[name], from_json
            elif name in item.attrs:
                raw, convert = item.attrs[name], from_xml
            else:
                continue
            try:
                found[name] = convert(raw)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                report(self._located(f"{exc}; treated as not set", item, policy_key, name, convert is from_json),
                       False, self.export.source)
                continue
            if isinstance(found[name], str) and has_lone_surrogate(found[name]):
                found[name] = replace_lone_surrogates(found[name])
        return found

    def lowest_passing_grade(self) -> float | None:
        """The lowest of ``GRADE_CUTOFFS`` in ``policies/RUN/grading_policy.json`` (None without one)."""
        rel = f"policies/{self.run_name}/grading_policy.json"
        if not safe_rel(rel):
            return None
        try:
            with self.export.open(rel) as fileobj:
                data = json.loads(fileobj.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (CourseReadError, OSError, ValueError, RecursionError) as exc:
            report(CourseReadError(f"unreadable grading policy: {exc}", rel, None), False, self.export.source)
            return None
        cutoffs = data.get("GRADE_CUTOFFS") if isinstance(data, dict) else None
        if not isinstance(cutoffs, dict) or not cutoffs:
            return None
        try:
            return float(min(float(v) for v in cutoffs.values()))
        except (TypeError, ValueError):
            report(CourseReadError("GRADE_CUTOFFS holds a value that is not a number", rel, None), False,
                   self.export.source)
            return None

    def about_text(self, name: str) -> str | None:
        """The text of ``about/NAME.html`` (None when the export has none)."""
        rel = f"about/{name}.html"
        try:
            with self.export.open(rel) as fileobj:
                text = fileobj.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except (CourseReadError, OSError) as exc:
            report(CourseReadError(f"unreadable about page: {exc}", rel, None), False, self.export.source)
            return None
        return replace_lone_surrogates(text.strip()) if text.strip() else None

    def _located(self, problem: str, item: Item, policy_key: str, name: str, in_policy: bool) -> CourseReadError:
        if in_policy:
            return CourseReadError(f'"{policy_key}" {name}: {problem}', self.policy_file, None)
        return CourseReadError(f"<{item.tag}> {name}: {problem}", item.file, item.line)



# name, converter for XML attribute text, converter for policy.json values
FIELDS: tuple[tuple[str, Callable[[str], Any], Callable[[Any], Any]], ...] = (
    ("display_name", xml_string, string_value),
    ("format", xml_string, string_value),
    ("graded", xml_bool, bool_value),
    ("start", xml_date, date_value),
    ("due", xml_date, date_value),
    ("visible_to_staff_only", xml_bool, bool_value),
    ("hide_from_toc", xml_bool, bool_value),
)


#: The course root's settings ``Course.settings`` holds besides those above (xmodule/course_block.py
#: CourseFields): name, converter for XML attribute text, converter for policy.json values.
COURSE_FIELDS: tuple[tuple[str, Callable[[str], Any], Callable[[Any], Any]], ...] = (
    ("start", xml_date, date_value),
    ("end", xml_date, date_value),
    ("enrollment_start", xml_date, date_value),
    ("enrollment_end", xml_date, date_value),
    ("advertised_start", xml_string, string_value),
    ("announcement", xml_date, date_value),
    ("self_paced", xml_bool, bool_value),
    ("invitation_only", xml_bool, bool_value),
    ("max_student_enrollments_allowed", xml_int, int_value),
    ("enable_proctored_exams", xml_bool, bool_value),
    ("entrance_exam_enabled", xml_bool, bool_value),
    ("language", xml_string, string_value),
)

#: A video's play window (xmodule/video_block/video_xfields.py: ``RelativeTime`` fields).
VIDEO_FIELDS: tuple[tuple[str, Callable[[str], Any], Callable[[Any], Any]], ...] = (
    ("start_time", xml_relative_time, relative_time),
    ("end_time", xml_relative_time, relative_time),
)
