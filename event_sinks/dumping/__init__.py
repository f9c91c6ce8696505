"""Dumping: keys of a sink serialized, written in batches, committed through the ledger, pruned.

:func:`dump` and :func:`run_one` (:mod:`.jobs`) are the one path every caller takes; :class:`Dumper`
writes and commits one dump; :mod:`.ledger` commits and reads versions; :mod:`.retention` deletes
superseded rows; :mod:`.backfills` records ``dump_sink`` runs for ``--resume``.
"""

from .dumper import Dumper
from .jobs import dump, dump_together, jobs_of, run_one, with_fan_out
from .results import DumpResult, DumpSummary

__all__ = ["DumpResult", "DumpSummary", "Dumper", "dump", "dump_together", "jobs_of", "run_one", "with_fan_out"]
