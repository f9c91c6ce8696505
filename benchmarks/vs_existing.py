"""The write path side by side with the existing Open edX ClickHouse sinks, on the same course.

    /work/venv-anchors/bin/python benchmarks/vs_existing.py              # 1k, 10k, 100k, 300k blocks
    /work/venv-anchors/bin/python benchmarks/vs_existing.py --quick      # 1k and 10k only
    /work/venv-anchors/bin/python benchmarks/vs_existing.py --read-cost 0 --sizes 1000 10000
    /work/venv-anchors/bin/python benchmarks/vs_existing.py --profile    # + a cProfile of our 1k-block dump
    .../python benchmarks/vs_existing.py --sizes --profile ours-embedded aspects-2.1.0  # only profiles
    /work/venv-anchors/bin/python benchmarks/vs_existing.py --xblock-floor   # what --read-cost's default rests on

Contenders, each in its own worker process (chDB allows one data directory per process, the two
Aspects versions share a package name, and one's memory must not count in another's):

- ``ours, embedded`` / ``ours, http``: this library's public ``dump("course_outline", [key])`` into
  the embedded chDB engine, and into ClickHouse's HTTP interface as tests/support/chhttp.py serves
  it (chDB in a second process);
- the anchors, the course-publish Celery task bodies of the existing sinks, run unchanged:
  ``openedx-event-sink-clickhouse`` 1.1.1 and ``platform-plugin-aspects`` 1.1.2 and 2.1.0, each
  ``tasks.dump_course_to_clickhouse(course_key)`` (the CourseOverview row, then every block of the
  course: one CSV built in memory, one POST). They POST to a local endpoint that reads and discards
  the body (benchmarks/anchors/discard_server.py): they pay their serialization and HTTP, no engine.

Every contender reads the same synthetic course
(``event_sinks.testing.modulestore.synthetic_course("BenchX", "C0", "2026", n)``) from its own
``StandInModuleStore(read_cost=...)``; what the anchors need from edx-platform is in
benchmarks/anchors/. The runs are interleaved: after a warm-up dump each, every round runs every
contender once, in an order rotated each round, so a change of load hits all of them; the figure
is the best of N rounds (15 at 1k blocks, 9 at 10k, 3 at 100k, 2 at 300k). Peak RSS growth is VmHWM, reset
before each dump, minus RSS before it (the worst of the rounds).

The engine's limit: in the embedded worker (and the HTTP one), the same outline rows, built
beforehand, inserted with clickhouse-connect alone, as benchmarks/run.py does: row-oriented,
column-oriented, and column-oriented with datetimes as ticks; the limit is the fastest of the three,
and "share" is our dump's rate over it.

The read alone: in the embedded worker, each round, the course walked through this library's reader
(``read_course(key).blocks()``: every block loaded from the store, its fields read) with nothing
written, then the same with the outline's columns built. Every contender pays at least that read, so
an anchor's time over it is the most any sink could be ahead of that anchor on this store ("ceiling").

``--read-cost`` (seconds per block loaded, spent by the stand-in as CPU) defaults to 100 us: a
stand-in figure, not a measurement of the real store. ``--xblock-floor`` measures its floor here:
the XBlock library alone (installed from PyPI) building a block with ``construct_xblock_from_class``
and reading the seven settings every course sink reads, through ``KvsFieldData`` over a key-value
store that is one dict lookup per field (what split's SplitMongoKVS does at its core): 72-210 us a
block on the shared 2-core machine this was written on, depending on its load (load average 4-5).
Inside the platform, split's runtime adds the platform's mixins, ``InheritingFieldData`` and the
LMS/CMS field-data wrappers on top, and an idle machine takes less: 100 us is a round figure between
the two, not a measurement of the real store. ``--read-cost 0`` shows the sinks' own costs alone. Aspects
loads each block twice (the tree from ``get_course``, then ``get_items`` for the detached blocks),
so it pays the read cost twice; openedx-event-sink-clickhouse and this library once.

Setup (a virtualenv of its own; the library's own tooling is not involved):

    python3.11 -m venv /work/venv-anchors
    /work/venv-anchors/bin/pip install -e '.[embedded,celery]' openedx-event-sink-clickhouse==1.1.1 \\
        platform-plugin-aspects==1.1.2
    # 2.1.0 declares Requires-Python >= 3.12 but runs on 3.11; its dependencies are 1.1.2's:
    /work/venv-anchors/bin/pip install --no-deps --ignore-requires-python \\
        --target /work/venv-anchors/aspects-2.1.0 platform-plugin-aspects==2.1.0

(``--aspects-2-path`` points elsewhere.) ``--library DIR`` measures the event_sinks package under DIR
instead of this checkout's working tree, e.g. ``git archive HEAD | tar -x -C /tmp/head`` while others
edit the tree. Results: benchmarks/results/vs_existing.json (``--output``),
with the load average at the start and the end: the machine is shared, figures must be re-measured
on an idle one.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCHMARKS))
#: ``--library``: the event_sinks to measure, when not this checkout's (e.g. a ``git archive`` of a revision)
LIBRARY_ENV = "VS_EXISTING_LIBRARY"
if os.environ.get(LIBRARY_ENV):
    sys.path.insert(0, os.environ[LIBRARY_ENV])
RESULTS = BENCHMARKS / "results"
DEFAULT_ASPECTS_2 = Path(sys.prefix) / "aspects-2.1.0"

#: The read cost's default, seconds per loaded block (see the module docstring).
DEFAULT_READ_COST = 100e-6
COURSE = ("BenchX", "C0", "2026")
KEY = "course-v1:BenchX+C0+2026"


class Contender:
    def __init__(self, name: str, label: str, kind: str, *, package: str = "", dist: str = "", version: str = "",
                 engine: str = ""):
        self.name, self.label, self.kind = name, label, kind
        self.package, self.dist, self.version, self.engine = package, dist, version, engine


CONTENDERS = [
    Contender("ours-embedded", "course_outline, embedded", "ours", engine="embedded"),
    Contender("ours-http", "course_outline, http", "ours", engine="http"),
    Contender("event-sink-clickhouse-1.1.1", "openedx-event-sink-clickhouse 1.1.1", "anchor",
              package="event_sink_clickhouse", dist="openedx-event-sink-clickhouse", version="1.1.1"),
    Contender("aspects-1.1.2", "platform-plugin-aspects 1.1.2", "anchor",
              package="platform_plugin_aspects", dist="platform-plugin-aspects", version="1.1.2"),
    Contender("aspects-2.1.0", "platform-plugin-aspects 2.1.0", "anchor",
              package="platform_plugin_aspects", dist="platform-plugin-aspects", version="2.1.0"),
]
BY_NAME = {c.name: c for c in CONTENDERS}
ANCHORS = [c for c in CONTENDERS if c.kind == "anchor"]


def rounds_for(n_blocks: int) -> int:
    """Rounds (after the warm-up): more for the small, quick courses, whose times move most with the load."""
    return 15 if n_blocks <= 1_000 else 9 if n_blocks <= 10_000 else 3 if n_blocks <= 100_000 else 2


# -- process helpers ------------------------------------------------------------------------------


def _status(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return _status("VmRSS:")


def hwm_mb() -> float:
    return _status("VmHWM:")


def reset_hwm() -> None:
    """VmHWM back to the current RSS (Linux), so the next peak is the next dump's own."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def timed(fn) -> dict[str, float]:
    """One call of ``fn``: wall seconds and peak RSS growth (after a full collection, not timed)."""
    gc.collect()
    before = rss_mb()
    reset_hwm()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_growth_mb": hwm_mb() - before, "rss_before_mb": before}


