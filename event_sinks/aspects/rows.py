"""The statements that write Aspects' rows: one INSERT ... SELECT per committed dump, one DELETE per tombstone.

Rows are never sent from Python: each statement reads the committed rows of one dump (``dump_id``) from
the sink's ``*_dumps`` table and formats them into Aspects' layout on the server. What each Aspects
column receives:

``course_blocks`` (from ``course_outline_dumps``)
    ``org``, ``course_key``, ``location``, ``display_name`` as they are; ``order`` = ``order_in_course``
    + 1 (1-based pre-order, the course root is 1, detached blocks last); ``edited_on`` as Python's
    ``str()`` of the datetime (what platform-plugin-aspects writes; '' when the source has none);
    ``xblock_data_json`` = ``{"course", "run", "block_type", "detached", "graded", "completion_mode",
    "section", "subsection", "unit", "tags"}`` (and for videos ``"video_start_time"``,
    ``"video_end_time"``: seconds, JSON numbers) with ``detached`` and ``graded`` as 0/1 (``graded`` is
    the inherited value, as Open edX's ``block.graded`` is). ``completion_mode``, ``tags`` and the video
    times are not in the outline's table: they come with the statement's parameters (:func:`block_params`,
    from the course the dump read), '' / [] / 0 where it has none. Section/subsection/unit numbers are ours
    (``section_ordinal``...) or, with ``UNIT_NUMBERING = "aspects"``, counted as platform-plugin-aspects
    counts them: chapters in pre-order, sequentials since the last chapter, verticals since the last
    chapter or sequential -- split_test group verticals included.

``course_overviews`` (from ``course_overviews_dumps``)
    the dates as Python's ``str()`` ('' when None), ``self_paced`` from ``pacing``, ``modified`` as
    ``str()`` of the model's ``modified``; ``course_data_json`` and ``created`` come with the
    statement's parameters (:func:`course_data_json`, from the model's objects at commit), else from
    the sink's columns of the same names, else JSON null / ''.

``course_overviews`` (from ``course_outline_dumps``, where the ``course_overviews`` sink does not run)
    one row per course from the course root's settings the dump read (:func:`course_overview_insert`).

Both: ``dump_id`` = our dump's id, and ``time_last_dumped`` = our dump's ``dumped_at`` as
``YYYY-MM-DD HH:MM:SS.ffffff+00:00``: one value for every row of a dump, sorting as it orders (a dump
delayed between its read and its write never outranks a dump of newer content, in Aspects as in our
ledger).

Each insert reaches the table as one block (one part): the dump is in Aspects' table whole or not at
all. ``insert_deduplication_token`` is the dump id: Replicated tables drop a replayed insert; Aspects'
plain MergeTree tables have no deduplication window and ignore it, which is why the feed itself
checks for the dump id before it writes again (:mod:`.feed`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..clickhouse.one_part import one_part_settings
from ..core.schema import identifier, quote
from .ddl import COURSE_BLOCKS, COURSE_OVERVIEWS, AspectsTable

NUMBERINGS = ("ours", "aspects")

#: ``time_last_dumped``: fixed width, so the strings sort as the times do.
TIME_FORMAT = "%Y-%m-%d %H:%i:%S.%f+00:00"
#: The keys of Aspects' course_data_json, in Aspects' order, and whether the value is a number.
COURSE_DATA_KEYS = (
    ("advertised_start", False), ("announcement", False), ("lowest_passing_grade", True),
    ("invitation_only", False), ("max_student_enrollments_allowed", True), ("effort", False),
    ("enable_proctored_exams", False), ("entrance_exam_enabled", False), ("external_id", False),
    ("language", False),
)


def _table(database: str, table: AspectsTable) -> str:
    return f"{quote(database)}.{quote(table.name)}"


def python_str(expr: str) -> str:
    """SQL for Python's ``str()`` of a UTC datetime column: seconds, microseconds only when not 0; '' for NULL."""
    whole = f"formatDateTime({expr}, '%Y-%m-%d %H:%i:%S+00:00', 'UTC')"
    micro = f"formatDateTime({expr}, '%Y-%m-%d %H:%i:%S.%f+00:00', 'UTC')"
    return f"ifNull(if(toUnixTimestamp64Micro({expr}) % 1000000 = 0, {whole}, {micro}), '')"


