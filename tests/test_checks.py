"""``manage.py check`` reports every bad ``EVENT_SINKS`` value, with the key, the value and what was expected."""

from __future__ import annotations

import math

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from event_sinks.conf import DEFAULTS, get_settings
from event_sinks.errors import ConfigurationError

#: One bad value per key (every key of the declaration), and a word the message must contain.
BAD = {
    "DSN": ("ftp://host/db", "scheme"),
    "DATA_DIR": (None, "folder path"),
    "DATABASE": ("my-db", "plain identifier"),
    "CLUSTER": ("two words", "plain identifier"),
    "DISPATCH": ("later", "one of"),
    "BATCH_SIZE": (0, "at least 1"),
    "SINKS": ({"course_outline": "off"}, "dict of options"),
    "CONNECT_TIMEOUT": ("3", "number of seconds"),
    "SEND_RECEIVE_TIMEOUT": (math.inf, "finite"),
    "AUTO_CREATE_SCHEMA": ("yes", "True or False"),
    "EMBEDDED_ALLOWED": (1, "True or False"),
    "CELERY_QUEUE": ("", "non-empty"),
    "CELERY_MAX_RETRIES": (-1, "at least 0"),
    "COALESCE_SECONDS": (math.nan, "finite"),
    "OLX_PATHS": ("/one/path", "list of paths"),
    "ASPECTS": ("on", "expected a dict"),
    "DUMP_TIMEOUT": (0, "more than 0"),
}


def test_every_key_has_a_bad_value_case():
    assert set(BAD) == set(DEFAULTS)


def test_the_defaults_pass_the_checks(settings):
    settings.EVENT_SINKS = dict(DEFAULTS)
    call_command("check", "--fail-level", "WARNING")


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_bad_value_fails_manage_py_check_naming_key_value_and_expectation(settings, key):
    value, expected = BAD[key]
    settings.EVENT_SINKS = {"DISPATCH": "sync", key: value}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "event_sinks.E001" in text
    assert f"EVENT_SINKS['{key}']" in text and expected in text
    shown = "'off'" if key == "SINKS" else "ftp://host/db" if key == "DSN" else repr(value)
    assert shown in text  # the value at fault (for SINKS: the option value inside it)
    with pytest.raises(ConfigurationError, match=rf"EVENT_SINKS\['{key}'\]"):  # and the library says the same
        get_settings()


def test_unknown_keys_and_a_non_dict_are_reported(settings):
    settings.EVENT_SINKS = {"DISPATCH": "sync", "BATCHSIZE": 10}
    with pytest.raises(SystemCheckError, match=r"unknown keys \['BATCHSIZE'\]"):
        call_command("check")
    settings.EVENT_SINKS = ["DSN"]
    with pytest.raises(SystemCheckError, match="must be a dict, found list"):
        call_command("check")


def test_a_dsn_password_never_shows_in_a_check_message(settings):
    settings.EVENT_SINKS = {"DSN": "http://user:pa55word@host:notaport/db"}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "pa55word" not in str(caught.value) and "port" in str(caught.value)


def test_several_problems_are_all_reported(settings):
    settings.EVENT_SINKS = {"BATCH_SIZE": "big", "DISPATCH": "later"}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    assert "BATCH_SIZE" in str(caught.value) and "DISPATCH" in str(caught.value)


def test_a_bad_environment_dsn_is_reported_naming_the_variable(settings, monkeypatch):
    settings.EVENT_SINKS = {"DISPATCH": "sync"}
    monkeypatch.setenv("EVENT_SINKS_DSN", "http://u:pa55word@host:99999/db")
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "event_sinks.E001" in text and "EVENT_SINKS_DSN (the environment variable" in text
    assert "Port out of range" in text and "pa55word" not in text
