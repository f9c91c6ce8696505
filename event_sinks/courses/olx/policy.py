"""A course's identity and block settings: XML attributes, with ``policy.json`` over them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..course import has_lone_surrogate, replace_lone_surrogates
from ..errors import CourseReadError
from .export import Export, report, safe_rel
from .item import Item
from .values import UNSET, bool_value, date_value, string_value, xml_bool, xml_date, xml_string


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
