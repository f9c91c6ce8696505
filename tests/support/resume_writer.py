"""``dump_sink`` on a host of its own, for the resume tests: run it under libfaketime to skew its clock.

    EVENT_SINKS_DSN=http://user:password@127.0.0.1:PORT/DATABASE \\
        LD_PRELOAD=.../libfaketimeMT.so.1 FAKETIME=+5m python -P tests/support/resume_writer.py

It sets Django up with the test settings, registers the ``test_words`` sink
(:mod:`tests.support.sample_sink`) and prints ``READY <its time.time()>``. It then obeys one JSON
object per line on stdin and answers each with one JSON line::

    {"source": {"doc0": ["w"]}, "interrupt": "doc3", "args": ["--all", "--force"]}
    -> {"out": "...", "err": "...", "error": "..." or null}

``source`` updates the sink's in-memory documents (a list of words each), ``interrupt`` (optional)
makes the run stop with Ctrl-C when it reaches that document, and ``args`` are the arguments of
``dump_sink test_words``. ``error`` is the command's error message, if it failed. End of input exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from io import StringIO
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: ``tests`` is importable
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from event_sinks.registry import registry
    from tests.support import sample_sink

    registry.register(sample_sink.WordsSink, "tests")
    original = sample_sink.WordsSink.serialize
    print(f"READY {time.time():.3f}", flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        sample_sink.SOURCE.update(order.get("source", {}))
        stop_at = order.get("interrupt")

        def serialize(self, key, stop_at=stop_at):
            if key == stop_at:
                raise KeyboardInterrupt
            return original(self, key)

        sample_sink.WordsSink.serialize = serialize
        out, err, error = StringIO(), StringIO(), None
        try:
            call_command("dump_sink", "test_words", *order["args"], stdout=out, stderr=err)
        except CommandError as exc:
            error = str(exc)
        finally:
            sample_sink.WordsSink.serialize = original
        print(json.dumps({"out": out.getvalue(), "err": err.getvalue(), "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
