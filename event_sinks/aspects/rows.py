"""The statements that write Aspects' rows: one INSERT ... SELECT per committed dump, one DELETE per tombstone.

Rows are never sent from Python: each statement reads the committed rows of one dump (``dump_id``) from
the sink's ``*_dumps`` table and formats them into Aspects' layout on the server. What each Aspects
column receives:

``course_blocks`` (from ``course_outline_dumps``)
    ``org``, ``course_key``, ``location``, ``display_name`` as they are; ``order`` = ``order_in_course``
    + 1 (1-based pre-order, the course root is 1, detached blocks last); ``edited_on`` as Python's
    ``str()`` of the datetime (what platform-plugin-aspects writes; '' when the source has none);
    ``xblock_data_json`` = ``{"course", "run", "block_type", "detached", "graded", "completion_mode",
    "section", "subsection", "unit", "tags"}`` with ``detached`` and ``graded`` as 0/1 (``graded`` is the
    inherited value, as Open edX's ``block.graded`` is); ``completion_mode`` '' and ``tags`` [] because
    the outline does not read them. Section/subsection/unit numbers are ours
    (``section_ordinal``...) or, with ``UNIT_NUMBERING = "aspects"``, counted as platform-plugin-aspects
    counts them: chapters in pre-order, sequentials since the last chapter, verticals since the last
    chapter or sequential -- split_test group verticals included.

``course_overviews`` (from ``course_overviews_dumps``)
    the dates as Python's ``str()`` ('' when None), ``self_paced`` from ``pacing``, ``course_data_json``
    with Aspects' keys, filled from the sink's columns of the same names where it has them (JSON null
    where it does not), ``created`` likewise ('' when the sink has no such column), ``modified`` as
    ``str()`` of the model's ``modified``.

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

from collections.abc import Sequence

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


def course_blocks_insert(database: str, dumps_table: str, aspects_database: str, numbering: str) -> str:
    """INSERT ... SELECT of one committed ``course_outline`` dump into Aspects' ``course_blocks``.

    Parameters: ``keys`` (Array(String)), ``dump_id`` (UUID), ``token`` (String).
    """
    identifier(database, "database")
    identifier(aspects_database, "Aspects' database")
    key_parts = "splitByChar('+', splitByChar(':', toString(course_key))[2])"
    data = (
        "concat('{\"course\": ', toJSONString(parts[2]), ', \"run\": ', toJSONString(parts[3]),\n"
        "        ', \"block_type\": ', toJSONString(toString(block_type)),\n"
        "        ', \"detached\": ', toString(toUInt8(detached)), ', \"graded\": ', toString(toUInt8(graded)),\n"
        "        ', \"completion_mode\": \"\", \"section\": ', toString(section),\n"
        "        ', \"subsection\": ', toString(subsection), ', \"unit\": ', toString(unit), ', \"tags\": []}')"
    )
    columns = ", ".join(quote(c) for c in COURSE_BLOCKS.column_names)
    return (
        f"INSERT INTO {_table(aspects_database, COURSE_BLOCKS)} ({columns})\n{one_part_settings()}\n"  # noqa: S608
        f"SELECT toString(org), toString(course_key), location, display_name,\n    {data},\n"
        f"    toInt32(order_in_course + 1), {python_str('edited_on')}, dump_id, {dumped_at_text()}\n"
        f"FROM (SELECT *, {key_parts} AS parts FROM ({_blocks_source(database, dumps_table, numbering)}))"
    )


def course_overviews_insert(database: str, dumps_table: str, aspects_database: str,
                            available: Sequence[str]) -> str:
    """INSERT ... SELECT of one committed ``course_overviews`` dump into Aspects' ``course_overviews``.

    ``available``: the columns of the sink's table; Aspects' ``created`` and course_data_json keys are
    taken from columns of the same names when the sink has them. Parameters as for blocks.
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
    data = "concat('{', " + ", ', ', ".join(pieces) + ", '}')"
    created = python_str(quote("created")) if "created" in have else "''"
    columns = ", ".join(quote(c) for c in COURSE_OVERVIEWS.column_names)
    return (
        f"INSERT INTO {_table(aspects_database, COURSE_OVERVIEWS)} ({columns})\n{one_part_settings()}\n"
        "SELECT toString(org), course_key, ifNull(display_name, ''),\n"
        f"    {python_str('start')}, {python_str('`end`')}, {python_str('enrollment_start')},\n"
        f"    {python_str('enrollment_end')}, pacing = 'self',\n    {data},\n"
        f"    {created}, {python_str('modified')}, dump_id, {dumped_at_text()}\n"
        f"FROM {quote(database)}.{quote(dumps_table)}\n"
        "WHERE course_key IN {keys:Array(String)} AND dump_id = {dump_id:UUID}"
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
