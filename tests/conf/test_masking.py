"""The DSN's password is masked where the DSN or its userinfo appears, and nowhere else.

Masking a password as a bare substring garbles messages once the password is short or an ordinary word
(``o`` turned "Error HTTPConnection" into "Err***r HTTPC***nnecti***n"; ``default`` and ``clickhouse``
eat words of every message), and masking "everything before the last @" ate chDB's messages, whose
native stack frames hold ``@ 0x...``.
"""

from __future__ import annotations

import pytest

from event_sinks.conf import parse_dsn
from event_sinks.conf.dsn import mask_secrets

CHDB_MESSAGE = (
    "Code: 60. DB::Exception: Unknown table expression identifier 'nope' in scope SELECT * FROM nope. "
    "(UNKNOWN_TABLE)\n0. DB::Exception::Exception() @ 0x000000000e89dddf\n1. ? @ 0x000000002061bd19\n"
)
HTTP_MESSAGE = (
    "Error HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /?database=default "
    "(Caused by NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=1): Failed to establish a new "
    "connection: [Errno 111] Connection refused\")) in clickhouse_connect.driver.httpclient"
)


@pytest.mark.parametrize("dsn", ["chdb:///var/lib/event_sinks", "chdb:/data@home/x", "chdb:///tmp/a@b"])
def test_an_embedded_engines_message_is_left_whole(dsn):
    assert mask_secrets(CHDB_MESSAGE, dsn) == CHDB_MESSAGE
    assert mask_secrets(f"{CHDB_MESSAGE} at {dsn}", dsn) == f"{CHDB_MESSAGE} at {dsn}"


@pytest.mark.parametrize(("user", "password"), [
    ("u", "o"), ("default", "default"), ("u", "clickhouse"), ("u", "1"), ("admin", "connection"), ("u", "e"),
])
def test_a_short_or_common_password_garbles_nothing(user, password):
    dsn = f"http://{user}:{password}@127.0.0.1:1/db"
    assert mask_secrets(HTTP_MESSAGE, dsn) == HTTP_MESSAGE
    assert mask_secrets(CHDB_MESSAGE, dsn) == CHDB_MESSAGE
    shown = f"ClickHouse at {dsn} is unreachable: {HTTP_MESSAGE}"
    assert mask_secrets(shown, dsn) == f"ClickHouse at http://{user}:***@127.0.0.1:1/db is unreachable: {HTTP_MESSAGE}"


@pytest.mark.parametrize(("dsn", "seen", "shown"), [
    ("http://u:s3cret@h:8123/db", "to http://u:s3cret@h:8123 failed", "to http://u:***@h:8123 failed"),
    ("http://u:p%40ss@h/db", "url http://u:p@ss@h/db", "url http://u:***@h/db"),  # the driver decoded it
    ("http://u:p@ss@h/db", "auth u:p%40ss@h", "auth u:***@h"),  # the driver encoded it
    ("http://us%20er:pw@h/db", "as us er:pw@h", "as us er:***@h"),
    ("http:/admin:Qx7Lk-Jw4Tz@h:1/db", "http:/admin:Qx7Lk-Jw4Tz@h:1/db", "***@h:1/db"),  # malformed: one slash
    ("https://a:b:c@h/db", "https://a:b:c@h/db", "https://a:***@h/db"),
])
def test_the_dsn_and_its_userinfo_are_masked_however_written(dsn, seen, shown):
    assert mask_secrets(f"<{seen}>", dsn) == f"<{shown}>"


def test_a_target_scrubs_with_its_own_dsn():
    target = parse_dsn("http://default:default@127.0.0.1:8123/db", "x")
    assert target.scrub(f"{target.dsn}: default database missing") == (
        "http://default:***@127.0.0.1:8123/db: default database missing")


def test_nothing_to_mask():
    assert mask_secrets("plain", None) == "plain"
    assert mask_secrets("u:@h", "http://u@h/db") == "u:@h"


@pytest.mark.parametrize("password", ["default", "clickhouse", "connection"])
def test_engine_errors_are_not_garbled_by_a_common_password(password):
    from event_sinks.clickhouse.diagnostics import scrub

    target = parse_dsn(f"http://default:{password}@127.0.0.1:1/db", "x")
    assert scrub(HTTP_MESSAGE, target) == HTTP_MESSAGE
