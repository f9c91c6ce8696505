"""A writer host in its own process, for the clock-skew tests: run it under libfaketime to skew its clock.

    EVENT_SINKS_DSN=http://user:password@127.0.0.1:PORT/DATABASE \\
        LD_PRELOAD=.../libfaketimeMT.so.1 FAKETIME=+5m python -P tests/support/clock_writer.py

It prints ``READY <its time.time()>`` once connected with the schema in place, then obeys one command
per line on stdin and answers each with one line:

``dump GENERATION``  dump course :data:`KEY` as :func:`course` builds it for GENERATION -> ``DONE <status>``
``delete``           tombstone :data:`KEY` -> ``DONE <status>``
``quit``             exit

No Django project is needed: settings come from the defaults and the environment. The test process
imports :func:`course` from here, so both sides publish the same content for a generation.
"""

from __future__ import annotations

import sys
import time

KEY = "course-v1:Clock+C1+R"


def course(generation: int):
    """The stand-in course root of :data:`KEY` as published in ``generation`` (10 + generation blocks)."""
    from event_sinks.testing.modulestore import synthetic_course

    root = synthetic_course("Clock", "C1", "R", 10 + generation, sections=2, units_per_subsection=2,
                            leaves_per_unit=2)
    root.course_version = f"gen{generation}"
    return root


def main() -> int:
    from event_sinks.clickhouse import Connection
    from event_sinks.conf import get_settings
    from event_sinks.courses.sources import ModulestoreSource, set_course_source
    from event_sinks.dumping import Dumper, dump
    from event_sinks.sinks.course_outline import CourseOutlineSink
    from event_sinks.testing.modulestore import StandInModuleStore

    store = StandInModuleStore()
    set_course_source(ModulestoreSource(store))
    engine = Connection(get_settings())
    sink = CourseOutlineSink()
    Dumper(sink, engine).ensure_schema()
    print(f"READY {time.time():.3f}", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "quit":
            break
        if command == "dump":
            store.add_course(course(int(args[0])))
            summary = dump(sink, [KEY], connection=engine)
        else:
            summary = dump(sink, [KEY], connection=engine, delete=True)
        result = summary.results[0]
        print(f"DONE {result.status} {result.error or ''}".strip(), flush=True)
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
