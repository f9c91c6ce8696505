"""The read path at instance scale: label lookups and reports through the views vs the layout limit.

    python benchmarks/read_path.py                 # 5,000 courses x 1,000 blocks, each dumped 3 times
    python benchmarks/read_path.py --quick         # 300 courses (a few minutes)
    python benchmarks/read_path.py --courses 1000 --events 500000
    python benchmarks/read_path.py --reuse /tmp/tmpXXXX   # the queries again, on the instance a run left

The instance is built through the public dump path: ``dump("course_outline", keys)`` over the
modulestore stand-in's synthetic courses (``event_sinks.testing.modulestore.synthetic_course``), three
times, each time with a new published version (so retention runs as shipped); then a table of video
plays (``location`` of a video, one row per play, videos drawn with a skew so some are unwatched).

Each query runs through the library's views, then against the **layout limit**: the same answer from
a plain MergeTree holding the current rows, ordered for that lookup, in the same process. Both
answers must be identical. Before measuring, the script waits until the engine runs no merge and no
mutation in either database (at most ``--settle`` seconds; it prints how long it waited, whether it
timed out, and the parts of the ``*_current`` tables), so the figures are those of a settled instance,
not of one still merging the fill. Figures are the median of ``--runs`` runs (15) after one warm-up; the fill rate is
rows written per second of wall time of the dump passes (source walk included). The engine's version is
printed with the table. The courses are the stand-in's, not a real instance's (whose titles and shapes
vary more).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUERIES = {
    "Q1 label and course name of one block by location": (
        "SELECT label, course_name FROM {v}.course_blocks WHERE location = {loc:String}",
        "SELECT label, course_name FROM {l}.by_location WHERE location = {loc:String}",
    ),
    "Q2 one course's videos, labelled, in outline order": (
        "SELECT location, label FROM {v}.course_blocks WHERE course_key = {course:String} AND block_type = 'video' "
        "ORDER BY order_in_course",
        "SELECT location, label FROM {l}.by_course WHERE course_key = {course:String} AND block_type = 'video' "
        "ORDER BY order_in_course",
    ),
    "Q3 plays per video of one course, unwatched with 0": (
        "SELECT b.location, countIf(p.location != '') AS plays FROM {v}.course_blocks AS b "
        "LEFT JOIN (SELECT location FROM {v}.plays WHERE startsWith(location, {prefix:String})) AS p "
        "ON p.location = b.location WHERE b.course_key = {course:String} AND b.block_type = 'video' "
        "GROUP BY b.location ORDER BY b.location",
        "SELECT b.location, countIf(p.location != '') AS plays FROM {l}.by_course AS b "
        "LEFT JOIN (SELECT location FROM {v}.plays WHERE startsWith(location, {prefix:String})) AS p "
        "ON p.location = b.location WHERE b.course_key = {course:String} AND b.block_type = 'video' "
        "GROUP BY b.location ORDER BY b.location",
    ),
    "Q4 top 20 videos of the instance by plays": (
        "SELECT b.label, b.course_name, count() AS n FROM {v}.plays AS p INNER JOIN {v}.course_blocks AS b "
        "ON b.location = p.location GROUP BY b.label, b.course_name, b.location ORDER BY n DESC, b.location LIMIT 20",
        "SELECT b.label, b.course_name, count() AS n FROM {v}.plays AS p INNER JOIN {l}.by_location AS b "
        "ON b.location = p.location GROUP BY b.label, b.course_name, b.location ORDER BY n DESC, b.location LIMIT 20",
    ),
    "Q5 count of current rows": (
        "SELECT count() FROM {v}.course_outline",
        "SELECT count() FROM {l}.by_location",
    ),
}


def timed(engine, sql: str, params: dict, runs: int = 15) -> tuple[float, list]:
    """Median milliseconds of ``runs`` runs (after one warm-up) and the answer."""
    answer = engine.query(sql, params)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.query(sql, params)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), answer


def settle(engine, databases: list[str], timeout: float) -> tuple[float, bool]:
    """Wait until no merge or mutation runs in ``databases``; (seconds waited, whether it settled)."""
    busy = ("SELECT (SELECT count() FROM system.merges WHERE database IN {dbs:Array(String)}) + "
            "(SELECT count() FROM system.mutations WHERE database IN {dbs:Array(String)} AND NOT is_done)")
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < timeout:
        if engine.value(busy, {"dbs": databases}):
            quiet = 0
        else:
            quiet += 1
            if quiet >= 3:  # three quiet looks in a row: the scheduler had its chance to start one
                return time.monotonic() - start, True
        time.sleep(0.5)
    return time.monotonic() - start, False


def parts(engine, database: str) -> str:
    """Active parts and rows per ``*_current`` table of ``database``."""
    rows = engine.query("SELECT table, count(), sum(rows) FROM system.parts WHERE database = {db:String} "
                        "AND active AND endsWith(table, '_current') GROUP BY table ORDER BY table", {"db": database})
    return ", ".join(f"{table}: {n} parts, {total:,} rows" for table, n, total in rows) or "none"


def profile_statements():
    """Tally the time of every engine request by statement (its first line, values aside); returns the tally."""
    import collections
    import re

    from event_sinks.clickhouse import Connection

    tally: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    run = Connection._run

    def timed_run(self, doing, call, **kwargs):
        start = time.perf_counter()
        try:
            return run(self, doing, call, **kwargs)
        finally:
            what = re.sub(r"\s+", " ", str(doing).split("\n", 1)[0])[:90]
            entry = tally[what]
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    Connection._run = timed_run
    return tally


def explain(engine, sql: str, params: dict) -> str:
    """``EXPLAIN indexes = 1`` of a query: the parts and granules its filters keep."""
    lines = [row[0] for row in engine.query(f"EXPLAIN indexes = 1 {sql}", params)]
    return "\n".join(f"    {line}" for line in lines)


def fill(args, keys: list[str], engine, db: str, limit: str, tally) -> tuple[int, float]:
    """Build the instance through the public dump path, the plays and the layout limit's tables."""
    from event_sinks import dump
    from event_sinks.courses.sources import ModulestoreSource, set_course_source
    from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

    written = 0
    fill_seconds = 0.0
    for n in range(args.dumps):
        store = StandInModuleStore()
        for i in range(args.courses):
            root = synthetic_course("ReadX", f"C{i:05d}", "2026", args.blocks)
            root.course_version = f"{n:02d}{root.course_version[2:]}"  # a new published version each pass
            store.add_course(root)
        set_course_source(ModulestoreSource(store))
        start = time.perf_counter()
        summary = dump("course_outline", keys, keep_results=False)
        fill_seconds += time.perf_counter() - start
        written += summary.rows
        assert not summary.failed, summary.failed[:3]
        print(f"  pass {n + 1}/{args.dumps}: {summary}", file=sys.stderr, flush=True)
    set_course_source(None)
    if tally is not None:
        print(f"\nfill: {fill_seconds:.1f} s; engine requests by statement (count, seconds):", file=sys.stderr)
        for what, (count, seconds) in sorted(tally.items(), key=lambda item: -item[1][1])[:15]:
            print(f"  {count:7,} {seconds:8.1f} s  {what}", file=sys.stderr)
        tally.clear()

    videos = [r[0] for r in engine.query(f"SELECT location FROM {db}.course_blocks WHERE block_type = 'video'")]
    rng = random.Random(7)
    watched = videos[: max(1, len(videos) * 3 // 5)]  # two videos in five are never played
    engine.command(f"CREATE TABLE {db}.plays (location String) ENGINE = MergeTree ORDER BY location")
    for start in range(0, args.events, 500_000):
        count = min(500_000, args.events - start)
        engine.client.insert("plays", [[rng.choice(watched) for _ in range(count)]], column_names=["location"],
                             column_oriented=True, database=engine.database)
    engine.command(f"CREATE DATABASE IF NOT EXISTS {limit}")
    for name, order in (("by_location", "location"), ("by_course", "course_key, block_type, order_in_course")):
        engine.command(f"CREATE TABLE {limit}.{name} ENGINE = MergeTree ORDER BY ({order}) "
                       f"AS SELECT * FROM {db}.course_blocks")

    return written, fill_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--courses", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--dumps", type=int, default=3, help="dumps of each course (a new version each time)")
    parser.add_argument("--events", type=int, default=2_000_000, help="video plays")
    parser.add_argument("--quick", action="store_true", help="300 courses, 200,000 plays")
    parser.add_argument("--dsn", help="a ClickHouse DSN (default: a fresh embedded engine)")
    parser.add_argument("--profile", action="store_true",
                        help="print the time of the fill's engine requests by statement")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN indexes = 1 of each view query")
    parser.add_argument("--settle", type=float, default=600.0,
                        help="seconds to wait at most for background merges before measuring")
    parser.add_argument("--runs", type=int, default=15, help="runs of each query (the median is shown)")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="measure again the instance an earlier run left in DIR (no fill; same --courses)")
    args = parser.parse_args()
    if args.quick:
        args.courses, args.events = 300, 200_000

    work = args.reuse or Path(tempfile.mkdtemp())
    from event_sinks.cli import configure

    configure(args.dsn or f"chdb://{work}/data")
    from django.conf import settings

    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DATABASE": "readpath"}

    from event_sinks.clickhouse import get_connection

    tally = profile_statements() if args.profile else None
    engine = get_connection()
    keys = [f"course-v1:ReadX+C{i:05d}+2026" for i in range(args.courses)]
    db = f"`{engine.database}`"
    limit = "`readpath_limit`"
    written, fill_seconds = (0, 0.0) if args.reuse else fill(args, keys, engine, db, limit, tally)
    videos = [r[0] for r in engine.query(f"SELECT location FROM {db}.course_blocks WHERE block_type = 'video'")]
    waited, settled = settle(engine, [engine.database, "readpath_limit"], args.settle)
    version = engine.value("SELECT version()")
    course = keys[len(keys) // 2]
    params = {"loc": [v for v in videos if v.startswith(course.replace("course-v1:", "block-v1:") + "+")][0],
              "course": course, "prefix": course.replace("course-v1:", "block-v1:") + "+"}
    print(f"\nread path: {args.courses:,} courses x {args.blocks:,} blocks, {args.dumps} dumps each "
          + (f"(an instance reused: {args.reuse}), " if args.reuse else
             f"({written:,} rows written at {written / fill_seconds:,.0f} rows/s), {args.events:,} plays; ")
          + f"median of {args.runs}, {'server' if args.dsn else 'embedded engine'} {version}")
    print(f"background merges: waited {waited:.1f} s, {'settled' if settled else 'NOT settled (timed out)'}; "
          f"{parts(engine, engine.database)}\n")
    print(f"{'query':55} {'view ms':>9} {'limit ms':>9} {'ratio':>7}  same answer")
    for what, (view_sql, limit_sql) in QUERIES.items():
        view_ms, view_answer = timed(engine, view_sql.replace("{v}", db).replace("{l}", limit), params, args.runs)
        limit_ms, limit_answer = timed(engine, limit_sql.replace("{v}", db).replace("{l}", limit), params, args.runs)
        same = sorted(map(tuple, view_answer)) == sorted(map(tuple, limit_answer))
        print(f"{what:55} {view_ms:9.1f} {limit_ms:9.1f} {view_ms / limit_ms:6.1f}x  {'yes' if same else 'NO'}")
        if args.explain:
            print(explain(engine, view_sql.replace("{v}", db).replace("{l}", limit), params))
    if not args.dsn and not args.reuse:
        print(f"\nthe instance stays in {work} (measure it again: --reuse {work}; delete it when done)")


if __name__ == "__main__":
    main()
