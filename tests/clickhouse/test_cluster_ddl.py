"""On a cluster, every table and view renders with ``ON CLUSTER`` and a ``Replicated*`` engine, and parses.

The embedded engine cannot run ``ON CLUSTER`` DDL (it has no cluster, no Keeper), but its parser is the
server's: ``formatQuery`` parses a statement without running it and fails on one that does not parse. So
every statement a cluster install would run -- the ledger, every registered sink's tables (its
``*_dumps`` and ``*_current`` tables) and views, the ALTERs of an upgrade, a current table's fill, and
Aspects' compatibility tables -- is rendered with ``EVENT_SINKS["CLUSTER"]`` set and given to it.
"""

from __future__ import annotations

import re

import pytest

from event_sinks.aspects import ddl as aspects_ddl
from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.core import visibility
from event_sinks.errors import EngineError
from event_sinks.registry import registry

from ..modelsinks.test_model_sinks import EverythingSink

CLUSTER = "analytics_cluster"
ON_CLUSTER = f" ON CLUSTER `{CLUSTER}`"
ENGINE = re.compile(r"^ENGINE = (\w+)(\(.*\))?$", re.MULTILINE)


@pytest.fixture
def cluster(settings, embedded, words):
    """A connection whose settings name a cluster; every sink available, a model sink and the words sink too."""
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "CLUSTER": CLUSTER,
                            "SINKS": {"course_overviews": {"MODEL": "testapp.CourseOverview"}}}
    registry.register(EverythingSink, "tests")
    yield Connection(get_settings())
    registry.unregister(EverythingSink.name)


@pytest.fixture
def parser(embedded):
    """The embedded engine without a cluster (one with it would create its database ON CLUSTER first)."""
    return Connection(embedded)


def parse(connection: Connection, statement: str) -> str:
    """The engine's own formatting of ``statement``: raises :class:`EngineError` if it does not parse."""
    return connection.value("SELECT formatQuery({statement:String})", {"statement": statement})


def cluster_statements(connection: Connection) -> dict[str, list[str]]:
    """Every DDL statement of a cluster install, by what it makes."""
    renderer = connection.renderer
    made: dict[str, list[str]] = {"database": [renderer.create_database()]}
    schemas = {"ledger": visibility.ledger_schema(), **{sink.name: sink.schema() for sink in registry.all()}}
    for schema in schemas.values():
        for table in schema.tables:
            made[table.name] = [renderer.create_table(table),
                                renderer.add_column(table, table.columns[-1], after=table.columns[-2].name)]
        for view in schema.views:
            made[view.name] = [renderer.create_view(view)]
    aspects = aspects_ddl.statements("event_sink", connection.settings.cluster)
    made["aspects database"] = aspects[:1]
    for table, statement in zip(aspects_ddl.TABLES, aspects[1:], strict=True):
        made[f"aspects {table.name}"] = [statement]
    return made


def test_every_table_and_view_renders_on_the_cluster_with_replicated_engines(cluster):
    assert cluster.renderer.cluster == CLUSTER  # the setting is what the renderer uses
    made = cluster_statements(cluster)
    sinks = registry.all()
    assert {"course_outline", "block_relationships", "course_overviews", "test_words", "test_everything"} <= {
        s.name for s in sinks}
    for sink in sinks:  # each sink's rows, current rows and views are there
        assert {sink.table_name, sink.current_table_name, sink.view_name} <= set(made), sink.name
    shared = {visibility.LOG_TABLE, visibility.CURRENT_VIEW, "aspects course_blocks", "aspects course_overviews"}
    assert shared <= set(made)
    currents = {sink.current_table_name for sink in sinks}
    for name, statements in made.items():
        for statement in statements:
            assert ON_CLUSTER in statement.split("\n", 1)[0], (name, statement)
            if not statement.startswith("CREATE TABLE"):
                continue
            engine = ENGINE.search(statement)
            assert engine, statement
            assert engine.group(1).startswith("Replicated"), (name, engine.group(0))
            assert "non_replicated_deduplication_window" not in statement, name
            if name in currents:
                assert engine.group(0) == "ENGINE = ReplicatedReplacingMergeTree(`dumped_at`, `is_deleted`)", name


def test_the_engine_parses_every_cluster_statement(cluster, parser):
    made = cluster_statements(cluster)
    unparsed = {}
    for name, statements in made.items():
        for statement in statements:
            try:
                formatted = parse(parser, statement)
            except EngineError as exc:
                unparsed[name] = f"{statement}\n-> {str(exc)[:300]}"
                continue
            assert f"ON CLUSTER {CLUSTER}" in formatted, (name, formatted)
            if statement.startswith("CREATE TABLE"):
                assert "ENGINE = Replicated" in formatted, (name, formatted)
    assert not unparsed, "\n\n".join(f"{name}: {why}" for name, why in unparsed.items())


def test_a_current_tables_fill_parses(cluster, parser):
    """The INSERT ... SELECT that fills a current table added to an earlier version's database."""
    filled = [t for sink in registry.all() for t in sink.schema().tables if t.fill]
    assert {t.name for t in filled} >= {"course_outline_current", "block_relationships_current"}
    for table in filled:
        select = table.fill.replace("{db}", f"`{cluster.database}`")
        parse(parser, f"INSERT INTO {cluster.renderer.qualified(table.name)} {select}")


@pytest.mark.parametrize("broken", [
    lambda s: s.replace("ORDER BY (", "ORDER BY ((", 1),  # unbalanced
    lambda s: s.replace(" ON CLUSTER ", " ON CLUSTERS ", 1),
    lambda s: s.replace("ENGINE = ", "ENGINE = = ", 1),
])
def test_a_statement_that_does_not_parse_fails(cluster, parser, broken):
    """The check above is a real one: the parser refuses a damaged statement."""
    statement = cluster_statements(cluster)["course_outline_current"][0]
    parse(parser, statement)
    with pytest.raises(EngineError):
        parse(parser, broken(statement))
