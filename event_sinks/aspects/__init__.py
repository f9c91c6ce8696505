"""Aspects compatibility: Aspects' ``course_blocks`` and ``course_overviews`` fed from complete dumps.

Opt-in (``EVENT_SINKS["ASPECTS"]["ENABLED"]``): the dumper calls :func:`committed` right after each
ledger commit, which copies the dump into Aspects' table in Aspects' layout (:mod:`.rows`) or applies
a tombstone; :func:`sync` backfills and repairs from the ledger; :mod:`.ddl` holds Aspects' table
shapes. See docs/aspects.md.

This package reads the sinks' tables by name and never imports the sinks: it sits below the dumping
layer, which calls it.
"""

from .ddl import COURSE_BLOCKS, COURSE_OVERVIEWS, statements
from .feed import FEEDS, committed
from .sync import Action, sync

__all__ = ["COURSE_BLOCKS", "COURSE_OVERVIEWS", "FEEDS", "Action", "committed", "statements", "sync"]