# -- workers (python vs_existing.py --worker NAME BLOCKS READ_COST TARGET) ------------------------


class OursWorker:
    """This library's ``dump("course_outline", [key])`` from a stand-in store, into a real engine."""

    def __init__(self, n_blocks: int, read_cost: float, dsn: str):
        from event_sinks.cli import configure

        configure(dsn)
        from django.conf import settings

        settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DATABASE": "bench"}
        from event_sinks import dump
        from event_sinks.courses.sources import ModulestoreSource, set_course_source
        from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

        self.n_blocks = n_blocks
        self.store = StandInModuleStore(read_cost=read_cost)
        self.store.add_course(synthetic_course(*COURSE, n_blocks))
        set_course_source(ModulestoreSource(self.store))
        self._dump = dump
        self._raw: dict[str, Any] | None = None

    def run(self) -> dict[str, Any]:
        summary = None

        def once() -> None:
            nonlocal summary
            summary = self._dump("course_outline", [KEY], raise_errors=True)

        out = timed(once)
        out["rows"] = summary.rows
        if summary.rows != self.n_blocks:
            raise AssertionError(f"dumped {summary.rows} rows, expected {self.n_blocks}")
        return out

    def _prepare_raw(self) -> dict[str, Any]:
        """The same outline rows, built beforehand, in the three forms run.py hands the driver."""
        import uuid
        from datetime import UTC, datetime

        from event_sinks import get_sink
        from event_sinks.clickhouse import get_connection
        from event_sinks.clickhouse.encoding import prepare_columns
        from event_sinks.core import Constant
        from event_sinks.dumping import Dumper

        engine = get_connection()
        sink = get_sink("course_outline")
        dumper = Dumper(sink, engine)
        table, names, types = dumper.table.name, list(dumper.table.column_names), list(dumper.table.column_types)
        batch = engine.settings.batch_size
        extra = (uuid.uuid4(), datetime.now(UTC), "v")
        rows = [row + extra for row in sink.serialize(KEY)]
        columns = [list(c) for c in zip(*rows, strict=True)]
        prepared = [
            prepare_columns([c[i: i + batch] for c in columns[:-3]] + [Constant(v) for v in extra],
                            len(rows[i: i + batch]), dumper._scales)
            for i in range(0, len(rows), batch)
        ]

        def insert(data: Any, **kwargs: Any) -> None:
            engine.client.insert(table, data, column_names=names, column_type_names=types,
                                 database=engine.database, **kwargs)

        def raw_rows() -> None:
            for i in range(0, len(rows), batch):
                insert(rows[i: i + batch])

        def raw_cols() -> None:
            for i in range(0, len(rows), batch):
                insert([c[i: i + batch] for c in columns], column_oriented=True)

        def raw_ticks() -> None:
            for data in prepared:
                insert(data, column_oriented=True)

        return {"rows": raw_rows, "cols": raw_cols, "ticks": raw_ticks}

    def floor(self) -> dict[str, Any]:
        """The read alone, as every contender must do it: the course from the store, every block's fields.

        ``read_course(key).blocks()`` is this library's walk (what both course sinks share); the
        anchors pay the same store for the same blocks. Then the outline's columns built from it, no
        engine. No sink can be faster than the first: an anchor's time over it bounds every ratio.
        """
        from event_sinks import get_sink
        from event_sinks.courses.sources import read_course

        sink = get_sink("course_outline")
        walk = timed(lambda: sum(1 for _ in read_course(KEY).blocks()))["seconds"]
        columns = timed(lambda: sum(b.size for b in sink.column_batches([KEY], 100_000)))["seconds"]
        return {"walk": walk, "columns": columns}

    def raw(self) -> dict[str, Any]:
        if self._raw is None:
            self._raw = self._prepare_raw()
        return {form: timed(fn)["seconds"] for form, fn in self._raw.items()}


