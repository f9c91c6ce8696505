"""What the Aspects compatibility adds to a dump: a 100k-block course dumped with it off, then on.

    python benchmarks/aspects_overhead.py                 # 100,000 blocks, 5 dumps per setting
    python benchmarks/aspects_overhead.py --blocks 10000 --repeat 3
    python benchmarks/aspects_overhead.py --latency 40    # publish -> queryable in Aspects, demo course

``--latency N``: the demo course (event_sinks/demo/course, an OLX copy) published N times with the
compatibility on and the sync dispatch: each time a chapter is renamed, COURSE_CATALOG_INFO_CHANGED
is sent, and the clock stops when Aspects' ``course_blocks``, read as aspects-dbt reads it (the row
of the latest ``time_last_dumped`` per location), shows the new title. Prints p50/p95/max (target:
p50 <= 150 ms), and the same with the compatibility off (our own view queried) for comparison.

The course comes from the modulestore stand-in (``synthetic_course``); the engine is embedded (chDB) in
a temporary directory. Dumps alternate between the settings (off, ours, aspects numbering, off, ...) so
that a change in the machine's load falls on all of them; each timing is one ``dump("course_outline")``
call, the copy into Aspects' ``course_blocks`` included when on. Prints the median and the best of
each, and the overhead of each compatibility setting over "off" (the target: at most 20%, judged on the
medians; on a shared machine the best runs are the steadier signal, so both are printed).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = {
    "off": {"ENABLED": False},
    "on (ours)": {"ENABLED": True, "DATABASE": "event_sink", "UNIT_NUMBERING": "ours"},
    "on (aspects numbering)": {"ENABLED": True, "DATABASE": "event_sink", "UNIT_NUMBERING": "aspects"},
}


def latency(publishes: int) -> None:
    """Publish -> queryable on the demo course, compatibility on (Aspects' table read) and off (our view)."""
    import math
    import shutil

    from event_sinks.cli import configure

    data = tempfile.mkdtemp(prefix="aspects-latency-")
    configure(f"chdb://{data}")
    from datetime import UTC, datetime

    from django.conf import settings
    from opaque_keys.edx.keys import CourseKey
    from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData
    from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED

    from event_sinks.clickhouse import close_connections, get_connection
    from event_sinks.courses.sources import OlxSource, set_course_source
    from event_sinks.receivers import connect_all

    work = Path(tempfile.mkdtemp(prefix="aspects-demo-"))
    course = work / "course"
    shutil.copytree(REPO / "event_sinks" / "demo" / "course", course)
    set_course_source(OlxSource([course]))
    connect_all()
    key = "course-v1:EventSinks+Demo101+2026"
    chapter_key = "block-v1:EventSinks+Demo101+2026+type@chapter+block@welcome"
    info = CourseCatalogData(course_key=CourseKey.from_string(key), name="Demo",
                             schedule_data=CourseScheduleData(start=datetime.now(UTC), pacing="self"))
    chapter = course / "chapter" / "welcome.xml"
    original = chapter.read_text()
    base = {**settings.EVENT_SINKS, "DATABASE": "bench", "DISPATCH": "sync"}
    aspects_read = (  # aspects-dbt's read: per location, the row of the latest time_last_dumped
        "SELECT argMax(display_name, time_last_dumped) FROM event_sink.course_blocks "
        "WHERE location = {loc:String} GROUP BY location")
    ours_read = "SELECT display_name FROM bench.course_outline WHERE location = {loc:String}"
    results = {}
    modes = (("on (Aspects' course_blocks)", True, aspects_read), ("off (our view)", False, ours_read))
    for mode, enabled, read in modes:
        settings.EVENT_SINKS = {**base, "ASPECTS": {"ENABLED": enabled, "DATABASE": "event_sink"}}
        close_connections()
        engine = get_connection()
        times = []
        for i in range(publishes + 1):
            title = f"Welcome {mode[:2]} {i}"
            chapter.write_text(original.replace('display_name="Welcome"', f'display_name="{title}"'))
            start = time.perf_counter()
            COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=info)
            found = engine.query(read, {"loc": chapter_key})
            elapsed = time.perf_counter() - start
            assert found == [(title,)], f"publish {i} ({mode}) not visible: {found}"
            if i:  # the first publish of each mode makes the schema and Aspects' tables
                times.append(elapsed * 1000)
        times.sort()
        results[mode] = (statistics.median(times), times[math.ceil(len(times) * 0.95) - 1], times[-1])
    shutil.rmtree(work)
    print(f"publish -> queryable, demo course, sync dispatch, {publishes} publishes per setting "
          "(embedded engine):")
    for mode, (p50, p95, worst) in results.items():
        print(f"  {mode:<28} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {worst:6.1f} ms")
    p50 = results["on (Aspects' course_blocks)"][0]
    print(f"target: p50 <= 150 ms with the compatibility on -> {'met' if p50 <= 150 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=int, metavar="N", help="measure publish -> queryable over N publishes")
    args = parser.parse_args()
    if args.latency:
        latency(args.latency)
        return

    from event_sinks.cli import configure

    data = tempfile.mkdtemp(prefix="aspects-bench-")
    configure(f"chdb://{data}")
    from django.conf import settings

    from event_sinks import dump
    from event_sinks.clickhouse import close_connections, get_connection
    from event_sinks.courses.sources import ModulestoreSource, set_course_source
    from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

    store = StandInModuleStore()
    store.add_course(synthetic_course("BenchX", "Aspects", "2026", args.blocks))
    key = "course-v1:BenchX+Aspects+2026"
    set_course_source(ModulestoreSource(store))
    base = {**settings.EVENT_SINKS, "DATABASE": "bench"}

    def use(mode: str) -> None:
        settings.EVENT_SINKS = {**base, "ASPECTS": MODES[mode]}
        close_connections()

    for mode in MODES:  # warm up: schema, Aspects' tables, the engine's caches, the driver's imports
        use(mode)
        dump("course_outline", [key])
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            use(mode)
            gc.collect()
            start = time.perf_counter()
            summary = dump("course_outline", [key])
            times[mode].append(time.perf_counter() - start)
            assert summary.count("dumped") == 1, summary.results
    copied = get_connection().query("SELECT count() FROM event_sink.course_blocks")[0][0]
    expected = args.blocks * (len(MODES) - 1) * (args.repeat + 1)
    assert copied == expected, f"{copied} rows in course_blocks, expected {expected}"

    off, off_best = statistics.median(times["off"]), min(times["off"])
    print(f"course_outline dump of a {args.blocks:,}-block course, {args.repeat} runs per setting "
          f"(embedded engine):")
    print(f"{'setting':<24} {'median':>9} {'best':>9} {'overhead (median)':>18} {'overhead (best)':>16}")
    for mode, runs in times.items():
        median = statistics.median(runs)
        by_median = "" if mode == "off" else f"{median / off - 1:+.1%}"
        by_best = "" if mode == "off" else f"{min(runs) / off_best - 1:+.1%}"
        print(f"{mode:<24} {median:>8.3f}s {min(runs):>8.3f}s {by_median:>18} {by_best:>16}")
    worst = max(statistics.median(runs) / off - 1 for mode, runs in times.items() if mode != "off")
    print(f"target: at most +20% -> {'met' if worst <= 0.20 else 'MISSED'} (worst {worst:+.1%})")


if __name__ == "__main__":
    main()
