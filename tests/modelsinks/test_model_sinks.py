"""Model sinks against a real SQLite database and the real embedded engine.

Models live in ``tests/testapp``: ``Everything`` has a field of every mapped kind, ``CourseOverview``
has edx-platform's field names and types, ``Note`` has a text primary key.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from event_sinks import dump, receivers
from event_sinks.clickhouse import close_connections, get_connection
from event_sinks.errors import InvalidKeyError, SinkDefinitionError
from event_sinks.modelsinks import ModelSink, ModelUnavailableError
from event_sinks.registry import registry
from event_sinks.sinks.course_overviews import CourseOverviewSink

from ..test_registry import make_distribution
from ..testapp.models import CourseOverview, Everything, Note, Owner


class EverythingSink(ModelSink):
    """Every kind of field."""

    name = "test_everything"
    model = "testapp.Everything"


class SecretNotesSink(ModelSink):
    """Notes with their authors' emails."""

    name = "test_secret_notes"
    model = "testapp.Note"
    pii = True


COURSE = "course-v1:Org+Num+Run"
USAGE = "block-v1:Org+Num+Run+type@html+block@intro"
AT = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)

EXPECTED_COLUMNS = [
    ("pk", "String"),  # the key: the primary key as text (the ledger's keys are text)
    ("id", "Int64"),  # BigAutoField
    ("char", "String"), ("text", "String"), ("slug", "String"), ("email", "String"), ("url", "String"),
    ("small", "Int16"), ("integer", "Int32"), ("big", "Int64"),
    ("psmall", "UInt16"), ("pint", "UInt32"), ("pbig", "UInt64"),
    ("amount", "Decimal(12, 3)"), ("ratio", "Float64"),
    ("at", "DateTime64(6, 'UTC')"), ("day", "Date32"), ("flag", "Bool"), ("uid", "UUID"), ("data", "String"),
    ("owner_id", "Int32"),  # ForeignKey -> the target's AutoField
    ("course", "String"), ("usage", "String"),  # CourseKeyField, UsageKeyField
    ("overview_id", "Nullable(String)"),  # nullable OneToOneField -> a CourseKeyField primary key
    ("maybe_text", "Nullable(String)"), ("maybe_int", "Nullable(Int32)"),
    ("maybe_amount", "Nullable(Decimal(6, 2))"), ("maybe_at", "Nullable(DateTime64(6, 'UTC'))"),
    ("maybe_day", "Nullable(Date32)"), ("maybe_flag", "Nullable(Bool)"), ("maybe_uid", "Nullable(UUID)"),
    ("maybe_data", "Nullable(String)"), ("maybe_course", "Nullable(String)"), ("maybe_owner_id", "Nullable(Int32)"),
    ("updated_at", "DateTime64(6, 'UTC')"),
]


@pytest.fixture
def registered(embedded):
    """The test sinks in the registry, on the embedded engine."""
    added = [EverythingSink, SecretNotesSink]
    if "course_overviews" not in registry.names():  # an editable install made before the entry point existed
        added.append(CourseOverviewSink)
    for sink_class in added:
        registry.register(sink_class, "tests")
    yield
    for sink_class in added:
        registry.unregister(sink_class.name)


@pytest.fixture
def wired(registered, settings):
    """Dispatch on commit, and receivers connected as AppConfig.ready() connects them."""
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DISPATCH": "on_commit"}
    receivers.connect_all()
    yield
    _disconnect("test_everything", "test_secret_notes", "course_overviews")


def _disconnect(*names):
    assert set(names) & receivers.connected_sinks()
    receivers.disconnect_sinks(*names)
    assert not set(names) & receivers.connected_sinks()


def query(sql, **params):
    engine = get_connection()
    return engine.query(sql.replace("{db}", f"`{engine.database}`"), params)


def naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) and value.tzinfo else value


def make(owner, n=0, **fields):
    values = dict(char=f"c{n}", course=COURSE, usage=USAGE, at=AT, day=date(2026, 3, 1))
    values.update(fields)
    return Everything.objects.create(owner=owner, **values)


# -- declaration --------------------------------------------------------------------------------------


def test_columns_are_derived_from_every_field_type():
    sink = EverythingSink()
    assert [(c.name, c.type) for c in sink.columns] == EXPECTED_COLUMNS
    assert sink.key_field == "pk" and sink.field_names[0] == "pk"
    assert sink.declaration().version_attname == "updated_at"  # auto_now: found without declaring it
    table = sink.table()
    assert table.order_by[:3] == ("pk", "dumped_at", "dump_id")


