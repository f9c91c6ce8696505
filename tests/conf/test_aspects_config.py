"""A malformed ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG`` (Aspects' engine setting) is named, never ignored.

It used to be ignored unless its url was a string, so ``{'url': 5}`` or a plain string meant "no Aspects
engine": the embedded engine in the working directory, or no engine in Open edX, without a word (found
by the hostile campaign, tests/campaign).
"""

from __future__ import annotations

import pytest

from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.errors import ConfigurationError, EngineUnavailableError


@pytest.mark.parametrize(("value", "message"), [
    ("http://u:s3cret@ch:8123", "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG must be a dict like"),
    (["http://ch:8123"], "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG must be a dict like"),
    ({"url": 5}, "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url'] must be 'http(s)://host:port', found a int: '5'"),
    ({"url": b"http://u:s3cret@ch:8123"}, "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url'] must be"),
    # found by the campaign (seed 3): the DSN made from it was refused as EVENT_SINKS['DSN'], unset
    ({"url": "http://ch:99999", "password": "s3cret"}, "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url'] must look like"),
])
def test_a_malformed_aspects_config_is_a_configuration_error(settings, monkeypatch, value, message):
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    settings.EVENT_SINKS = {"DISPATCH": "sync"}
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = value
    with pytest.raises(ConfigurationError) as caught:
        get_settings()
    assert str(caught.value).startswith(message)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("value", [None, {}, {"url": None}])
def test_no_aspects_url_means_no_aspects_engine(settings, monkeypatch, tmp_path, value):
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    settings.EVENT_SINKS = {"DISPATCH": "sync", "DATA_DIR": str(tmp_path / "data")}
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = value
    assert get_settings().dsn == f"chdb://{tmp_path / 'data'}"


def test_an_unreachable_aspects_engine_is_named_by_its_setting(settings, monkeypatch):
    # found by the campaign (seed 3): "ClickHouse at http://default@... is unreachable" named no setting,
    # and the user had set none of ours
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    settings.EVENT_SINKS = {"DISPATCH": "sync", "CONNECT_TIMEOUT": 1}
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {"url": "http://127.0.0.1:9", "username": None}
    with pytest.raises(EngineUnavailableError) as caught:
        Connection(get_settings()).query("SELECT 1")
    assert "named by EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url']" in str(caught.value), str(caught.value)
