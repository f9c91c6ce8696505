"""A dump run in its own process, for the kill campaign of ``tests/test_reliability.py``.

    EVENT_SINKS_DSN=http://user:password@127.0.0.1:PORT/DATABASE \\
        python -P tests/support/reliability_worker.py GENERATION [--courses N] [--batch-size B]

Dumps every course of a generated stand-in modulestore (``build_store(GENERATION, N)``) with the
``course_outline`` sink into the engine named by ``EVENT_SINKS_DSN`` (the password travels in the
environment, never on the command line), skipping courses whose current dump already has their
version. It starts up (imports, connection, schema) first and prints ``READY``; it then waits for a
line on stdin, so the test can start the next worker while it checks the previous round. During the
run it prints ``CALL <n> <method> <table or statement>`` before every engine call and flushes, so the
test can SIGKILL it at a chosen point; at the end it prints ``DONE <summary>``.

No Django project is needed: the runner reads its settings from the defaults and the environment.
The test process imports ``build_courses``/``blocks_of``/``course_key`` from here, so it knows exactly
what every generation of every course holds.
"""

from __future__ import annotations

import argparse
import sys

#: Shape of the generated courses: small, so a run is many short dumps of a few batches each.
SHAPE = {"sections": 2, "units_per_subsection": 2, "leaves_per_unit": 2}
ORG = "Kill"


def course_key(index: int) -> str:
    return f"course-v1:{ORG}+C{index:02d}+R"


def blocks_of(generation: int, index: int) -> int:
    """Block count of course ``index`` in ``generation``: it changes from one generation to the next."""
    return 10 + (generation * 7 + index * 5) % 17


def version_of(generation: int, index: int) -> str:
    return f"gen{generation}-c{index:02d}"


def build_courses(generation: int, courses: int) -> list:
    """The roots of ``courses`` stand-in courses as published in ``generation``."""
    from event_sinks.testing.modulestore import synthetic_course

    roots = []
    for index in range(courses):
        root = synthetic_course(ORG, f"C{index:02d}", "R", blocks_of(generation, index), **SHAPE)
        root.course_version = version_of(generation, index)
        roots.append(root)
    return roots


def build_store(generation: int, courses: int):
    """A stand-in modulestore holding ``courses`` courses as published in ``generation``."""
    from event_sinks.testing.modulestore import StandInModuleStore

    return StandInModuleStore(build_courses(generation, courses))


def _announce(engine) -> None:
    """Print a line before each engine call (the test kills the process at one of them)."""
    counter = iter(range(1, 1 << 62))

    def wrap(name):
        method = getattr(engine, name)

        def announced(first, *args, **kwargs):
            what = " ".join(str(first).split())[:60]
            sys.stdout.write(f"CALL {next(counter)} {name} {what}\n")
            sys.stdout.flush()
            return method(first, *args, **kwargs)

        setattr(engine, name, announced)

    for name in ("command", "query", "insert_columns"):
        wrap(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generation", type=int)
    parser.add_argument("--courses", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=6)
    args = parser.parse_args(argv)

    from event_sinks.clickhouse import Connection
    from event_sinks.conf import get_settings
    from event_sinks.courses.sources import ModulestoreSource, set_course_source
    from event_sinks.dumping import Dumper, dump
    from event_sinks.sinks.course_outline import CourseOutlineSink

    settings = get_settings()
    if settings.dsn.startswith("chdb:"):
        parser.error("set EVENT_SINKS_DSN to the HTTP endpoint (the test process must read the same engine)")
    set_course_source(ModulestoreSource(build_store(args.generation, args.courses)))
    engine = Connection(settings)
    sink = CourseOutlineSink()
    Dumper(sink, engine).ensure_schema()  # connected, schema in place: what is left is the dump itself
    from clickhouse_connect.driver import options

    getattr(options, "pd", None)  # the driver's first insert imports pandas (~0.5 s): do it before READY
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    if not sys.stdin.readline():
        return 2  # the test went away
    _announce(engine)
    summary = dump(sink, connection=engine, batch_size=args.batch_size, skip_unchanged=True)
    sys.stdout.write(f"DONE {summary}\n")
    sys.stdout.flush()
    engine.close()
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