def test_declaration_mistakes_are_clear():
    with pytest.raises(SinkDefinitionError, match="`model` must be 'app_label.ModelName'"):
        class NoDot(ModelSink):
            name = "no_dot"
            model = "Everything"

    class UnknownField(ModelSink):
        name = "unknown_field"
        model = "testapp.Note"
        fields = ("slug", "title")

    with pytest.raises(SinkDefinitionError, match="`fields` names unknown field 'title'; fields: slug, body"):
        UnknownField.declaration()

    class Reserved(ModelSink):
        name = "reserved"
        model = "testapp.Note"
        rename = {"body": "dump_id"}

    with pytest.raises(SinkDefinitionError, match=r"columns \['dump_id'\] are reserved.*rename or leave them out"):
        Reserved.declaration()

    class StrayConverter(ModelSink):
        name = "stray"
        model = "testapp.Note"

        def convert_title(self, value):
            return value

    with pytest.raises(SinkDefinitionError, match=r"convert_\* methods for unknown columns \['title'\]"):
        StrayConverter.declaration()


def test_text_primary_key_is_the_key_column_and_keys_are_normalized():
    class Notes(ModelSink):
        name = "test_notes_only"
        model = "testapp.Note"
        exclude = ("author_email",)

    sink = Notes()
    assert [(c.name, c.type) for c in sink.columns] == [("slug", "String"), ("body", "String")]
    assert sink.key_field == "slug"
    assert sink.declaration().version_attname is None and sink.keys_since(datetime.now(UTC)) is None
    assert EverythingSink().normalize_key("007") == "7"
    with pytest.raises(InvalidKeyError, match="'seven' is not a primary key of testapp.Everything"):
        EverythingSink().normalize_key("seven")
    assert CourseOverviewSink.available() is False  # not in this process (no MODEL override here)


def test_version_field_is_found_only_when_it_updates_itself():
    from django.db import models

    from event_sinks.modelsinks.fields import updates_itself as _updates_itself

    class LastModified(models.DateTimeField):  # what model_utils' AutoLastModifiedField does
        def pre_save(self, model_instance, add):
            return super().pre_save(model_instance, add)

    assert _updates_itself(models.DateTimeField(auto_now=True)) and _updates_itself(LastModified())
    assert not _updates_itself(models.DateTimeField())  # set by hand: may not move on a save

    class Overviews(ModelSink):
        name = "test_overview_versions"
        model = "testapp.CourseOverview"

    assert Overviews.declaration().version_attname == "modified"


def test_naive_datetimes_are_read_in_the_default_time_zone(settings):
    settings.USE_TZ, settings.TIME_ZONE = False, "Europe/Paris"
    sink = EverythingSink()
    at = sink.field_names.index("at")
    row = [None] * len(sink.field_names)
    row[at] = datetime(2026, 3, 1, 13, 30)  # Paris time, as Django reads it without USE_TZ
    converted = sink._row_converter(sink.declaration())(tuple(row))
    assert converted[at] == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


