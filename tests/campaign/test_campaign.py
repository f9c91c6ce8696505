"""The hostile campaign: several hundred generated cases across the fault classes of issue #13, each run
through an entry point a user has, each judged by one oracle.

Classes (``CLASSES``; counts per run): hostile OLX exports (double references, cycles, deep nesting, huge
attributes, bad encodings, bad XML, symbolic links, FIFOs, missing files, bad dates and policies, bad
course keys; as folders, tarballs and folders of exports), hostile tarballs (torn, flipped, header bombs,
chains of headers, sparse, escaping and link members), modulestore courses (cycles, shared blocks, deep
chains), hostile keys, unknown sinks, bad options, bad settings, HTTP faults on one chosen request of a
dump (``tests/support/fault_proxy.py`` and ``hostile_proxy.py``: reset after the server ran it, dropped,
acknowledged without the server, slow, trickled, garbage, wrong status, cut, failing mid-stream; and a
server down or silent), ``sink_query`` with statements that write, export, leave the engine or hide a
second statement, and the ``python -m event_sinks``/``manage.py`` command lines in processes of their own.

The oracle (``tests/support/campaign.py``): success, or a refusal with a non-zero exit status in one
paragraph naming what is at fault, and never a traceback; the current views show each course's previous
complete dump or the new one (one dump per key, the ledger's, with the rows it logged, no location
twice, as many rows as the course read has blocks); nothing past a generous bound; no process killed,
no engine dead.

The cases come from one seed (printed): ``EVENT_SINKS_CAMPAIGN_SEED`` draws others,
``EVENT_SINKS_CAMPAIGN_ONLY=olx-017,http-003`` runs only those (the engine state they start from is then
another, which the oracle does not depend on) and says what each did, ``EVENT_SINKS_CAMPAIGN_SCALE=10``
draws ten times as many cases (a longer local campaign). ``pytest tests/campaign -s`` prints the table that
docs/reliability.md quotes.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from event_sinks.clickhouse import Connection, close_connections
from event_sinks.conf import get_settings
from event_sinks.conf.settings import FIELDS
from event_sinks.courses.sources import ModulestoreSource, OlxSource, set_course_source

from ..support import hostile
from ..support.campaign import (
    Campaign,
    Outcome,
    Plan,
    Probe,
    Verdict,
    api,
    command,
    hang_case_unblocker,
    judge,
    new_current,
    process_outcome,
    short,
)
from ..support.fault_proxy import Fault, every, statement
from ..support.hostile_proxy import MANGLES, STATUSES, HostileProxy, Mangle

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"
DEFAULT_SEED = 20260413
#: Cases per class, in the order of the table.
CLASSES = {
    "olx": 120, "tar": 30, "modulestore": 20, "keys": 26, "sinks": 12, "options": 30, "settings": 40,
    "http": 44, "query": 60, "cli": 6,
}
#: Defects the campaign found and that are not fixed yet: a case whose every finding is one of these, in
#: these classes, is counted as "known" and does not fail the campaign. Each gets a focused strict xfail
#: (as test_known_defects.py's tests were), which fails once the defect is fixed: then its entry here goes
#: too. None is open. {name: (classes, regular expression a finding matches)}
KNOWN: dict[str, tuple[set[str], str]] = {}
PASSWD = "root:x:0:0"
SECRET = "CAMPAIGN-SECRET-d41d8cd9"


def seed() -> int:
    return int(os.environ.get("EVENT_SINKS_CAMPAIGN_SEED") or DEFAULT_SEED)


def case_ids() -> list[tuple[str, str]]:
    """(case id, class) of every case, in the (seeded, shuffled) order they run."""
    scale = float(os.environ.get("EVENT_SINKS_CAMPAIGN_SCALE") or 1)
    ids = [(f"{cls}-{i:03d}", cls) for cls, n in CLASSES.items() for i in range(max(1, round(n * scale)))]
    random.Random(seed()).shuffle(ids)
    only = {part.strip() for part in os.environ.get("EVENT_SINKS_CAMPAIGN_ONLY", "").split(",") if part.strip()}
    return [(case, cls) for case, cls in ids if not only or case in only]


def mark_known(campaign: Campaign) -> None:
    """Label the cases whose every finding is a known defect (KNOWN)."""
    for verdict in campaign.verdicts:
        reasons = set()
        for _, detail in verdict.findings:
            reason = next((name for name, (classes, pattern) in KNOWN.items()
                           if verdict.cls in classes and re.search(pattern, detail)), None)
            if reason is None:
                break
            reasons.add(reason)
        else:
            if reasons:
                verdict.known = ", ".join(sorted(reasons))


# -- the campaign's world: one embedded database, one HTTP database behind a hostile proxy ---------------------


class World:
    """Engines, paths and settings shared by every case of one campaign."""

    def __init__(self, settings, chdb_dir: Path, http_server, tmp: Path):
        self.settings = settings
        self.tmp = tmp
        self.http_server = http_server
        tag = f"{os.getpid()}_{seed() % 100000}_{uuid.uuid4().hex[:6]}"
        self.embedded_db = f"campaign_{tag}"
        self.http_db = f"campaign_http_{tag}"
        self.cli_db = f"campaign_cli_{tag}"
        self.embedded_dsn = f"chdb://{chdb_dir}"
        self.http_base = http_server.dsn.rsplit("/", 1)[0]
        self.proxy = HostileProxy(http_server.port).start()
        self.embedded = Probe("embedded", lambda: Connection(get_settings(
            {"DSN": self.embedded_dsn, "DATABASE": self.embedded_db})))
        self.http = Probe("http", lambda: Connection(get_settings({"DSN": f"{self.http_base}/{self.http_db}"})))
        self.secret = tmp / "secret.txt"
        self.secret.write_text(SECRET + "\n")
        self.silent = socket.socket()  # a black hole: accepts connections (backlog), never answers
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(16)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        self.closed_port = closed.getsockname()[1]
        closed.close()

    def restart_proxy(self) -> None:
        """A new proxy (a case stuck in the old one's fault is let go: its connections are closed)."""
        self.proxy.stop()
        self.proxy = HostileProxy(self.http_server.port).start()

    def close(self) -> None:
        self.proxy.stop()
        self.silent.close()
        self.embedded.reset()
        self.http.reset()

    def configure(self, target: str = "embedded", **extra) -> None:
        """EVENT_SINKS for a case: the engine (embedded, http, proxy, none) and any extra keys."""
        base = {"DISPATCH": "sync", "DATA_DIR": str(self.tmp / "default-data")}  # never the working directory
        if target == "embedded":
            base.update(DSN=self.embedded_dsn, DATABASE=self.embedded_db)
        elif target == "http":
            base["DSN"] = f"{self.http_base}/{self.http_db}"
        elif target == "proxy":
            base.update(DSN=self.proxy.dsn(self.http_server, self.http_db), CONNECT_TIMEOUT=1,
                        SEND_RECEIVE_TIMEOUT=1.5, DUMP_TIMEOUT=1.5)
        self.settings.EVENT_SINKS = {**base, **extra}
        close_connections()
        set_course_source(None)

    def where(self, case: str) -> Path:
        path = self.tmp / case
        path.mkdir()
        return path


def finish(call):
    """Run ``call`` and always reset the course source and the connections after it."""
    def run() -> Outcome:
        try:
            return call()
        finally:
            set_course_source(None)
            close_connections()
    return run


def published(version: str) -> str:
    return re.sub(r"\+r\d+$", "", version or "")


# -- checks shared by the classes --------------------------------------------------------------------------


def no_leak(world: World, probe: Probe | None):
    """Nothing read outside an export shows, in the output or the views."""
    def check(outcome: Outcome, before, after) -> list[str]:
        found = []
        seen = outcome.seen
        for marker in (hostile.LEAKED, PASSWD, SECRET):
            if marker in seen:
                found.append(f"{marker!r} (read outside the export or the engine) is in the output")
        if probe is not None and after is not None:
            for marker in (hostile.LEAKED, PASSWD, SECRET):
                count = probe.query("SELECT count() FROM {db}.course_outline "
                                    "WHERE position(display_name, {m:String}) > 0", {"m": marker})[0][0]
                if count:
                    found.append(f"{marker!r} (read outside the export) is in {count} rows of course_outline")
        return found
    return check


def olx_complete(paths: list[Path], strict: bool, course_key: str | None):
    """Each course_outline dump this case made holds as many rows as the course, read again, has blocks."""
    def check(outcome: Outcome, before, after) -> list[str]:
        found = []
        fresh = new_current(before, after, "course_outline")
        if not fresh:
            return found
        try:
            source = OlxSource(paths, course_key=course_key, strict=strict)
        except Exception as exc:
            return [f"a dump was made, but the export cannot be read again: {type(exc).__name__}: {short(str(exc))}"]
        for key, _, rows, version in fresh:
            try:
                course = source.read(key)
                blocks = sum(1 for _ in course.blocks())
            except Exception as exc:
                found.append(f"course_outline {key} was dumped, but reading it again raised {type(exc).__name__}: "
                             f"{short(str(exc))}")
                continue
            if published(version) != course.source_version:
                found.append(f"course_outline {key}: the dump is labelled {version}, the export is "
                             f"{course.source_version}")
            elif rows != blocks:
                found.append(f"course_outline {key}: {rows} rows for a course of {blocks} blocks")
        return found
    return check


def nothing_at(paths: list[Path]):
    def check(outcome: Outcome, before, after) -> list[str]:
        return [f"{path} was created (outside the export)" for path in paths if os.path.lexists(path)]
    return check


# -- the classes ----------------------------------------------------------------------------------------------


def olx_entry(rng: random.Random, export: hostile.Export, world: World, probe: Probe) -> Plan:
    """Run a generated export through one of the entry points that read OLX."""
    strict = rng.random() < 0.3
    sink = rng.choice(["course_outline"] * 3 + ["block_relationships"])
    entry = rng.choices(["all", "key", "dry-run", "api", "course-key", "reconcile"], [40, 15, 10, 20, 8, 7])[0]
    path = export.path
    olx = ["--olx", str(path), *(["--strict"] if strict else [])]
    names = set(export.culprits)
    course_key = None
    if entry == "all":
        args = [sink, "--all", "--force", *olx]
    elif entry == "key":
        args = [sink, export.key or DEMO_KEY, "--force", *olx]
        names.add(export.key or DEMO_KEY)
    elif entry == "dry-run":
        args = [sink, "--all", "--dry-run", "--format", rng.choice(["jsonl", "csv", "table"]), *olx]
    elif entry == "course-key":
        course_key = f"course-v1:Camp+K{rng.randrange(3)}+R"
        args = [sink, "--all", "--force", "--course-key", course_key, *olx]
        names |= {"--course-key", course_key}
    elif entry == "reconcile":
        args = [sink, "--all", "--reconcile", *olx]
    if entry == "api":
        skip = rng.random() < 0.3

        def call() -> Outcome:
            from event_sinks import dump

            def go():
                set_course_source(OlxSource([path], strict=strict))
                return dump(sink, skip_unchanged=skip)
            return api(go)
        run, what = call, f"dump({sink!r}) over OlxSource({path.name}, strict={strict})"
    else:
        run, what = (lambda: command("dump_sink", *args)), "dump_sink " + " ".join(
            a if not a.startswith(str(world.tmp)) else a[len(str(world.tmp)) + 1:] for a in args)
    checks = [no_leak(world, probe), nothing_at(export.forbidden)]
    if not export.fifos:  # reading an export with a FIFO again would wait for a writer
        checks.append(olx_complete([path], strict, course_key))
    return Plan(f"{what} [{', '.join(export.faults) or 'clean'}]", finish(run), names,
                expect="succeed" if export.clean and entry != "reconcile" and not (
                    entry == "course-key" and "exports" in export.faults) else "any", engine=probe, checks=checks,
                unstick=hang_case_unblocker(export.fifos) if export.fifos else None,
                bound=60.0 if export.fifos else 45.0)


def draw_olx(rng, world: World, case: str) -> Plan:
    world.configure("embedded")
    export = hostile.olx_export(rng, world.where(case), f"C{rng.randrange(6)}")
    return olx_entry(rng, export, world, world.embedded)


def draw_tar(rng, world: World, case: str) -> Plan:
    world.configure("embedded")
    export = hostile.hostile_tarball(rng, world.where(case), f"C{rng.randrange(6)}")
    return olx_entry(rng, export, world, world.embedded)


def draw_modulestore(rng, world: World, case: str) -> Plan:
    world.configure("embedded")
    course = hostile.store_course(rng, f"S{rng.randrange(4)}")
    sink = rng.choice(["course_outline", "course_outline", "block_relationships"])
    entry = rng.choice(["api", "key", "all"])

    def run() -> Outcome:
        set_course_source(ModulestoreSource(course.store))
        if entry == "api":
            from event_sinks import dump

            return api(lambda: dump(sink, [course.key]))
        return command("dump_sink", sink, *([course.key] if entry == "key" else ["--all"]), "--force")

    def complete(outcome: Outcome, before, after) -> list[str]:
        from event_sinks.courses.modulestore import read_modulestore

        found = []
        for key, _, rows, _ in new_current(before, after, "course_outline"):
            blocks = sum(1 for _ in read_modulestore(key, store=course.store).blocks())
            if rows != blocks:
                found.append(f"course_outline {key}: {rows} rows for a course of {blocks} blocks")
        return found

    return Plan(f"{entry} {sink} over a stand-in modulestore [{course.fault}]", finish(run), course.culprits,
                expect="refuse" if course.fails else "any", engine=world.embedded, checks=[complete],
                accepted="break")


def draw_keys(rng, world: World, case: str) -> Plan:
    world.configure("embedded")
    key = rng.choice(hostile.HOSTILE_KEYS)
    sink = rng.choice(["course_outline", "block_relationships"])
    entry = rng.choice(["dump_sink", "dump_sink", "dry-run", "show_course", "api", "skip"])
    names = {key[:60], repr(key)[1:61]} if key.strip() else {"''", "empty", "KEY", "key"}
    olx = ["--olx", str(DEMO)]
    if entry == "api":
        def run() -> Outcome:
            from event_sinks import dump

            set_course_source(OlxSource([DEMO]))
            return api(lambda: dump(sink, [key]))
    elif entry == "show_course":
        def run() -> Outcome:
            return command("show_course", key)
    elif entry == "skip":  # a hostile key given to leave out: the demo course is dumped
        def run() -> Outcome:
            return command("dump_sink", sink, "--all", "--skip", key, *olx)
    else:
        extra = ["--dry-run"] if entry == "dry-run" else ["--force"]

        def run() -> Outcome:
            return command("dump_sink", sink, key, *extra, *olx)
    return Plan(f"{entry} {sink} with key {short(repr(key), 80)}", finish(run), names,
                expect="any" if entry == "skip" else "refuse", engine=world.embedded)


def draw_sinks(rng, world: World, case: str) -> Plan:
    world.configure("embedded")
    name = rng.choice(hostile.SINK_NAMES)
    entry = rng.choice(["dump_sink --all", "dump_sink KEY", "sink_schema", "sink_schema --apply", "api"])
    names = {name[:60], repr(name)[1:61]} if name.strip() else {"''", "sink"}
    # an installed sink that cannot run here (a model sink outside Open edX) still has a schema to print
    expect = "any" if name == "course_overviews" and entry.startswith("sink_schema") else "refuse"

    def run() -> Outcome:
        if entry == "api":
            from event_sinks import dump

            return api(lambda: dump(name, [DEMO_KEY]))
        if entry.startswith("sink_schema"):
            return command("sink_schema", name, *entry.split()[1:])
        return command("dump_sink", name, *(["--all"] if entry.endswith("--all") else [DEMO_KEY]), "--olx", str(DEMO))

    return Plan(f"{entry} with sink {short(repr(name), 60)}", finish(run), names, expect=expect,
                engine=world.embedded)


def draw_options(rng, world: World, case: str) -> Plan:
    world.configure("embedded")
    where = world.where(case)
    plain = where / "notes.txt"
    plain.write_text("not an export")
    (where / "empty").mkdir()
    (where / "zip.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    olx = ["--olx", str(DEMO)]
    choices = [
        (lambda v: ["course_outline", "--all", "--limit", v, *olx], ["-1", "-99", "x", "1.5", "", "1e3"], "--limit"),
        (lambda v: ["course_outline", "--all", "--batch-size", v, *olx], ["0", "-1", "x", "", "nan"], "--batch-size"),
        (lambda v: ["course_outline", "--all", "--since", v, *olx],
         ["garbage", "2026-13-01", "", "1e400", "yesterday", "2026-01-01T25:00"], "--since"),
        (lambda v: ["course_outline", "--all", "--dry-run", "--format", v, *olx], ["xml", "JSONL", ""], "--format"),
        (lambda v: ["course_outline", "--all", "--format", v, *olx], ["jsonl", "csv"], "--format"),
        (lambda v: ["course_outline", v, "--reconcile", *olx], ["--all --limit 1", DEMO_KEY, "--since 2020-01-01"],
         "--reconcile"),
        (lambda v: ["course_outline", "--all", "--allow-empty-source", *olx], [""], "--allow-empty-source"),
        (lambda v: ["course_outline", "--all", "--course-key", v], [DEMO_KEY, "garbage"], "--course-key"),
        (lambda v: ["course_outline", "--all", "--course-key", v, *olx],
         ["garbage", "course-v1:", "library-v1:A+B", "course-v1:A B+C+D"], "--course-key"),
        (lambda v: ["course_outline", "--all", "--resume", "--dry-run", *olx], [""], "--resume"),
        (lambda v: ["course_outline", "--all", v, *olx], [DEMO_KEY], "KEY"),
        (lambda v: ["course_outline", *olx], [""], "--all"),
        (lambda v: ["course_outline", "--all", v, *olx], ["--frobnicate", "-x", "--all=1", "--forc"], None),
        (lambda v: ["course_outline", "--all", v], ["--olx", "--skip", "--limit", "--since", "--batch-size"], None),
        (lambda v: ["course_outline", "--since", "2026-01-01", v, *olx], [DEMO_KEY], "--since"),
        (lambda v: ["course_outline", "--all", "--olx", v],
         [str(plain), "/dev/null", str(where / "empty"), str(where / "zip.zip"), str(where / "missing"), ""], None),
    ]
    build, values, option = rng.choice(choices)
    value = rng.choice(values)
    args = [word for part in build(value) for word in (part.split() if part.startswith("--all ") or
                                                       part.startswith("--since ") else [part])]
    if option is None:
        option = value.split("=")[0] if value.startswith("-") else value
    names = {option} if option else set()
    if option == "--course-key":
        names.add(value)
    if option in ("--olx", str(plain), "/dev/null") or value.startswith(str(where)) or value == "":
        names |= {value, "--olx"} if value else {"--olx"}
    if option == "KEY":
        names = {"KEYs", "--all", "KEY"}
    command_name = "dump_sink"
    if rng.random() < 0.15:  # the other commands' options
        command_name, args, names = rng.choice([
            ("sink_query", ["SELECT 1", "--timeout", rng.choice(["0", "-1", "nan", "inf", "x", ""])], {"--timeout"}),
            ("sink_schema", ["--apply", "--frobnicate"], {"--frobnicate"}),
            ("show_course", [], {"course_key", "COURSE_KEY", "arguments"}),
            ("list_sinks", ["--bogus"], {"--bogus"}),
        ])
    return Plan(f"{command_name} {' '.join(args)}".replace(str(world.tmp) + "/", ""),
                finish(lambda: command(command_name, *args)), names, expect="refuse", engine=world.embedded)


#: Valid values that are hostile to a dump all the same: (key, value, what a refusal may name).
ODD_SETTINGS = [
    ("BATCH_SIZE", 1, {"BATCH_SIZE"}), ("DUMP_TIMEOUT", 1e-6, {"DUMP_TIMEOUT", "timeout"}),
    ("SEND_RECEIVE_TIMEOUT", 1e-6, {"SEND_RECEIVE_TIMEOUT", "timed out", "timeout"}),
    ("DATABASE", "campaign_" + "x" * 100, {"DATABASE", "x" * 30}),
    ("SINKS", {"course_outline": {"ENABLED": False}}, {"course_outline", "ENABLED", "disabled"}),
]
BAD_ENV_DSNS = ["http://u:pw@127.0.0.1:99999/db", "ftp://h/db", "not a dsn", "http://:8123/db",
                "http://h:8123/my-db", "http://u:p@[::1/db", "http://u:pw@127.0.0.1:notaport/db"]
BAD_ASPECTS = [{"url": "ftp://ch:8123", "username": "u", "password": "p"}, "not a dict", {"url": 5}, {},
               {"url": "http://ch:99999"}, {"url": "http://ch:8123", "username": None}]


def draw_settings(rng, world: World, case: str) -> Plan:
    commands = [("list_sinks", []), ("sink_schema", []), ("dump_sink", ["course_outline", "--all", "--olx", str(DEMO)]),
                ("show_course", [DEMO_KEY]), ("sink_query", ["SELECT 1"])]
    name, args = rng.choice(commands)
    kind = rng.choices(["field", "env", "aspects", "odd"], [70, 12, 8, 10])[0]
    env: dict[str, str] = {}
    key = None
    expect, accepted = "refuse", "unclear"
    if kind == "field":
        key, value = hostile.bad_setting(rng, FIELDS)
        if isinstance(value, hostile._Raises):
            what = f"EVENT_SINKS[{key!r}] = {value.value!r}"

            def raising() -> Outcome:
                return Outcome("escaped", f"the check of {key} raised {type(value.error).__name__}: {value.error}")
            return Plan(what, raising, {key})
        extra = {key: value}
        names = {f"EVENT_SINKS[{key!r}]"}
        what = f"{name} with EVENT_SINKS[{key!r}] = {short(repr(value), 80)}"
        target = "none"
    elif kind == "env":
        env["EVENT_SINKS_DSN"] = rng.choice(BAD_ENV_DSNS)
        extra, names, target = {}, {"EVENT_SINKS_DSN"}, "none"
        what = f"{name} with EVENT_SINKS_DSN={env['EVENT_SINKS_DSN']!r}"
    elif kind == "aspects":
        value = rng.choice(BAD_ASPECTS)
        # no url ({}) is no Aspects engine: then the embedded one in DATA_DIR, which this process cannot open
        extra, names, target = {}, {"EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG", "EVENT_SINKS['DATA_DIR']"}, "none"
        what = f"{name} with EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {value!r}"
        expect = "any"
    else:
        key, value, names = rng.choice(ODD_SETTINGS)
        extra, target, expect = {key: value}, "embedded", "any"
        what = f"{name} with the valid but odd EVENT_SINKS[{key!r}] = {short(repr(value), 40)}"
        names = names | {key} | set(args)  # the setting may not be what a refusal is about
    world.configure(target, **extra)
    if kind == "aspects":
        world.settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = value

    def run() -> Outcome:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return command(name, *args)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            with contextlib.suppress(AttributeError):
                del world.settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG

    # (another DATABASE is another database: the campaign's is not the one to watch then)
    return Plan(what, finish(run), names, expect=expect, accepted=accepted,
                engine=world.embedded if target == "embedded" and key != "DATABASE" else None)


#: Steps of a command a fault may aim at (by a word of their SQL): the run's records, the ledger, the
#: schema checks, the server's clock, a batch of rows.
AIMS = ["event_sinks_runs", "event_sinks_current_dumps", "event_sinks_dump_log", "system.tables", "now64",
        "INSERT INTO", "course_blocks", "count()"]
HTTP_BOUND = 20.0
#: http case -> whether its fault fired (a fault on a request past the last one of the run never does)
FIRED: dict[str, bool] = {}
HTTP_ACTIONS = {"reset": 18, "ack": 10, "delay": 10, "drop": 5, "trickle": 5, "garbage": 8, "body": 8, "status": 12,
                "short": 8, "exception": 6, "down": 4, "silent": 3}


def draw_http(rng, world: World, case: str) -> Plan:
    action = rng.choices(list(HTTP_ACTIONS), list(HTTP_ACTIONS.values()))[0]
    where = world.where(case)
    entry = rng.choices(["dump_sink", "api", "two-courses", "sink_query", "sink_schema", "reconcile", "show_course"],
                        [40, 20, 15, 10, 8, 7, 6])[0]
    world.configure("proxy")
    world.proxy.clear()
    if action in ("down", "silent"):
        port = world.closed_port if action == "down" else world.silent.getsockname()[1]
        world.configure("proxy", DSN=f"http://tester:s3cret-pw@127.0.0.1:{port}/{world.http_db}")
        fault, what = None, f"the server {'down' if action == 'down' else 'accepting but silent'}"
    else:
        nth, times = rng.randint(1, 10), rng.choice([1, 1, 1, 2, None])
        aimed = rng.choice(AIMS) if rng.random() < 0.3 else None  # the request a step of the command makes
        match = statement(aimed) if aimed else every
        nth = 1 if aimed else nth
        if action in MANGLES:
            fault = Mangle(match=match, nth=nth, times=times, how=action, status=rng.choice(STATUSES),
                           seed=rng.getrandbits(32))
        else:
            seconds = rng.choice([0.05, 0.3, 2.0]) if action in ("delay",) else rng.choice([0.05, 0.2])
            fault = Fault(action, match=match, nth=nth, times=times, seconds=seconds, chunk=1)
        what = f"{action} on {'the request naming ' + aimed if aimed else f'request {nth}'}" + (
            f" and the {'next' if times == 2 else 'rest'}" if times != 1 else "") + (
            f" ({fault.status})" if action == "status" else "") + (
            f" {fault.seconds}s" if action in ("delay", "trickle") else "")
    sink = rng.choice(["course_outline", "block_relationships"])
    paths = [DEMO]
    if entry in ("two-courses", "reconcile") or rng.random() < 0.3:
        number = f"H{rng.randrange(4)}"
        tree = hostile.Tree(rng, "Camp", number)
        paths = [tree.write(where / "exports" / number).parent]
        if entry == "two-courses":
            hostile.Tree(rng, "Camp", f"H{rng.randrange(4, 8)}").write(where / "exports" / "second")
    olx = [part for path in paths for part in ("--olx", str(path))]

    def run() -> Outcome:
        if fault is not None:
            world.proxy.inject(fault)
        FIRED[case] = fault is None
        try:
            if entry == "api":
                from event_sinks import dump

                set_course_source(OlxSource(paths))
                return api(lambda: dump(sink))
            if entry == "sink_query":
                return command("sink_query", f"SELECT count() AS n FROM {sink}", "--timeout", "2")
            if entry == "sink_schema":
                return command("sink_schema", sink, "--apply")
            if entry == "show_course":
                return command("show_course", DEMO_KEY)
            if entry == "reconcile":
                return command("dump_sink", sink, "--all", "--reconcile", *olx)
            return command("dump_sink", sink, "--all", "--force", *olx)
        finally:
            FIRED[case] = FIRED[case] or bool(fault is not None and fault.hits)
            world.proxy.clear()

    names = {"127.0.0.1", "ClickHouse", "clickhouse", "DUMP_TIMEOUT", "timed out", "timeout", "engine"}
    # DUMP_TIMEOUT (1.5 s) bounds each dump, SEND_RECEIVE_TIMEOUT (1.5 s) each read, --timeout 2 the query:
    # a few dumps and the run's bookkeeping stay well inside HTTP_BOUND; a trickled answer that nothing
    # bounds (0.05 to 0.2 s a byte, answers of hundreds of bytes) goes past it.
    return Plan(f"{entry} {sink} through the proxy: {what}", finish(run), names, engine=world.http,
                checks=[no_leak(world, None)], unstick=world.restart_proxy, bound=HTTP_BOUND)


def draw_query(rng, world: World, case: str) -> Plan:
    target = rng.choices(["embedded", "http"], [80, 20])[0]
    world.configure(target)
    probe = world.embedded if target == "embedded" else world.http
    canary = world.tmp / f"canary-{case}.out"
    database = probe.conn().database
    statement = hostile.hostile_sql(rng, db=database, canary=canary, secret=world.secret)
    args = [statement.sql, *(["--timeout", str(statement.timeout)] if statement.timeout else [])]
    counts: dict[str, int] = {}

    def run() -> Outcome:
        counts.update(row_counts(probe))
        return command("sink_query", *args)

    def unchanged(outcome: Outcome, before, after) -> list[str]:
        found = []
        if before is not None and after is not None and before["tables"] != after["tables"]:
            found.append(f"the tables changed: {sorted(set(before['tables']) ^ set(after['tables']))}")
        now = row_counts(probe)
        for table, count in counts.items():
            if now.get(table) != count:
                found.append(f"{table}: {count} rows before, {now.get(table)} after")
        if os.path.lexists(canary) or os.path.lexists(str(canary) + ".gz"):
            found.append(f"{canary} was written")
        return found

    expect = {"write": "refuse", "outfile": "refuse", "outside": "refuse", "several": "refuse", "read": "succeed"}
    return Plan(f"sink_query on {target}: {short(repr(statement.sql), 140)} [{statement.kind}]".replace(
        str(world.tmp) + "/", ""), finish(run), statement.culprits, expect=expect.get(statement.kind, "any"),
        engine=probe, checks=[unchanged, no_leak(world, None)], accepted="break")


def row_counts(probe: Probe) -> dict[str, int]:
    """Rows of each table; of a sink's ``_dumps`` table only the current dumps' rows (retention's lightweight
    DELETEs of superseded dumps are applied in the background, at any time)."""
    tables = [row[0] for row in probe.query("SHOW TABLES FROM {db}")]
    engines = dict(probe.query("SELECT name, engine FROM system.tables WHERE database = {d:String}",
                               {"d": probe.conn().database}))
    counts = {}
    for table in tables:
        if engines.get(table, "").endswith("View"):
            continue
        where = " WHERE dump_id IN (SELECT dump_id FROM {db}.event_sinks_current_dumps)" \
            if table.endswith("_dumps") else ""
        counts[table] = probe.query(f"SELECT count() FROM {{db}}.`{table}`{where}")[0][0]
    return counts


# -- the command lines, each in its own process (started first, collected last) ---------------------------------


class Processes:
    """The ``cli`` cases: drawn and started before the in-process cases, judged after them."""

    def __init__(self, world: World):
        self.world = world
        self.running: list[tuple[str, Plan, threading.Thread, dict]] = []

    def start(self, case: str, rng: random.Random) -> None:
        world = self.world
        where = world.where(case)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.pop("EVENT_SINKS_DSN", None)
        kind = ["bad-dsn", "hostile-export", "hostile-query", "unknown-sink", "manage-py", "hostile-tarball"][
            int(case.split("-")[1]) % 6]
        expect = "any"
        argv = [sys.executable, "-m", "event_sinks"]
        http = f"{world.http_base}/{world.cli_db}"
        if kind == "bad-dsn":
            words = rng.choice([["query", "SELECT 1"], ["dump_sink", "course_outline", "--all"], ["list"]])
            dsn = rng.choice(BAD_ENV_DSNS)
            argv += rng.choice([["--dsn", dsn, *words], [*words, "--dsn", dsn]])
            names, expect = {"--dsn"}, "refuse"
        elif kind in ("hostile-export", "hostile-tarball"):
            draw = hostile.olx_export if kind == "hostile-export" else hostile.hostile_tarball
            export = draw(rng, where / "input", f"P{rng.randrange(3)}")
            while export.fifos:  # a FIFO would only test the timeout of this process
                export = draw(rng, where / f"input{rng.randrange(10 ** 6)}", "P0")
            sink = rng.choice(["course_outline", "block_relationships"])
            argv += ["dump_sink", sink, "--all", "--force", "--olx", str(export.path)]
            if kind == "hostile-tarball":
                argv += ["--dsn", http]
            names = export.culprits
        elif kind == "hostile-query":
            statement = hostile.hostile_sql(random.Random(rng.random()), db=world.cli_db,
                                            canary=where / "canary.out", secret=world.secret)
            while statement.kind not in ("write", "outfile", "outside", "several"):
                statement = hostile.hostile_sql(rng, db=world.cli_db, canary=where / "canary.out",
                                                secret=world.secret)
            env["EVENT_SINKS_DSN"] = http
            argv += ["query", statement.sql, "--timeout", "3"]
            names, expect = statement.culprits, "refuse"
        elif kind == "unknown-sink":
            name = rng.choice([n for n in hostile.SINK_NAMES if n.strip() and "\x00" not in n])
            argv += ["dump_sink", name, "--all", "--olx", str(DEMO)]
            names, expect = {name[:60]}, "refuse"
        else:
            key, value = hostile.bad_setting(rng, FIELDS)
            while isinstance(value, hostile._Raises) or "object at 0x" in repr(value):
                key, value = hostile.bad_setting(rng, FIELDS)
            (where / "project_settings.py").write_text(
                "SECRET_KEY = 'x'\nUSE_TZ = True\nINSTALLED_APPS = ['event_sinks']\nDATABASES = {}\n"
                f"LOGGING_CONFIG = None\nimport math\nfrom pathlib import PosixPath\nnan, inf = math.nan, math.inf\n"
                f"EVENT_SINKS = {{{key!r}: {value!r}}}\n")
            (where / "manage.py").write_text("import sys\nfrom django.core.management import execute_from_command_line"
                                             "\nexecute_from_command_line(sys.argv)\n")
            env["PYTHONPATH"] = os.pathsep.join([str(where), str(REPO)])
            env["DJANGO_SETTINGS_MODULE"] = "project_settings"
            argv = [sys.executable, "manage.py", "dump_sink", "course_outline", "--all", "--olx", str(DEMO),
                    "--skip-checks"]
            names, expect = {f"EVENT_SINKS[{key!r}]"}, "refuse"
        what = " ".join(a if len(a) < 60 else a[:57] + "..." for a in argv[1:]).replace(str(world.tmp) + "/", "")
        plan = Plan(what, lambda: Outcome("ok"), names, expect=expect, bound=150.0,
                    checks=[no_leak(world, None)])
        process = subprocess.Popen(argv, cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, errors="replace")
        box: dict = {}
        waiter = threading.Thread(target=self._wait, args=(process, plan.bound, box), daemon=True)
        waiter.start()
        self.running.append((case, plan, waiter, box))

    @staticmethod
    def _wait(process: subprocess.Popen, bound: float, box: dict) -> None:
        started = time.perf_counter()
        try:
            stdout, stderr = process.communicate(timeout=bound)
            box["result"] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            box["result"] = None
        box["elapsed"] = time.perf_counter() - started

    def collect(self, campaign: Campaign) -> None:
        for case, plan, waiter, box in self.running:
            waiter.join()
            outcome = process_outcome(box["result"], box["elapsed"], plan.bound)
            problems = [p for check in plan.checks for p in check(outcome, None, None)]
            campaign.add(Verdict(case, "cli", plan.what, outcome, judge(plan, outcome, problems)))


# -- the test -----------------------------------------------------------------------------------------------------

DRAW = {"olx": draw_olx, "tar": draw_tar, "modulestore": draw_modulestore, "keys": draw_keys, "sinks": draw_sinks,
        "options": draw_options, "settings": draw_settings, "http": draw_http, "query": draw_query}


def warm_up(world: World) -> None:
    """One clean dump of each course sink into both databases: the schema and a previous dump to keep."""
    for target in ("embedded", "http"):
        world.configure(target)
        for sink in ("course_outline", "block_relationships"):
            outcome = command("dump_sink", sink, "--all", "--olx", str(DEMO))
            assert outcome.status == "ok", outcome.message
    set_course_source(None)
    close_connections()


def run_cases(world: World, cases: list[tuple[str, str]]) -> Campaign:
    campaign = Campaign()
    processes = Processes(world)
    try:
        for case, cls in cases:
            if cls == "cli":
                processes.start(case, random.Random(f"{seed()}:{case}"))
        for case, cls in cases:
            if cls != "cli":
                rng = random.Random(f"{seed()}:{case}")
                campaign.run(case, cls, lambda rng=rng, case=case, cls=cls: DRAW[cls](rng, world, case))
        processes.collect(campaign)
        mark_known(campaign)
    finally:
        campaign.close()
        world.configure("embedded")
    return campaign


@pytest.fixture
def world(settings, chdb_dir, http_server, tmp_path, monkeypatch):
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    if not http_server.running:
        http_server.start()
    world = World(settings, chdb_dir, http_server, tmp_path)
    warm_up(world)
    yield world
    world.close()
    set_course_source(None)
    close_connections()


def report(campaign: Campaign, elapsed: float) -> str:
    lines = [f"\n[campaign] seed {seed()} (EVENT_SINKS_CAMPAIGN_SEED), {len(campaign.verdicts)} cases in "
             f"{elapsed:.1f} s", campaign.table(CLASSES)]
    spent = {cls: sum(v.outcome.elapsed for v in campaign.verdicts if v.cls == cls) for cls in CLASSES}
    lines.append("seconds per class (cli: in parallel): " + ", ".join(f"{cls} {t:.1f}" for cls, t in spent.items()))
    http = [v.case for v in campaign.verdicts if v.cls == "http"]
    lines.append(f"http: the fault fired (or the server was down) in {sum(FIRED.get(c, False) for c in http)} of "
                 f"{len(http)} cases")
    for verdict in sorted((v for v in campaign.verdicts if v.known), key=lambda v: v.case):
        lines.append(f"known defect ({verdict.known}): {verdict.case} {verdict.what}")
    slowest = sorted(campaign.verdicts, key=lambda v: -v.outcome.elapsed)[:4]
    lines.append("slowest: " + "; ".join(f"{v.case} {v.outcome.elapsed:.1f}s" for v in slowest))
    return "\n".join(lines)


def failures(campaign: Campaign) -> list[str]:
    out = []
    for verdict in sorted(campaign.verdicts, key=lambda v: v.case):
        if verdict.findings and not verdict.known:
            found = "; ".join(f"{kind}: {detail}" for kind, detail in verdict.findings)
            out.append(f"{verdict.case} ({verdict.what}): {found}\n    reproduce: EVENT_SINKS_CAMPAIGN_SEED={seed()} "
                       f"EVENT_SINKS_CAMPAIGN_ONLY={verdict.case} pytest tests/campaign -s")
    return out


@pytest.mark.slow
def test_hostile_campaign(world):
    started = time.perf_counter()
    campaign = run_cases(world, case_ids())
    elapsed = time.perf_counter() - started
    print(report(campaign, elapsed))
    if os.environ.get("EVENT_SINKS_CAMPAIGN_ONLY"):  # reproducing: say what each case did
        for verdict in campaign.verdicts:
            print(f"{verdict.case}: {verdict.what}\n  {verdict.outcome.status} in {verdict.outcome.elapsed:.1f} s: "
                  f"{short(verdict.outcome.message or verdict.outcome.stdout, 600)}\n  "
                  + "\n  ".join(verdict.outcome.failed[:3]))
    failing = failures(campaign)
    assert not failing, f"{len(failing)} cases broke the oracle:\n" + "\n".join(failing)
    if not os.environ.get("EVENT_SINKS_CAMPAIGN_ONLY"):
        assert len(campaign.verdicts) >= 300
