"""The HTTP path: a server that dies mid-dump gives a clear error and nothing partial is visible."""

from __future__ import annotations

import pytest

from event_sinks import dump
from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.dumping import Dumper
from event_sinks.errors import DumpError, EngineUnavailableError

from ..support import sample_sink


def test_server_stopped_mid_dump(settings, http_server, database, words):
    dsn = http_server.dsn.rsplit("/", 1)[0] + f"/{database}"
    settings.EVENT_SINKS = {"DSN": dsn, "CONNECT_TIMEOUT": 1}
    engine = Connection(get_settings())
    sample_sink.SOURCE["doc"] = [f"v1-{i}" for i in range(30)]
    dump("test_words", ["doc"], connection=engine, batch_size=10)

    def stop_after_first_batch():
        for i, word in enumerate([f"v2-{i}" for i in range(30)]):
            if i == 15:
                http_server.kill()
            yield ("doc", i, word, False, None)

    words.serialize = lambda key: stop_after_first_batch()
    try:
        with pytest.raises(DumpError) as failure:
            Dumper(words, engine, batch_size=10).dump_key("doc")
        assert isinstance(failure.value.__cause__, EngineUnavailableError)
        assert "unreachable" in str(failure.value) and "s3cret-pw" not in str(failure.value)
    finally:
        del words.serialize
        http_server.start()
    engine.close()
    rows = Connection(get_settings()).query(f"SELECT word FROM `{database}`.test_words ORDER BY position")
    assert [r[0] for r in rows] == [f"v1-{i}" for i in range(30)]
