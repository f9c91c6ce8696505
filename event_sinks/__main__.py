"""``python -m event_sinks``: the command line (:mod:`event_sinks.cli`)."""

import sys

from .cli import main

sys.exit(main())
