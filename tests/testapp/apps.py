"""The test app's config."""

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """Models used by tests/test_model_sinks.py (tables are created by syncdb: no migrations)."""

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.AutoField"
