"""Inside Open edX: the plugin's settings as edx-platform builds them, and no silent embedded engine.

The settings come from modules shaped like ``cms/envs/common.py`` and ``production.py``
(``tests/support/openedx_envs/``), with the plugin loaded through edx-django-utils' real plugin API
(``get_plugin_apps``, ``add_plugins``) from this package's installed entry points.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import version
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from edx_django_utils.plugins import get_plugin_apps

from event_sinks.checks import NO_ENGINE_WARNING
from event_sinks.conf import get_settings
from event_sinks.registry import registry

from .support.openedx_envs import production_settings

DEMO = Path(__file__).resolve().parents[1] / "event_sinks" / "demo" / "course"


@pytest.mark.skipif(not os.environ.get("PLATFORM_PINS"), reason="set by tox -e platform")
def test_the_platform_env_runs_on_the_platforms_own_pins():
    pins = dict(pin.split("==") for pin in os.environ["PLATFORM_PINS"].split())
    assert {name: version(name) for name in pins} == pins


def test_the_plugin_is_found_through_the_platform_plugin_api():
    assert "event_sinks.apps.EventSinksConfig" in get_plugin_apps("cms.djangoapp")
    assert "event_sinks.apps.EventSinksConfig" in get_plugin_apps("lms.djangoapp")


def test_inside_the_platform_dumps_go_to_celery_and_the_yaml_keeps_its_values(monkeypatch, tmp_path):
    yaml = "EVENT_SINKS:\n  SINKS: {block_relationships: {ENABLED: false}}\n"
    module = production_settings(monkeypatch, tmp_path, yaml)
    assert module.DATABASES["default"]["ATOMIC_REQUESTS"] is True
    sinks = module.EVENT_SINKS
    # The YAML replaced the common plugin settings' dict; the production plugin settings put the defaults back.
    assert sinks["DISPATCH"] == "celery" and sinks["EMBEDDED_ALLOWED"] is False
    assert sinks["SINKS"] == {"block_relationships": {"ENABLED": False}} and sinks["BATCH_SIZE"] == 50_000
    operator = production_settings(monkeypatch, tmp_path, "EVENT_SINKS:\n  DISPATCH: on_commit\n")
    assert operator.EVENT_SINKS["DISPATCH"] == "on_commit"  # an operator may override


def test_no_dsn_in_the_platform_means_no_dumps_one_warning_and_a_check_warning(
        monkeypatch, tmp_path, settings, signal_handler, caplog, capsys):
    module = production_settings(monkeypatch, tmp_path, "EVENT_SINKS: {}\n")
    settings.EVENT_SINKS = {**module.EVENT_SINKS, "DISPATCH": "sync"}  # sync: a dump would happen right here
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    current = get_settings()
    assert current.dsn is None and registry.enabled() == []

    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        apps.get_app_config("event_sinks").ready()
        signal_handler.course_published.send(sender=None, course_key="course-v1:EventSinks+Demo101+2026")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "EVENT_SINKS['DSN'] is not set" in warnings[0]

    call_command("check")
    assert NO_ENGINE_WARNING in capsys.readouterr().err
    assert not (tmp_path / "event_sinks_data").exists() and not Path("event_sinks_data").exists()


def test_aspects_clickhouse_setting_is_used_when_ours_is_unset(monkeypatch, tmp_path, settings):
    module = production_settings(monkeypatch, tmp_path, "EVENT_SINKS: {}\n")
    settings.EVENT_SINKS = module.EVENT_SINKS
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {
        "url": "http://clickhouse:8123", "username": "ch_lms", "password": "p@ss/word", "database": "event_sink",
        "timeout_secs": 5,
    }
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    current = get_settings()
    target = current.target
    assert (target.host, target.port, target.username, target.password) == ("clickhouse", 8123, "ch_lms", "p@ss/word")
    # Aspects' database holds tables named like our views: ours stay in their own database.
    assert target.database == "event_sinks" and current.sink_enabled("course_outline")
    settings.EVENT_SINKS = {**module.EVENT_SINKS, "DSN": "http://ours:8123/analytics"}
    assert get_settings().target.host == "ours"  # our setting wins


def test_a_malformed_aspects_setting_is_a_clear_error(monkeypatch, settings):
    settings.EVENT_SINKS = {"EMBEDDED_ALLOWED": False}
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {"url": "clickhouse:8123"}
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    with pytest.raises(Exception, match=r"EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG\['url'\] must be"):
        get_settings()