class AnchorWorker:
    """An existing sink's course-publish task body, unchanged, against the stand-in store."""

    def __init__(self, contender: Contender, n_blocks: int, read_cost: float, url: str, extra_path: str = ""):
        import importlib
        from importlib import metadata

        if extra_path:
            sys.path.insert(0, extra_path)
        from anchors import django_settings

        django_settings.configure(contender.package, url)
        installed = metadata.version(contender.dist)
        if installed != contender.version:
            raise RuntimeError(f"{contender.dist} {installed} is installed, the benchmark wants {contender.version}")
        from anchors import platform_stubs, xblock_adapter
        from anchors.overviews.models import create_table, overview_for

        from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

        self.n_blocks = n_blocks
        self.url = url
        root = synthetic_course(*COURSE, n_blocks)
        self.store = StandInModuleStore(read_cost=read_cost)
        self.store.add_course(root)
        platform_stubs.install(self.store)
        xblock_adapter.install()
        create_table()
        overview_for(root)
        tasks = importlib.import_module(f"{contender.package}.tasks")
        if not Path(tasks.__file__).resolve().is_relative_to(Path(extra_path or sys.prefix).resolve()):
            raise RuntimeError(f"{tasks.__file__} is not the {contender.version} install")
        self.task = tasks.dump_course_to_clickhouse

    def _received(self) -> dict[str, int]:
        import requests

        return requests.get(f"{self.url}/stats", timeout=30).json()

    def run(self) -> dict[str, Any]:
        before = self._received()
        out = timed(lambda: self.task(KEY))
        after = self._received()
        lines = after["lines"] - before["lines"]
        # one CSV line per block, one for the CourseOverview row
        if lines != self.n_blocks + 1:
            raise AssertionError(f"the endpoint received {lines} CSV lines, expected {self.n_blocks + 1}")
        out.update(rows=lines - 1, posts=after["requests"] - before["requests"], bytes=after["bytes"] - before["bytes"])
        return out


