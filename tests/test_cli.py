"""``python -m event_sinks``: the commands without a Django project, each run in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "event_sinks" / "demo" / "course"


def cli(*args, cwd, env=None):
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "event_sinks", *args], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=120,
    )


def test_demo_on_the_embedded_default(tmp_path):
    result = cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "    2:0:0 Great Rivers (chapter)" in result.stdout
    assert "2:2:1 - yangtze video" in result.stdout
    assert (tmp_path / "event_sinks_data").is_dir()  # data in the current folder by default


def test_dump_and_query_over_http_with_env_dsn(tmp_path, http_server):
    dsn = http_server.dsn.rsplit("/", 1)[0] + "/cli_test"
    env = {"EVENT_SINKS_DSN": dsn}
    result = cli("dump_sink", "block_relationships", "--all", "--olx", str(DEMO), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "1 dumped" in result.stdout
    result = cli("--dsn", dsn, "query", "SELECT count() AS edges FROM block_relationships", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "20" in result.stdout
    assert not (tmp_path / "event_sinks_data").exists()


def test_second_process_on_the_same_data_directory_gets_a_plain_error(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, clickhouse_connect; c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1]);"
         "c.command('SELECT 1'); print('ready', flush=True); sys.stdin.read()", str(tmp_path / "data")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = cli("--dsn", f"chdb://{tmp_path / 'data'}", "query", "SELECT 1", cwd=tmp_path)
        assert result.returncode != 0
        assert "in use by another process" in result.stderr and f"PID {holder.pid}" in result.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_unknown_command_and_help(tmp_path):
    assert "usage: event-sinks" in cli("--help", cwd=tmp_path).stdout
    result = cli("frobnicate", cwd=tmp_path)
    assert result.returncode == 2 and "unknown command 'frobnicate'" in result.stderr
