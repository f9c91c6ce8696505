"""``python -m event_sinks.aspects ddl|sync``: Aspects' table DDL, and the backfill/repair of Aspects' tables.

::

    python -m event_sinks.aspects ddl                 # Aspects' CREATE statements for ASPECTS['DATABASE']
    python -m event_sinks.aspects sync [--dry-run]    # copy every current dump Aspects lacks, apply tombstones

Settings come from Django's ``EVENT_SINKS`` when ``DJANGO_SETTINGS_MODULE`` is set (inside Open edX:
``./manage.py cms shell -c "from event_sinks.aspects import sync; sync()"`` does the same), else from
the defaults; ``--dsn`` (or ``EVENT_SINKS_DSN``), ``--database`` and ``--unit-numbering`` override them,
and ``sync`` switches the compatibility on for its own run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..clickhouse import get_connection
from ..conf import get_settings
from ..errors import EventSinksError
from .ddl import statements
from .rows import NUMBERINGS
from .sync import sync


def parser() -> argparse.ArgumentParser:
    """The command line: a command and the options overriding the settings."""
    parser = argparse.ArgumentParser(prog="python -m event_sinks.aspects", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("ddl", "sync"))
    parser.add_argument("--dsn", help="the engine (default: EVENT_SINKS['DSN'] or EVENT_SINKS_DSN)")
    parser.add_argument("--database", help="Aspects' database (default: EVENT_SINKS['ASPECTS']['DATABASE'])")
    parser.add_argument("--unit-numbering", choices=NUMBERINGS, help="default: EVENT_SINKS['ASPECTS']")
    parser.add_argument("--dry-run", action="store_true", help="sync: print what would be done, do nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (1 with one line on stderr when the settings or engine refuse)."""
    args = parser().parse_args(argv)
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django

        django.setup()
    base = get_settings()
    aspects: dict[str, Any] = dict(base.aspects)
    if args.database:
        aspects["DATABASE"] = args.database
    if args.unit_numbering:
        aspects["UNIT_NUMBERING"] = args.unit_numbering
    if args.command == "sync":
        aspects["ENABLED"] = True
    overrides: dict[str, Any] = {"ASPECTS": aspects}
    if args.dsn:
        overrides["DSN"] = args.dsn
    try:
        settings = get_settings(overrides)
        if args.command == "ddl":
            print(";\n\n".join(statements(aspects["DATABASE"], settings.cluster)) + ";")
            return 0
        actions = sync(get_connection(settings), dry_run=args.dry_run, options=settings.aspects)
    except EventSinksError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        print(("would " if args.dry_run else "") + str(action))
    print(f"{len(actions)} action(s){' (dry run)' if args.dry_run else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