def worker_main(name: str, n_blocks: int, read_cost: float, target: str, extra_path: str) -> None:
    """Serve commands from stdin ("run", "raw", "quit"), one JSON line each on the original stdout."""
    out: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    contender = BY_NAME[name]
    if contender.kind == "ours":
        worker: Any = OursWorker(n_blocks, read_cost, target)
    else:
        worker = AnchorWorker(contender, n_blocks, read_cost, target, extra_path)
    print(json.dumps({"ready": True, "rss_mb": rss_mb()}), file=out, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        result = getattr(worker, command)()
        result["hwm_mb"] = hwm_mb()
        print(json.dumps(result), file=out, flush=True)


def profile_main(name: str, n_blocks: int, read_cost: float, target: str, extra_path: str, dumps: int) -> None:
    """cProfile of ``dumps`` dumps of one contender's ``n_blocks`` course (after a warm-up dump)."""
    import cProfile
    import io
    import pstats

    contender = BY_NAME[name]
    if contender.kind == "ours":
        worker: Any = OursWorker(n_blocks, read_cost, target)
        once = lambda: worker._dump("course_outline", [KEY], raise_errors=True)  # noqa: E731
    else:
        worker = AnchorWorker(contender, n_blocks, read_cost, target, extra_path)
        once = lambda: worker.task(KEY)  # noqa: E731
    worker.run()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(dumps):
        once()
    profiler.disable()
    wall = time.perf_counter() - start
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    text.write(phases(stats, dumps))
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(28)
    body = text.getvalue()
    body = body.replace(str(Path(sys.prefix)), "$VENV").replace(str(REPO), "$REPO")
    print(f"{contender.label}: {dumps} dumps of {n_blocks} blocks under cProfile, {wall / dumps * 1000:.1f} ms a "
          f"dump (cProfile's overhead included)\n")
    print(body)


#: Phases of a dump, found in a profile by (file suffix, function): this library's, then the anchors'.
PHASES = [
    ("dump() in all", "event_sinks/dumping/jobs.py", "dump"),
    ("  read the course + build the columns (per row)", "event_sinks/sinks/course_outline.py", "batches"),
    ("    of which the modulestore walk", "event_sinks/courses/modulestore.py", "_walk"),
    ("  insert of the rows (driver + engine)", "event_sinks/dumping/dumper.py", "_insert"),
    ("  ledger row (fixed, one statement)", "event_sinks/dumping/ledger.py", "commit"),
    ("  retention DELETE (fixed, one statement)", "event_sinks/dumping/retention.py", "prune"),
    ("  schema check (fixed)", "event_sinks/dumping/dumper.py", "ensure_schema"),
    ("engine statements (chDB, C)", "", "<built-in method chdb._chdb.query>"),
    ("task body in all", "/tasks.py", "dump_course_to_clickhouse"),
    ("  CourseOverview query + serializer (fixed)", "/sinks/base_sink.py", "get_object"),
    ("  blocks: read + one dict per block", "/course_overview_sink.py", "serialize_item"),
    ("  blocks: read + one dict per block", "/course_published.py", "serialize_item"),
    ("    strip_branch_and_version (for_branch per block)", "", "strip_branch_and_version"),
    ("  CSV build + POST (2 requests)", "/sinks/base_sink.py", "send_item"),
]


def phases(stats: Any, dumps: int) -> str:
    """Cumulative milliseconds a dump in the phases above that the profile holds."""
    found = []
    for label, suffix, function in PHASES:
        total = sum(entry[3] for (path, _, name), entry in stats.stats.items()
                    if name == function and path.endswith(suffix))
        if total:
            found.append(f"  {label:58} {total / dumps * 1000:8.1f} ms a dump\n")
    return "where the time goes (cumulative, cProfile's overhead included):\n" + "".join(found) + "\n"


# -- the driver -----------------------------------------------------------------------------------


class Worker:
    """A worker process and its command pipe."""

    def __init__(self, contender: Contender, n_blocks: int, read_cost: float, target: str, extra_path: str,
                 work: Path):
        self.contender = contender
        self.log = work / f"{contender.name}-{n_blocks}.log"
        self.cwd = work / f"{contender.name}-{n_blocks}"
        self.cwd.mkdir()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", contender.name, str(n_blocks), repr(read_cost), target,
             extra_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True, cwd=self.cwd,
        )

    def receive(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=60)
            raise RuntimeError(f"worker {self.contender.name} ended (exit {self.process.returncode}):\n"
                               f"{self.log.read_text()[-4000:]}")
        return json.loads(line)

    def send(self, command: str) -> dict[str, Any]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def start_discard_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, str(BENCHMARKS / "anchors" / "discard_server.py")],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("LISTENING"):
        process.kill()
        raise RuntimeError(f"the discard endpoint did not start: {line!r}")
    return process, f"http://127.0.0.1:{int(line.split()[1])}"


