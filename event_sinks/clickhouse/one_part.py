"""Settings that make an ``INSERT ... SELECT`` write its rows as one part: all of them visible at once, or none.

ClickHouse makes a single inserted block atomic, not a statement: an ``INSERT ... SELECT`` writes a
part per block its pipeline forms, and parallel insert streams or small blocks would split a dump
across parts, each visible as soon as it is written. One insert thread, and squashing thresholds and
a block size above the largest dump a reader accepts, make the whole result one block, so one part.
"""

from __future__ import annotations

#: Rows of one statement squashed into one block (above the largest course a reader accepts).
ONE_BLOCK_ROWS = 2_000_000
ONE_BLOCK_BYTES = 1 << 30


def one_part_settings(token_parameter: str = "token") -> str:
    """The ``SETTINGS`` clause of an atomic ``INSERT ... SELECT``; ``{token_parameter:String}`` is its dedup token.

    The token makes a replay by the driver (after a lost answer) a no-op where the table
    deduplicates (Replicated tables; plain ones with a deduplication window).
    """
    return (f"SETTINGS max_insert_threads = 1, min_insert_block_size_rows = {ONE_BLOCK_ROWS}, "
            f"min_insert_block_size_bytes = {ONE_BLOCK_BYTES}, max_insert_block_size = {ONE_BLOCK_ROWS}, "
            f"insert_deduplication_token = {{{token_parameter}:String}}")
