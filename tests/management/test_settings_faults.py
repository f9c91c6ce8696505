"""Every command refuses every invalid ``EVENT_SINKS`` value with a plain message naming the key and the value.

The bad values are generated from the settings declaration (``event_sinks.conf.settings.FIELDS``): every
candidate below that a key's own check refuses is a case for that key, so a key added to the declaration is
covered without touching this file. Each command must end in a ``CommandError`` (what ``manage.py`` prints
as ``CommandError: ...`` with exit status 1, no traceback) that names ``EVENT_SINKS['KEY']`` and the value.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Mapping
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.clickhouse import close_connections
from event_sinks.conf.settings import FIELDS, Invalid

REPO = Path(__file__).resolve().parents[2]

#: Values a setting might be given by mistake: wrong types, strings for numbers, NaN and infinities,
#: empty values, a sink's options as a word, containers of the wrong things.
CANDIDATES = [
    None, "", "3", "yes", "ftp://host/db", "two words", "my-db",
    0, -1, 2.5, math.nan, math.inf, -math.inf, True,
    [], ["/one", 1], ("a", None), {}, {"x": "off"}, {"x": {"ENABLED": "yes"}}, {"x": {"NOPE": 1}},
    {"x": {"MODEL": "nodot"}},
]


def refused(key: str, value: object) -> bool:
    try:
        FIELDS[key].metadata["check"](value)
    except Invalid:
        return True
    return False


BAD_VALUES = [(key, value) for key in sorted(FIELDS) for value in CANDIDATES if refused(key, value)]

#: Each command with arguments that would otherwise do real work.
COMMANDS = {
    "list_sinks": [],
    "sink_schema": [],
    "dump_sink": ["course_outline", "--all"],
    "show_course": ["course-v1:A+B+C"],
    "sink_query": ["SELECT 1"],
}


def leaves(value: object) -> list[object]:
    """The value and everything inside it: the message may quote the part at fault (SINKS: the option)."""
    found = [value]
    if isinstance(value, Mapping):
        for k, v in value.items():
            found += [k, *leaves(v)]
    elif isinstance(value, (list, tuple)):
        for item in value:
            found += leaves(item)
    return found


def run_refused(command: str, args: list[str]) -> str:
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode != 0
    return str(caught.value)


@pytest.fixture(autouse=True)
def _no_env_dsn(monkeypatch):
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    close_connections()
    yield
    close_connections()


def test_every_key_has_generated_bad_values():
    assert {key for key, _ in BAD_VALUES} == set(FIELDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("key", "value"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
def test_a_bad_value_is_a_command_error_naming_key_and_value(settings, command, key, value):
    settings.EVENT_SINKS = {"DISPATCH": "sync", key: value}
    message = run_refused(command, COMMANDS[command])
    assert f"EVENT_SINKS[{key!r}]" in message
    assert any(repr(part) in message for part in leaves(value)), message


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_keys_and_a_non_dict_are_command_errors(settings, command):
    settings.EVENT_SINKS = {"DISPATCH": "sync", "BATCHSIZE": 10}
    assert "unknown keys ['BATCHSIZE']" in run_refused(command, COMMANDS[command])
    settings.EVENT_SINKS = ["DSN"]
    assert "EVENT_SINKS must be a dict, found list" in run_refused(command, COMMANDS[command])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_projects_own_configuration_errors_are_command_errors(settings, command):
    # Aspects' setting, read when DSN is None: a malformed url names that setting.
    settings.EVENT_SINKS = {"DISPATCH": "sync"}
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {"url": "ftp://ch:8123", "username": "u", "password": "pw"}
    message = run_refused(command, COMMANDS[command])
    assert "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url']" in message and "'ftp://ch:8123'" in message


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"list_sinks"}))
def test_no_engine_is_a_command_error_naming_dsn(settings, command):
    settings.EVENT_SINKS = {"DISPATCH": "sync", "EMBEDDED_ALLOWED": False}
    args = [*COMMANDS[command], "--olx", str(REPO / "event_sinks" / "demo" / "course")] \
        if command == "dump_sink" else COMMANDS[command]
    assert "EVENT_SINKS['DSN'] is not set" in run_refused(command, args)


def test_list_sinks_without_an_engine_says_so(settings):
    settings.EVENT_SINKS = {"DISPATCH": "sync", "EMBEDDED_ALLOWED": False}
    out = StringIO()
    call_command("list_sinks", stdout=out)
    assert out.getvalue().startswith("engine: none (no ClickHouse is configured")


def test_a_bad_environment_dsn_names_the_environment_variable(settings, monkeypatch):
    settings.EVENT_SINKS = {"DISPATCH": "sync"}
    monkeypatch.setenv("EVENT_SINKS_DSN", "http://u:secret-pw@host:99999/db")
    for command, args in COMMANDS.items():
        message = run_refused(command, args)
        assert "EVENT_SINKS_DSN" in message and "port" in message and "secret-pw" not in message


# -- through manage.py, in a process of its own -------------------------------------------------------------


def manage(tmp_path, event_sinks: str, *args: str) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` in a project whose settings hold ``EVENT_SINKS = <event_sinks>``."""
    (tmp_path / "project_settings.py").write_text(
        "SECRET_KEY = 'x'\nUSE_TZ = True\nINSTALLED_APPS = ['event_sinks']\nDATABASES = {}\n"
        f"LOGGING_CONFIG = None\nEVENT_SINKS = {event_sinks}\n"
    )
    (tmp_path / "manage.py").write_text(
        "import sys\nfrom django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
           "DJANGO_SETTINGS_MODULE": "project_settings"}
    env.pop("EVENT_SINKS_DSN", None)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