def measure_size(n_blocks: int, contenders: list[Contender], read_cost: float, targets: dict[str, str],
                 extra_paths: dict[str, str], work: Path) -> dict[str, Any]:
    rounds = rounds_for(n_blocks)
    print(f"\n{n_blocks:,} blocks: starting {len(contenders)} workers (course built in each)...", file=sys.stderr,
          flush=True)
    workers = [Worker(c, n_blocks, read_cost, targets[c.name], extra_paths.get(c.name, ""), work) for c in contenders]
    results: dict[str, Any] = {}
    try:
        for w in workers:
            ready = w.receive()
            results[w.contender.name] = {"label": w.contender.label, "rss_ready_mb": ready["rss_mb"], "runs": [],
                                         "warm_up": None}
        for w in workers:  # warm-up: imports, schema, first connections, the structure's lazy caches
            results[w.contender.name]["warm_up"] = w.send("run")
        for r in range(rounds):
            shift = r % len(workers)
            for w in workers[shift:] + workers[:shift]:
                result = w.send("run")
                results[w.contender.name]["runs"].append(result)
                print(f"  round {r + 1}/{rounds} {w.contender.name:28} {result['seconds'] * 1000:9.1f} ms  "
                      f"{n_blocks / result['seconds']:>10,.0f} blocks/s  peak +{result['peak_growth_mb']:.0f} MB",
                      file=sys.stderr, flush=True)
                if w.contender.kind == "ours":  # the engine's limit, measured in the same round
                    results[w.contender.name].setdefault("raw_runs", []).append(w.send("raw"))
                if w.contender.name == "ours-embedded":  # the read alone, in the same round
                    results[w.contender.name].setdefault("floor_runs", []).append(w.send("floor"))
    finally:
        for w in workers:
            w.close()
    for res in results.values():
        best = min(run["seconds"] for run in res["runs"])
        res.update(best_seconds=best, blocks_per_s=n_blocks / best,
                   peak_growth_mb=max(run["peak_growth_mb"] for run in res["runs"]),
                   hwm_mb=max(run["hwm_mb"] for run in res["runs"]))
        if "raw_runs" in res:
            best_raw = {form: min(raw[form] for raw in res["raw_runs"]) for form in ("rows", "cols", "ticks")}
            res["raw_rows_per_s"] = {form: n_blocks / s for form, s in best_raw.items()}
            res["engine_limit_rows_per_s"] = max(res["raw_rows_per_s"].values())
            res["share_of_engine_limit"] = res["blocks_per_s"] / res["engine_limit_rows_per_s"]
        if "floor_runs" in res:
            for part in ("walk", "columns"):
                res[f"{part}_blocks_per_s"] = n_blocks / min(run[part] for run in res["floor_runs"])
    for ours in (c for c in contenders if c.kind == "ours"):
        res = results[ours.name]
        res["vs"] = {a.name: res["blocks_per_s"] / results[a.name]["blocks_per_s"]
                     for a in contenders if a.kind == "anchor"}
        if "walk_blocks_per_s" in res:  # the most any sink could be ahead of an anchor: its time over the read's
            res["ceiling_vs"] = {a.name: res["walk_blocks_per_s"] / results[a.name]["blocks_per_s"]
                                 for a in contenders if a.kind == "anchor"}
    return {"blocks": n_blocks, "rounds": rounds, "contenders": results}


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def print_tables(report: dict[str, Any]) -> None:
    sizes = report["sizes"]
    head = "| {} | " + " | ".join(size_label(s["blocks"]) for s in sizes) + " |"
    rule = "|---|" + "---:|" * len(sizes)

    def row(label: str, values: list[str]) -> None:
        print(f"| {label} | " + " | ".join(values) + " |")

    def cell(size: dict[str, Any], name: str, fn) -> str:
        res = size["contenders"].get(name)
        return "n/a" if res is None else fn(res)

    names = {c for s in sizes for c in s["contenders"]}
    for ours in (c for c in CONTENDERS if c.kind == "ours" and c.name in names):
        print()
        print(head.format(ours.label))
        print(rule)
        row("blocks/s (best of N)", [cell(s, ours.name, lambda r: f"{r['blocks_per_s']:,.0f}") for s in sizes])
        for anchor in (a for a in ANCHORS if a.name in names):
            row(f"vs {anchor.label}", [cell(s, ours.name, lambda r, a=anchor: f"{r['vs'][a.name]:.1f}x")
                                       for s in sizes])
        row("engine's limit, rows/s (clickhouse-connect, prebuilt columns)",
            [cell(s, ours.name, lambda r: f"{r['engine_limit_rows_per_s']:,.0f}") for s in sizes])
        row("share of the engine's limit", [cell(s, ours.name, lambda r: f"{r['share_of_engine_limit']:.0%}")
                                             for s in sizes])
        row("peak RSS growth, MB", [cell(s, ours.name, lambda r: f"{r['peak_growth_mb']:.0f}") for s in sizes])
        if any("walk_blocks_per_s" in s["contenders"].get(ours.name, {}) for s in sizes):
            row("the read alone (store walk, every block's fields), blocks/s",
                [cell(s, ours.name, lambda r: f"{r.get('walk_blocks_per_s', 0):,.0f}") for s in sizes])
            row("the read + the outline's columns (no engine), blocks/s",
                [cell(s, ours.name, lambda r: f"{r.get('columns_blocks_per_s', 0):,.0f}") for s in sizes])
            for anchor in (a for a in ANCHORS if a.name in names):
                row(f"ceiling vs {anchor.label} (its time over the read's alone)",
                    [cell(s, ours.name, lambda r, a=anchor: f"{r.get('ceiling_vs', {}).get(a.name, 0):.1f}x")
                     for s in sizes])
    anchors = [a for a in ANCHORS if a.name in names]
    if anchors:
        print()
        print(head.format("anchors: task body, one CSV POST to a discard endpoint"))
        print(rule)
        for anchor in anchors:
            row(f"{anchor.label}, blocks/s", [cell(s, anchor.name, lambda r: f"{r['blocks_per_s']:,.0f}")
                                               for s in sizes])
            row(f"{anchor.label}, peak RSS growth, MB",
                [cell(s, anchor.name, lambda r: f"{r['peak_growth_mb']:.0f}") for s in sizes])
    fit = report.get("ours_fixed_vs_per_row")
    if fit:
        print(f"\nour dump, embedded, t = fixed + per-row x blocks from the 1k and 10k best times: fixed "
              f"{fit['fixed_ms']:.1f} ms a dump, {fit['per_row_us']:.2f} us a block (read cost included; two "
              "best-of-N times on a shared machine: rough, and meaningless when the read cost dominates)")


