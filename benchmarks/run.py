"""Benchmarks: throughput, overhead against the raw insert, memory, publish latency, backfill.

    python benchmarks/run.py                 # everything (a few minutes on 2 cores)
    python benchmarks/run.py --quick         # smaller sizes, for a smoke run
    python benchmarks/run.py --only throughput memory

Prints a table and writes benchmarks/results/latest.json. Each measurement that needs its own
embedded engine (one data directory per process) runs in a fresh subprocess of this script.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"


# -- process helpers ------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size now, in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS, so the next peak is this measurement's own."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def setup(dsn: str, database: str = "bench") -> None:
    from event_sinks.__main__ import configure

    configure(dsn)
    from django.conf import settings

    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DATABASE": database}


def stand_in(n_courses: int, n_blocks: int):
    from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

    store = StandInModuleStore()
    for i in range(n_courses):
        store.add_course(synthetic_course("BenchX", f"C{i}", "2026", n_blocks))
    return store


# -- measurements (each runs in its own process: python run.py --child NAME ARGS) -----------------


def child_throughput(n_blocks: int, dsn: str) -> dict:
    """Blocks/s end to end (read -> rows -> committed) and the raw insert of the same rows."""
    setup(dsn)
    from event_sinks import dump, get_sink
    from event_sinks.clickhouse import get_engine
    from event_sinks.runner import Dumper
    from event_sinks.sinks.course_source import ModulestoreSource, set_course_source

    store = stand_in(1, n_blocks)
    set_course_source(ModulestoreSource(store))
    key = next(iter(ModulestoreSource(store).keys()))
    engine = get_engine()
    out = {"blocks": n_blocks, "engine": "http" if dsn.startswith("http") else "embedded"}
    for name in ("course_outline", "block_relationships"):
        Dumper(get_sink(name), engine).ensure_schema()
    dump("course_outline", [key])  # warm up: schema, first connection, caches

    def best_of(fn, repeat=3):
        times = []
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    outline = best_of(lambda: dump("course_outline", [key]))
    both = best_of(lambda: (dump("course_outline", [key]), dump("block_relationships", [key])))
    out["outline_blocks_per_s"] = n_blocks / outline
    out["both_sinks_blocks_per_s"] = n_blocks / both

    # The limit: the very same rows, prebuilt, handed straight to clickhouse-connect's insert.
    sink = get_sink("course_outline")
    dumper = Dumper(sink, engine)
    import uuid
    from datetime import UTC, datetime

    rows = list(sink.serialize(key))
    extra = (uuid.uuid4(), datetime.now(UTC), "v")
    full = [row + extra for row in rows]
    batch = engine.settings.batch_size
    table = dumper.table

    def raw_rows():
        for i in range(0, len(full), batch):
            engine.client.insert(table.name, full[i : i + batch], column_names=list(table.column_names),
                                 column_type_names=list(table.column_types), database=engine.database)

    columns_prebuilt = [list(c) for c in zip(*full, strict=True)]

    def raw_columns():
        for i in range(0, len(full), batch):
            engine.client.insert(table.name, [c[i : i + batch] for c in columns_prebuilt],
                                 column_names=list(table.column_names), column_type_names=list(table.column_types),
                                 database=engine.database, column_oriented=True)

    out["raw_rows_per_s_row_oriented"] = n_blocks / best_of(raw_rows)
    out["raw_rows_per_s_column_oriented"] = n_blocks / best_of(raw_columns)
    out["outline_vs_raw"] = out["outline_blocks_per_s"] / max(out["raw_rows_per_s_row_oriented"],
                                                              out["raw_rows_per_s_column_oriented"])
    return out


def child_memory(n_blocks: int, dsn: str) -> dict:
    """Peak RSS growth of dumping one course with both sinks (the stand-in course built first)."""
    setup(dsn)
    from event_sinks import dump
    from event_sinks.sinks.course_source import ModulestoreSource, set_course_source

    small = stand_in(1, 1000)
    set_course_source(ModulestoreSource(small))
    dump("course_outline", list(ModulestoreSource(small).keys()))  # engine started, schema made
    store = stand_in(1, n_blocks)
    set_course_source(ModulestoreSource(store))
    key = next(iter(ModulestoreSource(store).keys()))
    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    dump("course_outline", [key])
    dump("block_relationships", [key])
    return {"blocks": n_blocks, "rss_before_mb": before, "peak_growth_mb": peak_rss_mb() - before}


def child_latency(publishes: int, dsn: str) -> dict:
    """Publish -> queryable with sync dispatch: signal sent to new title readable in the view."""
    import shutil

    setup(dsn)
    from django.conf import settings

    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DISPATCH": "sync"}
    from datetime import UTC, datetime

    from opaque_keys.edx.keys import CourseKey
    from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData
    from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED

    from event_sinks.clickhouse import get_engine
    from event_sinks.handlers import connect_all
    from event_sinks.sinks.course_source import OlxSource, set_course_source

    work = Path(tempfile.mkdtemp())
    course = work / "course"
    shutil.copytree(REPO / "event_sinks" / "demo" / "course", course)
    set_course_source(OlxSource([course]))
    connect_all()
    key = "course-v1:EventSinks+Demo101+2026"
    info = CourseCatalogData(course_key=CourseKey.from_string(key), name="Demo",
                             schedule_data=CourseScheduleData(start=datetime.now(UTC), pacing="self"))
    engine = get_engine()
    chapter = course / "chapter" / "welcome.xml"
    original = chapter.read_text()
    latencies = []
    for i in range(publishes + 1):
        title = f"Welcome {i}"
        chapter.write_text(original.replace('display_name="Welcome"', f'display_name="{title}"'))
        start = time.perf_counter()
        COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=info)
        found = engine.query(
            f"SELECT count() FROM `{engine.database}`.course_outline WHERE display_name = {{t:String}}", {"t": title}
        )
        elapsed = time.perf_counter() - start
        assert found == [(1,)], f"publish {i} not visible: {found}"
        if i:  # the first publish creates the schema
            latencies.append(elapsed * 1000)
    shutil.rmtree(work)
    latencies.sort()
    return {"publishes": publishes, "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(len(latencies) * 0.95) - 1], "max_ms": latencies[-1]}


def child_backfill(n_courses: int, n_blocks: int, dsn: str) -> dict:
    """``dump_sink course_outline --all`` over a stand-in modulestore of many courses."""
    setup(dsn)
    from io import StringIO

    from django.core.management import call_command

    from event_sinks.sinks.course_source import ModulestoreSource, set_course_source

    store = stand_in(n_courses, n_blocks)
    set_course_source(ModulestoreSource(store))
    import event_sinks.runner as runner

    samples = []
    original = runner._dump_one

    def sampled(*args, **kwargs):
        result = original(*args, **kwargs)
        samples.append(rss_mb())
        return result

    runner._dump_one = sampled
    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    call_command("dump_sink", "course_outline", "--all", "--force", stdout=StringIO(), stderr=StringIO())
    elapsed = time.perf_counter() - start
    tenth = max(1, len(samples) // 10)
    return {
        "courses": n_courses, "blocks_per_course": n_blocks, "seconds": elapsed,
        "rows_per_s": n_courses * n_blocks / elapsed, "rss_before_mb": before,
        "peak_growth_mb": peak_rss_mb() - before,
        "rss_first_10pct_mb": statistics.mean(samples[:tenth]), "rss_last_10pct_mb": statistics.mean(samples[-tenth:]),
    }


CHILDREN = {"throughput": child_throughput, "memory": child_memory, "latency": child_latency,
            "backfill": child_backfill}


# -- driver -----------------------------------------------------------------------------------------


def in_child(name: str, *args) -> dict:
    """Run one measurement in a fresh process (its own embedded data directory)."""
    with tempfile.TemporaryDirectory() as work:
        dsn = args[-1] if args and str(args[-1]).startswith("http") else f"chdb://{work}/data"
        call_args = [a for a in args if not str(a).startswith("http")]
        result = subprocess.run(
            [sys.executable, __file__, "--child", name, *map(str, call_args), dsn],
            capture_output=True, text=True, cwd=work, timeout=3600,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{name}{args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=sorted(CHILDREN))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, *rest = args.child
        values = [int(v) if v.isdigit() else v for v in rest]
        print(json.dumps(CHILDREN[name](*values)))
        return

    only = set(args.only or CHILDREN)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if "throughput" in only:
        report["throughput"] = [in_child("throughput", n) for n in sizes]
        sys.path.insert(0, str(REPO))
        from tests.chhttp import ClickHouseHTTPServer

        with tempfile.TemporaryDirectory() as data, ClickHouseHTTPServer(data, database="bench") as server:
            report["throughput"] += [in_child("throughput", n, server.dsn) for n in sizes[:2]]
    if "memory" in only:
        report["memory"] = in_child("memory", sizes[-1])
    if "latency" in only:
        report["latency"] = in_child("latency", 30)
    if "backfill" in only:
        report["backfill"] = in_child("backfill", 100 if args.quick else 1000, 1000)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    print_report(report)


def print_report(report: dict) -> None:
    print(f"\nmachine: {report['machine']}")
    if "throughput" in report:
        print("\nthroughput (blocks/s, best of 3)")
        header = ("engine", "blocks", "outline", "both", "raw rows", "raw cols", "vs raw")
        print(f"{header[0]:9} " + " ".join(f"{h:>10}" for h in header[1:]))
        for r in report["throughput"]:
            print(f"{r['engine']:9} {r['blocks']:>10} {r['outline_blocks_per_s']:>10,.0f} "
                  f"{r['both_sinks_blocks_per_s']:>10,.0f} {r['raw_rows_per_s_row_oriented']:>10,.0f} "
                  f"{r['raw_rows_per_s_column_oriented']:>10,.0f} {r['outline_vs_raw']:>10.0%}")
    if "memory" in report:
        m = report["memory"]
        print(f"\nmemory: {m['blocks']} blocks, both sinks: peak RSS growth {m['peak_growth_mb']:.1f} MB")
    if "latency" in report:
        lat = report["latency"]
        print(f"\npublish -> queryable (sync, demo course, {lat['publishes']} publishes): "
              f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, max {lat['max_ms']:.1f} ms")
    if "backfill" in report:
        b = report["backfill"]
        print(f"\nbackfill: {b['courses']} courses x {b['blocks_per_course']} blocks in {b['seconds']:.1f} s "
              f"({b['rows_per_s']:,.0f} rows/s); peak RSS growth {b['peak_growth_mb']:.1f} MB; "
              f"RSS first/last 10% of courses {b['rss_first_10pct_mb']:.0f}/{b['rss_last_10pct_mb']:.0f} MB")


if __name__ == "__main__":
    main()