# -- rows and types -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_type_round_trips_through_the_engine(registered):
    owner = Owner.objects.create(name="o")
    overview = CourseOverview.objects.create(id=COURSE, org="Org")
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    full = make(
        owner, 1, text="long\ntext 'quoted' \\ 长江", slug="a-slug", email="a@b.c", url="https://x.y/z",
        small=-32768, integer=-2_147_483_648, big=-(2**63), psmall=65535, pint=2**32 - 1, pbig=2**63 - 1,
        amount=Decimal("123456789.125"), ratio=0.1, flag=True, uid=uid, data={"a": [1, "é"], "b": None},
        overview=overview, maybe_text="t", maybe_int=7, maybe_amount=Decimal("-1.50"), maybe_at=AT,
        maybe_day=date(1999, 12, 31), maybe_flag=False, maybe_uid=uid, maybe_data=[1, 2], maybe_course=COURSE,
        maybe_owner=owner,
    )
    empty = make(owner, 2)
    summary = dump("test_everything")
    assert summary.count("dumped") == 2 and summary.rows == 2
    assert len({r.dump_id for r in summary.results}) == 1  # two keys, one dump (keys_per_dump)
    names = [name for name, _ in EXPECTED_COLUMNS]
    rows = query(f"SELECT {', '.join(names)} FROM {{db}}.test_everything ORDER BY id")
    got = [dict(zip(names, (naive(v) for v in row), strict=True)) for row in rows]
    assert got[0] == {
        "pk": str(full.pk), "id": full.pk, "char": "c1", "text": "long\ntext 'quoted' \\ 长江", "slug": "a-slug",
        "email": "a@b.c", "url": "https://x.y/z", "small": -32768, "integer": -2_147_483_648, "big": -(2**63),
        "psmall": 65535, "pint": 2**32 - 1, "pbig": 2**63 - 1, "amount": Decimal("123456789.125"), "ratio": 0.1,
        "at": naive(AT), "day": date(2026, 3, 1), "flag": True, "uid": uid, "data": '{"a":[1,"é"],"b":null}',
        "owner_id": owner.pk, "course": COURSE, "usage": USAGE, "overview_id": COURSE, "maybe_text": "t",
        "maybe_int": 7, "maybe_amount": Decimal("-1.50"), "maybe_at": naive(AT), "maybe_day": date(1999, 12, 31),
        "maybe_flag": False, "maybe_uid": uid, "maybe_data": "[1,2]", "maybe_course": COURSE,
        "maybe_owner_id": owner.pk, "updated_at": naive(Everything.objects.get(pk=full.pk).updated_at),
    }
    nulls = {name: got[1][name] for name in names if name.startswith(("maybe_", "overview"))}
    assert set(nulls.values()) == {None}
    assert got[1]["data"] == "{}" and got[1]["pk"] == str(empty.pk)
    # The dump records each object's version: its updated_at.
    versions = dict(query("SELECT key, source_version FROM {db}.event_sinks_dump_log"))
    assert versions[str(full.pk)] == Everything.objects.get(pk=full.pk).updated_at.isoformat()


# -- triggers: saves and deletes follow commits ---------------------------------------------------------


def current_everything():
    return query("SELECT id, char FROM {db}.test_everything ORDER BY id")


def _table_exists():
    """Whether anything was dumped yet (the ledger is created with the first dump)."""
    return query("EXISTS TABLE {db}.event_sinks_dump_log")[0][0] == 1


def dumps_of(sink):
    """How many dumps (one dump id each, a ledger row per key) the sink has written."""
    return query("SELECT uniqExact(dump_id) FROM {db}.event_sinks_dump_log WHERE sink = {s:String}", s=sink)[0][0]


@pytest.mark.django_db(transaction=True)
def test_saves_and_deletes_follow_commits_not_rollbacks(wired):
    owner = Owner.objects.create(name="o")
    with transaction.atomic():
        a, b = make(owner, 1), make(owner, 2)
        assert not _table_exists() or dumps_of("test_everything") == 0  # nothing before the commit
    assert current_everything() == [(a.pk, "c1"), (b.pk, "c2")]
    assert dumps_of("test_everything") == 1  # both keys of the transaction in one dump

    with transaction.atomic():
        a.char = "changed"
        a.save()
        a.save()  # repeated saves of one object in one transaction: one dump
    assert current_everything() == [(a.pk, "changed"), (b.pk, "c2")]
    assert dumps_of("test_everything") == 2

    with pytest.raises(RuntimeError), transaction.atomic():
        b.char = "never"
        b.save()
        make(owner, 3)
        Everything.objects.get(pk=a.pk).delete()
        raise RuntimeError("roll back")
    assert current_everything() == [(a.pk, "changed"), (b.pk, "c2")]
    assert dumps_of("test_everything") == 2

    with transaction.atomic():
        b.delete()
    assert current_everything() == [(a.pk, "changed")]
    # Outside a transaction (autocommit) the save dumps right away.
    Everything.objects.filter(pk=a.pk).update(char="silent")  # update() sends no signal: not seen
    c = make(owner, 4)
    assert current_everything() == [(a.pk, "changed"), (c.pk, "c4")]
    # Other models' saves are not delivered to the sink's receiver (sender filtering).
    with CaptureQueriesContext(connection) as queries:
        Owner.objects.create(name="other")
    assert len(queries) == 1


@pytest.mark.django_db(transaction=True)
def test_pii_sink_is_off_unless_enabled(wired, settings):
    Note.objects.create(slug="n1", body="hello", author_email="a@example.com")
    assert "test_secret_notes" not in [s.name for s in registry.enabled()]
    assert not _table_exists() or dumps_of("test_secret_notes") == 0
    out = StringIO()
    call_command("list_sinks", stdout=out)
    assert "test_secret_notes [PII] (disabled) - Notes with their authors' emails." in out.getvalue()

    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "SINKS": {"test_secret_notes": {"ENABLED": True}}}
    Note.objects.create(slug="n2", body="world", author_email="b@example.com")
    assert query("SELECT slug, author_email FROM {db}.test_secret_notes") == [("n2", "b@example.com")]