def fixed_vs_per_row(report: dict[str, Any]) -> dict[str, float] | None:
    by_size = {s["blocks"]: s["contenders"].get("ours-embedded") for s in report["sizes"]}
    small, large = by_size.get(1000), by_size.get(10_000)
    if not small or not large:
        return None
    per_row = (large["best_seconds"] - small["best_seconds"]) / 9000
    return {"fixed_ms": (small["best_seconds"] - 1000 * per_row) * 1000, "per_row_us": per_row * 1e6}


def xblock_floor(n_blocks: int = 20_000, repeat: int = 5) -> float:
    """Microseconds a block: the XBlock library builds a block and serves the seven course settings."""
    from datetime import UTC, datetime

    from opaque_keys.edx.locator import CourseLocator
    from xblock.core import XBlock
    from xblock.fields import Boolean, Date, Scope, ScopeIds, String
    from xblock.runtime import KeyValueStore, KvsFieldData
    from xblock.test.tools import TestRuntime

    class Leaf(XBlock):
        display_name = String(scope=Scope.settings, default=None)
        format = String(scope=Scope.settings, default=None)
        graded = Boolean(scope=Scope.settings, default=False)
        start = Date(scope=Scope.settings, default=datetime(2030, 1, 1, tzinfo=UTC))
        due = Date(scope=Scope.settings, default=None)
        visible_to_staff_only = Boolean(scope=Scope.settings, default=False)
        hide_from_toc = Boolean(scope=Scope.settings, default=False)

    class OwnFields(KeyValueStore):
        """One dict of the block's own fields, looked up by field name (SplitMongoKVS's core)."""

        def __init__(self, fields: dict[str, Any]):
            self.fields = fields

        def get(self, key: Any) -> Any:
            return self.fields[key.field_name]

        def has(self, key: Any) -> bool:
            return key.field_name in self.fields

        def set(self, key: Any, value: Any) -> None:
            self.fields[key.field_name] = value

        def delete(self, key: Any) -> None:
            del self.fields[key.field_name]

    runtime = TestRuntime(services={"field-data": None})
    course = CourseLocator("BenchX", "Floor", "2026", branch="published-branch")
    keys = [course.make_usage_key("html", f"html{i:08d}") for i in range(n_blocks)]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for key in keys:
            block = runtime.construct_xblock_from_class(Leaf, ScopeIds(None, "html", key, key),
                                                        field_data=KvsFieldData(OwnFields({"display_name": "x"})))
            settings = (block.display_name, block.format, block.graded, block.start, block.due,
                        block.visible_to_staff_only, block.hide_from_toc)
        best = min(best, (time.perf_counter() - start) / n_blocks * 1e6)
    assert settings[0] == "x"
    return best