def dumped_at_text(expr: str = "dumped_at") -> str:
    """SQL for ``time_last_dumped``: a dump's ``dumped_at`` in :data:`TIME_FORMAT`."""
    return f"formatDateTime({expr}, '{TIME_FORMAT}', 'UTC')"


def _blocks_source(database: str, dumps_table: str, numbering: str) -> str:
    """The committed rows of one dump with their section/subsection/unit numbers."""
    if numbering not in NUMBERINGS:
        raise ValueError(f"UNIT_NUMBERING must be one of {list(NUMBERINGS)}, found {numbering!r}")
    source = f"{quote(database)}.{quote(dumps_table)}"
    where = "WHERE course_key IN {keys:Array(String)} AND dump_id = {dump_id:UUID}"
    columns = ("org, course_key, location, display_name, block_type, detached, graded, order_in_course, "
               "edited_on, dump_id, dumped_at")
    if numbering == "ours":
        return (f"SELECT {columns}, section_ordinal AS section, subsection_ordinal AS subsection, "
                f"unit_ordinal AS unit\nFROM {source}\n{where}")
    # platform-plugin-aspects: walk the blocks in pre-order; a chapter starts a section (subsection and
    # unit back to 0), a sequential a subsection (unit back to 0), every vertical is the next unit; the
    # detached blocks (last) are 0:0:0. As running sums: c, s, v count chapters, sequentials and
    # verticals so far; a subsection number is s minus s at the last chapter, a unit v minus v at the
    # last chapter or sequential.
    window = ("WINDOW w AS (PARTITION BY course_key ORDER BY order_in_course "
              "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
    counted = (
        f"SELECT {columns},\n"  # noqa: S608 - only validated identifiers
        "        block_type = 'chapter' AND NOT detached AS is_chapter,\n"
        "        block_type = 'sequential' AND NOT detached AS is_sequential,\n"
        "        sum(toUInt32(is_chapter)) OVER w AS c, sum(toUInt32(is_sequential)) OVER w AS s,\n"
        "        sum(toUInt32(block_type = 'vertical' AND NOT detached)) OVER w AS v\n"
        f"    FROM {source}\n    {where}\n    {window}"
    )
    marked = (
        f"SELECT {columns}, c, s, v, max(if(is_chapter, s, 0)) OVER w AS s_at,\n"  # noqa: S608 - validated identifiers
        "        max(if(is_chapter OR is_sequential, v, 0)) OVER w AS v_at\n"
        f"    FROM ({counted})\n    {window}"
    )
    return (f"SELECT {columns}, if(detached, 0, c) AS section, if(detached, 0, s - s_at) AS subsection,\n"
            f"    if(detached, 0, v - v_at) AS unit\nFROM ({marked})")


def not_copied(aspects_database: str, table: AspectsTable, key: str = "toString(course_key)") -> str:
    """A condition true for the keys of which ``table`` holds no row of the dump yet (``keys``, ``dump_id``):
    what lets one statement both check and copy (a replay inserts nothing)."""
    return (f"{key} NOT IN (SELECT course_key FROM {_table(aspects_database, table)} "  # noqa: S608 - identifiers
            "WHERE course_key IN {keys:Array(String)} AND dump_id = {dump_id:UUID})")


def course_blocks_insert(database: str, dumps_table: str, aspects_database: str, numbering: str, *,
                         guard: bool = False) -> str:
    """INSERT ... SELECT of one committed ``course_outline`` dump into Aspects' ``course_blocks``.

    Parameters: ``keys`` (Array(String)), ``dump_id`` (UUID), ``token`` (String), and those of
    :func:`block_params` (completion modes by type, tags and video times by location). ``guard``:
    leave out the keys Aspects' table holds rows of this dump for (:func:`not_copied`).
    """
    identifier(database, "database")
    identifier(aspects_database, "Aspects' database")
    key_parts = "splitByChar('+', splitByChar(':', toString(course_key))[2])"
    data = (
        "concat('{\"course\": ', toJSONString(parts[2]), ', \"run\": ', toJSONString(parts[3]),\n"
        "        ', \"block_type\": ', toJSONString(toString(block_type)),\n"
        "        ', \"detached\": ', toString(toUInt8(detached)), ', \"graded\": ', toString(toUInt8(graded)),\n"
        "        ', \"completion_mode\": ',\n"
        "        toJSONString(transform(toString(block_type), {mode_types:Array(String)},\n"
        "            {modes:Array(String)}, '')),\n"
        "        ', \"section\": ', toString(section),\n"
        "        ', \"subsection\": ', toString(subsection), ', \"unit\": ', toString(unit),\n"
        "        ', \"tags\": ', transform(location, {tag_locations:Array(String)}, {tag_lists:Array(String)}, '[]'),\n"
        "        if(toString(block_type) = 'video', concat(', \"video_start_time\": ',\n"
        "            toString(transform(location, {video_locations:Array(String)},\n"
        "                {video_starts:Array(Float64)}, 0.)),\n"
        "            ', \"video_end_time\": ',\n"
        "            toString(transform(location, {video_locations:Array(String)},\n"
        "                {video_ends:Array(Float64)}, 0.))),\n"
        "            ''), '}')"
    )
    columns = ", ".join(quote(c) for c in COURSE_BLOCKS.column_names)
    return (
        f"INSERT INTO {_table(aspects_database, COURSE_BLOCKS)} ({columns})\n{one_part_settings()}\n"  # noqa: S608
        f"SELECT toString(org), toString(course_key), location, display_name,\n    {data},\n"
        f"    toInt32(order_in_course + 1), {python_str('edited_on')}, dump_id, {dumped_at_text()}\n"
        f"FROM (SELECT *, {key_parts} AS parts FROM ({_blocks_source(database, dumps_table, numbering)}))"
        + (f"\nWHERE {not_copied(aspects_database, COURSE_BLOCKS)}" if guard else "")
    )


def course_overviews_insert(database: str, dumps_table: str, aspects_database: str,
                            available: Sequence[str], *, guard: bool = False) -> str:
    """INSERT ... SELECT of one committed ``course_overviews`` dump into Aspects' ``course_overviews``.

    ``available``: the columns of the sink's table. Parameters: ``keys``, ``dump_id``, ``token``, and
    ``data_keys``/``data_json``/``created`` (Array(String)): per key its ``course_data_json`` and
    ``created`` (:func:`course_data_json`); a key not among them takes the sink's columns of the same
    names where it has them, else JSON null / ''.
    """
    identifier(database, "database")
    identifier(aspects_database, "Aspects' database")
    have = set(available)

    def value(name: str, number: bool) -> str:
        if name not in have:
            return "'null'"
        column = quote(name)
        if number:
            return f"ifNull(toString(toFloat64({column})), 'null')"
        return f"ifNull(toJSONString({column}), 'null')"

    pieces = [f"'\"{name}\": ', {value(name, number)}" for name, number in COURSE_DATA_KEYS]
    pieces.append("'\"tags\": []'")
    columns_data = "concat('{', " + ", ', ', ".join(pieces) + ", '}')"
    data = f"transform(course_key, {{data_keys:Array(String)}}, {{data_json:Array(String)}}, {columns_data})"
    created_column = python_str(quote("created")) if "created" in have else "''"
    created = f"transform(course_key, {{data_keys:Array(String)}}, {{created:Array(String)}}, {created_column})"
    columns = ", ".join(quote(c) for c in COURSE_OVERVIEWS.column_names)
    return (
        f"INSERT INTO {_table(aspects_database, COURSE_OVERVIEWS)} ({columns})\n{one_part_settings()}\n"
        "SELECT toString(org), course_key, ifNull(display_name, ''),\n"
        f"    {python_str('start')}, {python_str('`end`')}, {python_str('enrollment_start')},\n"
        f"    {python_str('enrollment_end')}, pacing = 'self',\n    {data},\n"
        f"    {created}, {python_str('modified')}, dump_id, {dumped_at_text()}\n"
        f"FROM {quote(database)}.{quote(dumps_table)}\n"
        "WHERE course_key IN {keys:Array(String)} AND dump_id = {dump_id:UUID}"
        + (f" AND {not_copied(aspects_database, COURSE_OVERVIEWS, 'course_key')}" if guard else "")
    )


def tombstone_delete(aspects_database: str, table: AspectsTable) -> str:
    """DELETE of the rows of deleted keys written up to a tombstone (``keys``, ``until``: its time as text)."""
    return (f"DELETE FROM {_table(aspects_database, table)} "  # noqa: S608 - only validated identifiers
            "WHERE course_key IN {keys:Array(String)} AND time_last_dumped <= {until:String}")


def count_dump(aspects_database: str, table: AspectsTable) -> str:
    """Rows of one dump already in an Aspects table, per key (``keys``, ``dump_id``)."""
    return (f"SELECT course_key, count() FROM {_table(aspects_database, table)} "  # noqa: S608 - only validated identifiers
            "WHERE course_key IN {keys:Array(String)} AND dump_id = {dump_id:UUID} GROUP BY course_key")


def delete_dump(aspects_database: str, table: AspectsTable) -> str:
    """DELETE of the rows of one dump (``keys``, ``dump_id``): a partial copy, before it is written again."""
    return (f"DELETE FROM {_table(aspects_database, table)} "  # noqa: S608 - only validated identifiers
            "WHERE course_key IN {keys:Array(String)} AND dump_id = {dump_id:UUID}")


#: The parameters of :func:`course_blocks_insert` when nothing is known beyond the outline's table.
NO_BLOCK_PARAMS: dict[str, list[Any]] = {
    "mode_types": [], "modes": [], "tag_locations": [], "tag_lists": [], "video_locations": [], "video_starts": [],
    "video_ends": [],
}


def block_params(completion_modes: Mapping[str, str], tags: Mapping[str, Sequence[int]],
                 videos: Mapping[str, tuple[float, float]]) -> dict[str, list[Any]]:
    """The parameters carrying what the outline's table lacks: each type's completion mode, the tag ids
    of tagged blocks, the play window of videos that have one (a video not listed has 0 and 0)."""
    windows = {loc: times for loc, times in videos.items() if times != (0.0, 0.0)}
    tagged = {loc: ids for loc, ids in tags.items() if ids}
    return {
        "mode_types": list(completion_modes), "modes": [str(m) for m in completion_modes.values()],
        "tag_locations": list(tagged),
        "tag_lists": [json.dumps(sorted(int(i) for i in ids)) for ids in tagged.values()],
        "video_locations": list(windows), "video_starts": [float(t[0]) for t in windows.values()],
        "video_ends": [float(t[1]) for t in windows.values()],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def course_data_json(values: Mapping[str, Any], tags: Sequence[int] = ()) -> str:
    """Aspects' ``course_data_json``: its keys in its order from ``values`` (null where absent), then ``tags``.

    As platform-plugin-aspects' serializer writes them: ``lowest_passing_grade`` a float, the others as
    they are (dates as ``str()``, which its serializer cannot write: a datetime stops its ``json.dumps``).
    """
    data: dict[str, Any] = {}
    for name, number in COURSE_DATA_KEYS:
        value = _json_value(values.get(name))
        if number and value is not None and name == "lowest_passing_grade":
            value = float(value)
        data[name] = value
    data["tags"] = sorted(int(t) for t in tags)
    return json.dumps(data)


def str_or_empty(value: Any) -> str:
    """Python's ``str()`` of a value, '' for None (what platform-plugin-aspects' CharFields write)."""
    return "" if value is None else str(value)


def course_overview_insert(aspects_database: str) -> str:
    """INSERT of one course's ``course_overviews`` row from its parameters (``org``, ``course_key``,
    ``display_name``, ``course_start``, ``course_end``, ``enrollment_start``, ``enrollment_end``,
    ``created``, ``modified``, ``course_data_json``, ``time_last_dumped``: String; ``self_paced``: Bool;
    ``dump_id``: UUID; ``keys``: the course key alone); nothing when the table holds the dump's row already."""
    identifier(aspects_database, "Aspects' database")
    columns = ", ".join(quote(c) for c in COURSE_OVERVIEWS.column_names)
    return (
        f"INSERT INTO {_table(aspects_database, COURSE_OVERVIEWS)} ({columns})\n{one_part_settings()}\n"  # noqa: S608
        "SELECT {org:String}, {course_key:String}, {display_name:String}, {course_start:String},\n"
        "    {course_end:String}, {enrollment_start:String}, {enrollment_end:String}, {self_paced:Bool},\n"
        "    {course_data_json:String}, {created:String}, {modified:String}, {dump_id:UUID},\n"
        "    {time_last_dumped:String}\n"
        f"WHERE {not_copied(aspects_database, COURSE_OVERVIEWS, '{course_key:String}')}"
    )
