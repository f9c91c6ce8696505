"""A second embedded data directory in one process is refused naming the settings that chose it.

chDB runs one data directory per process; a process that already runs one (a worker with settings
changed under it, a test) and is then pointed at another must be told which setting names the second.
"""

from __future__ import annotations

import pytest

from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.errors import EngineUnavailableError


def test_a_second_data_directory_names_dsn_and_data_dir(embedded, tmp_path):
    Connection(get_settings()).query("SELECT 1")  # this process's engine runs on the session's directory
    other = Connection(get_settings({"DSN": f"chdb://{tmp_path / 'other'}"}))
    with pytest.raises(EngineUnavailableError) as caught:
        other.query("SELECT 1")
    message = str(caught.value)
    assert str(tmp_path / "other") in message
    assert "EVENT_SINKS['DSN']" in message and "EVENT_SINKS['DATA_DIR']" in message, message