MANAGE_CASES = [
    ("{'CONNECT_TIMEOUT': '3'}", "EVENT_SINKS['CONNECT_TIMEOUT']", "'3'"),
    ("{'SINKS': {'x': 'off'}}", "EVENT_SINKS['SINKS']", "'off'"),
    ("{'DATA_DIR': None}", "EVENT_SINKS['DATA_DIR']", "None"),
]


@pytest.mark.parametrize(("event_sinks", "key", "shown"), MANAGE_CASES)
@pytest.mark.parametrize("skip_checks", [False, True], ids=["checks", "skip-checks"])
def test_manage_py_refuses_with_a_message_and_no_traceback_from_the_command(
    tmp_path, event_sinks, key, shown, skip_checks
):
    args = ["list_sinks", *(["--skip-checks"] if skip_checks else [])]
    result = manage(tmp_path, event_sinks, *args)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1] if skip_checks else result.stderr
    assert key in last and shown in last
    if skip_checks:
        assert last.startswith("CommandError: ")
    assert "Traceback" not in without_start_up_log(result.stderr)  # the command's own failure is one line


def without_start_up_log(stderr: str) -> str:
    """``stderr`` without the line event_sinks/apps.py logs at start-up about the bad setting."""
    head, found, rest = stderr.partition("event_sinks: could not connect sink receivers")
    if not found:
        return stderr
    return head + rest.partition("\n")[2]  # the start-up line (one line: no traceback since apps.py says it plainly)


def test_manage_py_start_up_shows_no_traceback_for_bad_settings(tmp_path):
    result = manage(tmp_path, "{'DATA_DIR': None}", "list_sinks")
    assert "Traceback" not in result.stderr


# -- failures that are not the library's own -----------------------------------------------------------------


def test_an_unexpected_error_is_a_command_error_naming_the_command_and_the_error(settings, monkeypatch):
    from event_sinks.registry import registry

    settings.EVENT_SINKS = {"DISPATCH": "sync"}

    def broken():
        raise RuntimeError("a plugin's registry broke")

    monkeypatch.setattr(registry, "names", broken)
    message = run_refused("list_sinks", [])
    assert message.startswith("list_sinks failed: RuntimeError: a plugin's registry broke")
    assert "--traceback" in message


def test_ctrl_c_is_a_command_error(settings, monkeypatch):
    from event_sinks.registry import registry

    settings.EVENT_SINKS = {"DISPATCH": "sync"}

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "names", interrupted)
    assert run_refused("list_sinks", []) == "list_sinks: interrupted"


# -- a data directory that cannot be one --------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"list_sinks"}))
@pytest.mark.parametrize(("setting", "where", "problem"), [
    ("DATA_DIR", "file", "is not a directory"),
    ("DATA_DIR", "under-file", "cannot be created: Not a directory"),
    ("DSN", "file", "is not a directory"),
])
def test_a_data_directory_that_cannot_be_one_is_named_with_its_setting(
    settings, tmp_path, command, setting, where, problem
):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    path = a_file if where == "file" else a_file / "data"
    value = str(path) if setting == "DATA_DIR" else f"chdb://{path}"
    settings.EVENT_SINKS = {"DISPATCH": "sync", setting: value}
    args = [*COMMANDS[command], "--olx", str(REPO / "event_sinks" / "demo" / "course")] \
        if command == "dump_sink" else COMMANDS[command]
    assert run_refused(command, args) == (
        f"EVENT_SINKS[{setting!r}]: the embedded engine's data directory {path} {problem}")


def test_native_stack_frames_are_left_out_of_messages():
    from event_sinks.management.commands._common import without_stack_frames

    chdb = ("the embedded ClickHouse engine could not start: Code: 36. DB::Exception: Error initializing: \n\n"
            "0. arrow::acero::TableSinkNodeConsumer::Finish() (.cold) @ 0x0000000000030434\n"
            "1. ? @ 0x000000002061bd19\n3. ")
    assert without_stack_frames(chdb) == ("the embedded ClickHouse engine could not start: Code: 36. "
                                          "DB::Exception: Error initializing:")
    assert without_stack_frames("1. a list\n2. of steps") == "1. a list\n2. of steps"


def test_an_unexpected_error_never_shows_the_password(settings, monkeypatch):
    from event_sinks.registry import registry

    dsn = "http://analytics:o@ch.example:8123/db"  # a one-letter password: masked where the DSN shows, only there
    settings.EVENT_SINKS = {"DISPATCH": "sync", "DSN": dsn}

    def broken():
        raise OSError(f"Connection to {dsn} reset")

    monkeypatch.setattr(registry, "names", broken)
    assert run_refused("list_sinks", []).startswith(
        "list_sinks failed: OSError: Connection to http://analytics:***@ch.example:8123/db reset")