def library_revision(library: Path | None) -> dict[str, Any]:
    """Which event_sinks is measured: a folder given, or this checkout (its commit, and whether
    event_sinks/ had uncommitted changes: others may be editing it while the benchmark runs)."""
    if library:
        return {"path": str(library.resolve())}

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    return {"path": str(REPO), "commit": git("rev-parse", "HEAD"),
            "uncommitted_changes_in_event_sinks": bool(git("status", "--porcelain", "--", "event_sinks"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k and 10k blocks only")
    parser.add_argument("--sizes", type=int, nargs="*",
                        help="course sizes (default 1k 10k 100k 300k; none: only the --profile)")
    parser.add_argument("--read-cost", type=float, default=DEFAULT_READ_COST,
                        help=f"seconds per loaded block, spent by the stand-in store (default {DEFAULT_READ_COST:g}: "
                             "a stand-in figure, see the docstring)")
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CONTENDERS], help="a subset of contenders")
    parser.add_argument("--no-http", action="store_true", help="skip our dump over HTTP")
    parser.add_argument("--aspects-2-path", default=str(DEFAULT_ASPECTS_2),
                        help="where platform-plugin-aspects 2.1.0 is installed (pip --target)")
    parser.add_argument("--profile", nargs="*", choices=[c.name for c in CONTENDERS],
                        help="also a cProfile of 50 dumps of a 1k-block course: ours-embedded when no name is given")
    parser.add_argument("--xblock-floor", action="store_true", help="only measure the XBlock library's per-block cost")
    parser.add_argument("--library", type=Path,
                        help="measure the event_sinks package under this folder (e.g. a git archive of a revision) "
                             "instead of this checkout's working tree")
    parser.add_argument("--output", type=Path, default=RESULTS / "vs_existing.json")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, n_blocks, read_cost, target, *extra = args.worker
        worker_main(name, int(n_blocks), float(read_cost), target, extra[0] if extra else "")
        return
    if args.profile_worker:
        name, n_blocks, read_cost, target, dumps, *extra = args.profile_worker
        profile_main(name, int(n_blocks), float(read_cost), target, extra[0] if extra else "", int(dumps))
        return
    if args.xblock_floor:
        print(f"XBlock library, build a block + read 7 settings: {xblock_floor():.1f} us a block (best of 5; "
              f"load average {os.getloadavg()[0]:.2f})")
        return

    from tests.support.chhttp import ClickHouseHTTPServer

    sizes = args.sizes if args.sizes is not None else [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000,
                                                                                            300_000]
    if args.profile is not None and not args.profile:
        args.profile = ["ours-embedded"]
    contenders = [c for c in CONTENDERS if (not args.only or c.name in args.only)
                  and not (args.no_http and c.name == "ours-http")]
    report: dict[str, Any] = {
        "command": " ".join(["python benchmarks/vs_existing.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "read_cost_s": args.read_cost,
        "course": {"synthetic_course": list(COURSE), "key": KEY},
        "anchors": {a.name: a.version for a in contenders if a.kind == "anchor"},
        "sizes": [],
    }
    if args.library:
        os.environ[LIBRARY_ENV] = str(args.library.resolve())  # inherited by every worker
    report["library"] = library_revision(args.library)
    started = time.perf_counter()
    discard, discard_url = start_discard_server()
    try:
        with tempfile.TemporaryDirectory() as work_dir, tempfile.TemporaryDirectory() as http_data:
            work = Path(work_dir)
            extra_paths = {"aspects-2.1.0": args.aspects_2_path}
            server = ClickHouseHTTPServer(http_data, database="bench")
            if (sizes and any(c.name == "ours-http" for c in contenders)) or "ours-http" in (args.profile or ()):
                server.start()
            try:
                for n_blocks in sizes:
                    targets = {c.name: discard_url for c in contenders if c.kind == "anchor"}
                    targets["ours-embedded"] = f"chdb://{work}/chdb-{n_blocks}"
                    if server.running:
                        targets["ours-http"] = server.dsn
                    report["sizes"].append(measure_size(n_blocks, contenders, args.read_cost, targets, extra_paths,
                                                        work))
                    report["machine"]["load_average_after_" + size_label(n_blocks)] = round(os.getloadavg()[0], 2)
                for name in args.profile or ():
                    print(f"\nprofiling {name}, 1k blocks...", file=sys.stderr, flush=True)
                    target = f"chdb://{work}/chdb-profile-{name}" if name == "ours-embedded" else (
                        server.dsn if name == "ours-http" else discard_url)
                    profile = subprocess.run(
                        [sys.executable, __file__, "--profile-worker", name, "1000", repr(args.read_cost), target,
                         "50", extra_paths.get(name, "")],
                        capture_output=True, text=True, cwd=work, check=False)
                    if profile.returncode:
                        raise RuntimeError(f"profiling {name} failed:\n{profile.stderr[-4000:]}")
                    report.setdefault("profiles_1k", {})[name] = profile.stdout
            finally:
                server.stop()
    finally:
        discard.kill()
        discard.wait()
    report["seconds"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["ours_fixed_vs_per_row"] = fixed_vs_per_row(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['command']}\nread cost {args.read_cost * 1e6:g} us a loaded block (stand-in figure); "
          f"machine {report['machine']}")
    print_tables(report)
    for text in report.get("profiles_1k", {}).values():
        print("\n" + text)
    print(f"\nwritten to {args.output} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
