"""Sink discovery through real entry points, and the Sink contract's errors."""

from __future__ import annotations

import logging
import sys
import textwrap

import attrs
import pytest

from event_sinks import Sink, column, dump
from event_sinks.errors import SinkDefinitionError, UnknownSinkError
from event_sinks.registry import Registry, registry


def make_distribution(root, name, entry_points: str, modules: dict[str, str]):
    """Write an installed-looking distribution (dist-info + modules) under ``root``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


PLUGIN = """
    import attrs
    from event_sinks import Sink, column

    @attrs.define
    class ColorRow:
        palette: str = column("LowCardinality(String)")
        color: str = column("String")

    class ColorsSink(Sink):
        '''Colors of a palette: a third-party sink.'''
        name = "colors"
        row_type = ColorRow
        key_field = "palette"

        def keys(self):
            return ["warm", "cold"]

        def serialize(self, key):
            for color in {"warm": ["red", "orange"], "cold": ["blue"]}[key]:
                yield ColorRow(key, color)
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Two third-party distributions on sys.path: one good, one whose import raises."""
    make_distribution(
        tmp_path, "colors_plugin", "[event_sinks.sinks]\ncolors = colors_plugin:ColorsSink\n",
        {"colors_plugin": PLUGIN},
    )
    make_distribution(
        tmp_path, "broken_plugin", "[event_sinks.sinks]\nbroken = broken_plugin:BrokenSink\n",
        {"broken_plugin": "raise ImportError('the broken plugin needs a module that is not installed')\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    yield
    for module in ("colors_plugin", "broken_plugin"):
        sys.modules.pop(module, None)
    monkeypatch.undo()
    registry.reset()


def test_third_party_sink_is_found_dumped_and_listed(plugins, embedded, caplog):
    caplog.set_level(logging.ERROR, "event_sinks.registry")
    assert "colors" in registry.names()
    assert registry.entry("colors").distribution == "colors_plugin 1.0"
    # The broken plugin is skipped with a log line naming its distribution; the others load.
    assert "broken" not in registry.names()
    assert any("broken_plugin 1.0" in r.getMessage() and "not installed" in r.getMessage() for r in caplog.records)
    assert "broken_plugin 1.0" in [f.distribution for f in registry.failures]

    summary = dump("colors")
    assert summary.count("dumped") == 2 and summary.rows == 3
    from event_sinks.clickhouse import get_connection

    engine = get_connection()
    rows = engine.query(f"SELECT palette, color FROM `{engine.database}`.colors ORDER BY palette, color")
    assert rows == [("cold", "blue"), ("warm", "orange"), ("warm", "red")]


def test_third_party_sink_through_the_commands(plugins, embedded):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("dump_sink", "colors", "--all", stdout=out, stderr=StringIO())
    assert "colors: 2 dumped" in out.getvalue()
    out = StringIO()
    call_command("list_sinks", stdout=out)
    assert "colors (enabled) - Colors of a palette: a third-party sink." in out.getvalue()
    assert "from: colors_plugin 1.0" in out.getvalue()
    assert "NOT LOADED: broken = broken_plugin:BrokenSink from broken_plugin 1.0" in out.getvalue()


def test_unknown_sink_lists_known_ones(plugins):
    with pytest.raises(UnknownSinkError, match=r"unknown sink 'nope'; known sinks: .*colors"):
        registry.get("nope")


def test_entry_point_name_must_match_and_duplicates_are_refused(tmp_path, monkeypatch, caplog):
    make_distribution(
        tmp_path, "dup_plugin",
        "[event_sinks.sinks]\ncolors = colors_plugin:ColorsSink\nshades = colors_plugin:ColorsSink\n",
        {"colors_plugin": PLUGIN},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib_metadata import entry_points

    local = Registry(lambda: [ep for ep in entry_points(group="event_sinks.sinks") if ep.dist.name == "dup_plugin"])
    assert local.names() == ["colors"]
    assert "must equal the sink's name" in local.failures[0].error
    sys.modules.pop("colors_plugin", None)


@attrs.define
class GoodRow:
    key: str = column("String")
    value: int = column("UInt32")


def test_subclass_mistakes_fail_at_class_creation():
    with pytest.raises(SinkDefinitionError, match="needs a class attribute `name`"):
        class NoName(Sink):
            row_type = GoodRow
            key_field = "key"

    with pytest.raises(SinkDefinitionError, match="plain identifier"):
        class BadName(Sink):
            name = "bad name; DROP TABLE x"
            row_type = GoodRow
            key_field = "key"

    @attrs.define
    class UntypedRow:
        key: str = column("String")
        value: int = attrs.field()

    with pytest.raises(SinkDefinitionError, match="field 'value' has no ClickHouse type"):
        class Untyped(Sink):
            name = "untyped"
            row_type = UntypedRow
            key_field = "key"

    with pytest.raises(SinkDefinitionError, match=r"`key_field` must name a column .*found 'course'"):
        class WrongKey(Sink):
            name = "wrong_key"
            row_type = GoodRow
            key_field = "course"

    class Abstract(Sink, abstract=True):
        pass


def test_duplicate_registration_raises(words):
    class Impostor(Sink):
        name = "test_words"
        row_type = GoodRow
        key_field = "key"

    with pytest.raises(SinkDefinitionError, match="already registered by tests"):
        registry.register(Impostor)
