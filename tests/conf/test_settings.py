"""Settings errors name the setting, and hostile identifiers never reach SQL."""

from __future__ import annotations

import pytest

from event_sinks.clickhouse import Connection
from event_sinks.clickhouse.ddl import Renderer
from event_sinks.conf import get_settings, mask_dsn
from event_sinks.core.schema import Column, Table
from event_sinks.errors import ConfigurationError, UnsafeIdentifierError


@pytest.mark.parametrize("dsn", ["mysql://u:p@h/db", "http://", "localhost:8123", "clickhouse://x"])
def test_malformed_dsn_names_the_setting(settings, dsn):
    settings.EVENT_SINKS = {"DSN": dsn}
    with pytest.raises(ConfigurationError, match=r"EVENT_SINKS\['DSN'\]"):
        Connection(get_settings())


@pytest.mark.parametrize("name", ["db; DROP TABLE x", "my db", "a`b", "x'--", "", "1abc", "a" * 200])
@pytest.mark.parametrize("setting", ["DATABASE", "CLUSTER"])
def test_hostile_identifiers_are_rejected_before_any_sql(settings, name, setting):
    settings.EVENT_SINKS = {setting: name}
    with pytest.raises(ConfigurationError, match=rf"EVENT_SINKS\['{setting}'\]"):
        get_settings()


def test_unknown_setting_and_bad_values(settings):
    settings.EVENT_SINKS = {"DSNN": "chdb:///x"}
    with pytest.raises(ConfigurationError, match="unknown keys \\['DSNN'\\]"):
        get_settings()
    settings.EVENT_SINKS = {"DISPATCH": "later"}
    with pytest.raises(ConfigurationError, match="DISPATCH"):
        get_settings()
    settings.EVENT_SINKS = {"BATCH_SIZE": 0}
    with pytest.raises(ConfigurationError, match="BATCH_SIZE"):
        get_settings()


def test_password_is_masked():
    assert mask_dsn("https://analytics:p@ss:w0rd@ch.example:8443/db") == "https://analytics:***@ch.example:8443/db"
    assert mask_dsn("chdb:///var/lib/x") == "chdb:///var/lib/x"


def test_http_dsn_database_wins(settings):
    settings.EVENT_SINKS = {"DSN": "http://u:pw@127.0.0.1:1/reporting", "DATABASE": "other"}
    assert Connection(get_settings()).database == "reporting"
    assert "pw" not in repr(Connection(get_settings()))


def test_ddl_on_cluster_uses_replicated_engines():
    table = Table("t", [Column("k", "String"), Column("at", "DateTime64(6, 'UTC')")], order_by=["k"])
    ddl = Renderer("analytics", "main_cluster").create_table(table)
    assert "CREATE TABLE IF NOT EXISTS `analytics`.`t` ON CLUSTER `main_cluster`" in ddl
    assert "ENGINE = ReplicatedMergeTree\n" in ddl
    assert "ENGINE = MergeTree" in Renderer("analytics").create_table(table)
    for bad in ["String; DROP", "String -- x", "Enum('a'')"]:
        with pytest.raises(UnsafeIdentifierError):
            Column("c", bad)