# -- backfills through dump_sink ------------------------------------------------------------------------


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def bulk_everything(owner, start, count, chunk=10_000):
    """Insert ``count`` rows with ids from ``start``, in chunks: one executemany per chunk.

    The values are prepared by the model's own fields once, from a template object, and only the
    varying ones per row: bulk_create of a 35-column model is ~5x slower (a Python call per value).
    """
    template = Everything(owner_id=owner.pk, char="", course=COURSE, usage=USAGE, at=AT, day=date(2026, 3, 1))
    fields = [f for f in Everything._meta.concrete_fields if f.attname != "updated_at"]
    fields.append(Everything._meta.get_field("updated_at"))

    def prep(field, value):
        return field.get_db_prep_save(value, connection)

    base = [prep(f, getattr(template, f.attname)) for f in fields]
    index = {f.attname: i for i, f in enumerate(fields)}
    data, maybe_int = Everything._meta.get_field("data"), Everything._meta.get_field("maybe_int")
    base[index["updated_at"]] = prep(fields[-1], AT)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f'INSERT INTO "{Everything._meta.db_table}" ({columns}) VALUES ({", ".join(["%s"] * len(fields))})'
    with connection.cursor() as cursor:
        for first in range(start, start + count, chunk):
            rows = []
            for i in range(first, min(first + chunk, start + count)):
                row = list(base)
                row[index["id"]] = i
                row[index["char"]] = f"row {i}"
                row[index["data"]] = prep(data, {"i": i})
                row[index["maybe_int"]] = prep(maybe_int, i if i % 2 else None)
                rows.append(row)
            cursor.executemany(sql, rows)


@pytest.mark.django_db
def test_dump_sink_options_work_for_model_sinks(registered, monkeypatch):
    owner = Owner.objects.create(name="o")
    bulk_everything(owner, 1, 12)
    with CaptureQueriesContext(connection) as queries:
        out, _ = run("dump_sink", "test_everything", "--all", "--limit", "5")
    assert "test_everything: 5 dumped" in out
    # keys, versions read ahead (1, 2, 4 rows...), rows: a handful of queries, not one per object.
    assert len(queries) <= 8, [q["sql"] for q in queries]
    out, _ = run("dump_sink", "test_everything", "--all")
    assert "7 dumped, 0 deleted, 5 skipped" in out  # unchanged objects are skipped by their version
    out, _ = run("dump_sink", "test_everything", "3", "007", "--force")
    assert "2 dumped" in out
    assert query("SELECT count(), countIf(maybe_int IS NULL) FROM {db}.test_everything") == [(12, 6)]

    Everything.objects.filter(pk=5).update(char="edited", updated_at=datetime.now(UTC) + timedelta(seconds=1))
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    out, _ = run("dump_sink", "test_everything", "--all", "--since", since)
    assert "test_everything: 1 dumped, 0 deleted, 0 skipped" in out  # only the changed object
    assert query("SELECT char FROM {db}.test_everything WHERE id = 5") == [("edited",)]

    out, err = run("dump_sink", "test_everything", "--all", "--dry-run", "--format", "jsonl", "--limit", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["pk"] for r in rows] == ["1", "2"] and rows[0]["data"] == '{"i":1}' and "nothing written" in err

    # --resume: a run interrupted after its first dump continues without redoing it.
    original = EverythingSink.serialize_many
    calls = []

    def interrupt_second_dump(self, keys):
        calls.append(keys)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, keys)

    monkeypatch.setattr(EverythingSink, "serialize_many", interrupt_second_dump)
    monkeypatch.setattr(EverythingSink, "keys_per_dump", 5)
    with pytest.raises(CommandError, match="interrupted after 5 of 12 keys"):
        run("dump_sink", "test_everything", "--all", "--force")
    monkeypatch.setattr(EverythingSink, "serialize_many", original)
    out, err = run("dump_sink", "test_everything", "--all", "--force", "--resume")
    assert "5 keys already done, 7 to go" in err and "7 dumped" in out


