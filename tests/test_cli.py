"""``python -m event_sinks``: the commands without a Django project, each run in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_dump_is_dump_sink(tmp_path):
    result = cli("dump", "course_outline", "--all", "--olx", str(DEMO), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "course_outline: 1 dumped" in result.stdout


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


# -- the engine option: a bad --dsn is named, and --dsn wins over EVENT_SINKS_DSN ----------------------------

BAD_DSNS = [
    ("http://u:pw@127.0.0.1:99999/db", "Port out of range"),
    ("http://u:pw@:8123/db", "no host"),
    ("ftp://ch.example/db", "the scheme must be chdb, http or https"),
    ("http://ch.example:8123/my-db", "its database 'my-db' (the /path) is not a plain identifier"),
    ("not a dsn at all", "the scheme must be chdb, http or https"),
]


COMMANDS = [["dump_sink", "course_outline", "--all", "--olx", str(DEMO)], ["query", "SELECT 1"]]


@pytest.mark.parametrize(("dsn", "why"), BAD_DSNS, ids=[d for d, _ in BAD_DSNS])
@pytest.mark.parametrize("command", COMMANDS, ids=["dump_sink", "query"])
def test_a_bad_dsn_is_refused_naming_the_option(tmp_path, dsn, why, command):
    # before the command (as the usage shows) for one, after it (where a user also puts options) for the other
    args = ["--dsn", dsn, *command] if command[0] == "query" else [*command, f"--dsn={dsn}"]
    result = cli(*args, cwd=tmp_path, env={"EVENT_SINKS_DSN": ""})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("event-sinks: --dsn must look like 'chdb:///path/to/data' or 'http(s)://")
    assert why in result.stderr and "Traceback" not in result.stderr and "pw@" not in result.stderr
    assert not (tmp_path / "event_sinks_data").exists()


def test_a_bad_environment_dsn_is_refused_naming_the_variable(tmp_path):
    result = cli("query", "SELECT 1", cwd=tmp_path, env={"EVENT_SINKS_DSN": "http://u:pw@127.0.0.1:99999/db"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("event-sinks: EVENT_SINKS_DSN must look like")
    assert "Port out of range" in result.stderr


def test_an_explicit_dsn_wins_over_the_environment(tmp_path):
    chosen, other = tmp_path / "chosen", tmp_path / "other"
    env = {"EVENT_SINKS_DSN": f"chdb://{other}"}
    result = cli("--dsn", f"chdb://{chosen}", "list_sinks", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"engine: chdb://{chosen}  database: event_sinks")
    # and a broken EVENT_SINKS_DSN does not matter when --dsn is given
    result = cli("list_sinks", "--dsn", f"chdb://{chosen}", cwd=tmp_path, env={"EVENT_SINKS_DSN": "ftp://broken"})
    assert result.returncode == 0 and result.stdout.startswith(f"engine: chdb://{chosen}"), result.stderr
    result = cli("list_sinks", cwd=tmp_path, env=env)
    assert result.stdout.startswith(f"engine: chdb://{other}")  # without --dsn, the environment's


@pytest.mark.parametrize(("args", "message"), [
    (["list_sinks", "--dsn"], "--dsn needs a value"),
    (["--dsn", "chdb:///a", "list_sinks", "--dsn", "chdb:///b"], "--dsn is given twice"),
])
def test_dsn_option_mistakes(tmp_path, args, message):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_an_embedded_path_that_cannot_be_a_directory_names_the_option(tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = cli("--dsn", f"chdb://{tmp_path / 'a-file'}", "query", "SELECT 1", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"CommandError: --dsn: the embedded engine's data directory {tmp_path / 'a-file'} is not a directory")
    (tmp_path / "event_sinks_data").write_text("x")
    result = cli("query", "SELECT 1", cwd=tmp_path, env={"EVENT_SINKS_DSN": ""})
    assert result.returncode == 1 and result.stderr.strip().startswith(
        "CommandError: the default engine (./event_sinks_data; --dsn chooses another): the embedded engine's data "
        f"directory {tmp_path / 'event_sinks_data'} is not a directory")