def _rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def peak_growth_mib(fn):
    """Peak RSS growth while ``fn`` runs: VmHWM after resetting it to the current RSS (clear_refs 5)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    start = _rss_kib("VmRSS")
    started = time.monotonic()
    fn()
    return (_rss_kib("VmHWM") - start) / 1024, time.monotonic() - started


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self/clear_refs").exists(),
                    reason="needs Linux /proc to reset and read the peak RSS")
@pytest.mark.django_db
def test_backfill_of_200k_rows_streams_with_flat_memory(registered, capsys, settings, http_server, database):
    """``dump_sink --all`` of 200,000 objects: 40 dumps of 5,000, rows streamed from ``values_list``.

    Peak RSS growth of a 50,000-row run and a 200,000-row run of the same command: a sink that built
    lists of rows or model instances would grow ~4x; what remains is fixed cost plus the runner's
    and the command's per-key bookkeeping (a few hundred bytes per key, not per row of data).
    Over HTTP, so the engine runs in its own process: embedded, its memory (merges, caches) shares
    this process's RSS and made the ratio range from 0.5x to 3.7x between runs of one commit.
    """
    if not http_server.running:
        http_server.start()
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DSN": http_server.dsn.rsplit("/", 1)[0] + f"/{database}"}
    close_connections()
    owner = Owner.objects.create(name="o")
    started = time.monotonic()
    bulk_everything(owner, 1, 200_000)
    created = time.monotonic() - started
    # Warm up (imports, engine, schema) so the two measured runs compare like with like.
    run("dump_sink", "test_everything", "--all", "--limit", "2000")
    small, small_s = peak_growth_mib(lambda: run("dump_sink", "test_everything", "--all", "--force",
                                                 "--limit", "50000"))
    big, big_s = peak_growth_mib(lambda: run("dump_sink", "test_everything", "--all", "--force"))
    with capsys.disabled():
        print(f"\nmodel sink backfill: created 200,000 rows in {created:.1f}s; peak RSS growth "
              f"{small:.1f} MiB for 50,000 rows ({small_s:.1f}s), {big:.1f} MiB for 200,000 rows ({big_s:.1f}s)")
    assert query("SELECT count(), uniqExact(dump_id) FROM {db}.test_everything") == [(200_000, 40)]
    assert big < 2.5 * max(small, 8.0), f"peak memory grows with the row count: {small:.1f} -> {big:.1f} MiB"


# -- third-party model sinks ---------------------------------------------------------------------------

PLUGIN = """
    from event_sinks.modelsinks import ModelSink

    class NotesSink(ModelSink):
        '''Notes of the test app: a third-party model sink.'''
        name = "notes"
        model = "testapp.Note"
"""


@pytest.fixture
def notes_plugin(tmp_path, monkeypatch):
    make_distribution(tmp_path, "notes_plugin", "[event_sinks.sinks]\nnotes = notes_plugin:NotesSink\n",
                      {"notes_plugin": PLUGIN})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    yield
    _disconnect("notes")
    sys.modules.pop("notes_plugin", None)
    monkeypatch.undo()
    registry.reset()


@pytest.mark.django_db(transaction=True)
def test_third_party_package_declares_a_model_sink_with_one_entry_point(notes_plugin, embedded, settings):
    assert registry.entry("notes").distribution == "notes_plugin 1.0"
    Note.objects.create(slug="first", body="one")
    out, _ = run("dump_sink", "notes", "--all")
    assert "notes: 1 dumped" in out
    receivers.connect_all()
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DISPATCH": "on_commit"}
    with transaction.atomic():
        Note.objects.create(slug="second", body="two")
        Note.objects.filter(slug="first").delete()  # a queryset delete sends post_delete per object
    assert query("SELECT slug, body, author_email FROM {db}.notes") == [("second", "two", "")]
    out = StringIO()
    call_command("list_sinks", stdout=out)
    assert "notes (enabled) - Notes of the test app: a third-party model sink." in out.getvalue()
    assert "trigger: django.db.models.signals.post_delete (delete)" in out.getvalue()


# -- a model that is not installed --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_model_disables_the_sink_with_one_warning(embedded, caplog):
    class Missing(ModelSink):
        """Objects of a model this process does not have."""

        name = "test_missing"
        model = "nope.Missing"

    caplog.set_level(logging.DEBUG, "event_sinks")
    registry.register(Missing, "tests")
    try:
        receivers.connect_all()  # does not raise; connects nothing for it
        assert "test_missing" not in receivers.connected_sinks()
        out, _ = run("list_sinks")
        assert "test_missing (unavailable) - Objects of a model this process does not have. [unavailable here: " in out
        run("sink_schema")  # every sink's DDL: the missing one has none
        with pytest.raises(CommandError, match=r"model 'nope.Missing' is not installed here"):
            run("dump_sink", "test_missing", "--all")
        with pytest.raises(ModelUnavailableError, match=r"EVENT_SINKS\['SINKS'\]\['test_missing'\]\['MODEL'\]"):
            list(Missing().keys())
    finally:
        registry.unregister("test_missing")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "test_missing" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "sink test_missing is disabled: model 'nope.Missing' is not installed here" in warnings[0].getMessage()


# -- CourseOverviewSink ----------------------------------------------------------------------------------


def test_course_overviews_is_registered_by_an_entry_point():
    import configparser

    from importlib_metadata import EntryPoint

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    lines = config["options.entry_points"]["event_sinks.sinks"].strip().splitlines()
    declared = dict(line.replace(" ", "").split("=") for line in lines)
    entry_point = EntryPoint("course_overviews", declared["course_overviews"], "event_sinks.sinks")
    assert entry_point.load() is CourseOverviewSink


def test_course_overviews_outside_open_edx_is_disabled_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setattr(CourseOverviewSink, "_declarations", {})
    caplog.set_level(logging.INFO, "event_sinks")
    sink = CourseOverviewSink()
    assert not sink.available() and not sink.available()
    assert sink.schema().tables == ()
    with pytest.raises(ModelUnavailableError):
        sink.declaration()
    (record,) = caplog.records
    assert record.levelno == logging.INFO  # expected outside Open edX: quiet on the command line
    assert record.getMessage().startswith(
        "event_sinks: sink course_overviews is disabled: model 'course_overviews.CourseOverview' is not installed "
        "here (it is edx-platform's model: the sink works inside the LMS or CMS)"
    )


@pytest.mark.django_db(transaction=True)
def test_course_overviews_rows_from_the_stand_in_model(wired, settings):
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "SINKS": {"course_overviews": {"MODEL": "testapp.CourseOverview"}}}
    sink = registry.get("course_overviews")
    assert [(c.name, c.type) for c in sink.columns] == [
        ("org", "LowCardinality(String)"), ("course_key", "String"), ("display_name", "Nullable(String)"),
        ("start", "Nullable(DateTime64(6, 'UTC'))"), ("end", "Nullable(DateTime64(6, 'UTC'))"),
        ("enrollment_start", "Nullable(DateTime64(6, 'UTC'))"), ("enrollment_end", "Nullable(DateTime64(6, 'UTC'))"),
        ("pacing", "LowCardinality(String)"), ("modified", "DateTime64(6, 'UTC')"),
    ]
    assert sink.key_field == "course_key"
    receivers.connect_all()
    with transaction.atomic():  # what edx-platform does after a publish: save the overview in a transaction
        CourseOverview.objects.create(id=COURSE, org="Org", display_name="Rivers", start=AT, end=None,
                                      enrollment_start=AT - timedelta(days=30), self_paced=True)
        CourseOverview.objects.create(id="course-v1:Other+X+Y", org="Other", display_name=None)
    rows = query("SELECT org, course_key, display_name, start, end, enrollment_start, enrollment_end, pacing, "
                 "modified FROM {db}.course_overviews ORDER BY course_key")
    first, second = (tuple(naive(v) for v in row) for row in rows)
    stored = CourseOverview.objects.get(id=COURSE)
    assert first == ("Org", COURSE, "Rivers", naive(AT), None, naive(AT - timedelta(days=30)), None, "self",
                     naive(stored.modified))
    assert second[:3] == ("Other", "course-v1:Other+X+Y", None) and second[7] == "instructor"
    versions = dict(query("SELECT key, source_version FROM {db}.event_sinks_current_dumps "
                          "WHERE sink = 'course_overviews'"))
    assert versions[COURSE] == stored.modified.isoformat()

    with transaction.atomic():
        stored.self_paced = False
        stored.save()
        CourseOverview.objects.filter(id="course-v1:Other+X+Y").delete()
    assert query("SELECT course_key, pacing FROM {db}.course_overviews") == [(COURSE, "instructor")]
    with pytest.raises(InvalidKeyError, match="not a primary key"):
        sink.normalize_key("not a course key")
    out, _ = run("dump_sink", "course_overviews", "--all")
    assert "0 dumped, 0 deleted, 1 skipped" in out
