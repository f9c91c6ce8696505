"""Django settings for the test suite: a real SQLite database, the app installed as in a host."""

SECRET_KEY = "event-sinks-tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "openedx_events",
    "event_sinks",
    "tests.testapp",
    "tests.support.ccx",
    "tests.support.split_modulestore_django",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
# The conftest points DSN at a per-session data directory and DATABASE at a per-test database.
EVENT_SINKS = {"DISPATCH": "sync"}
LOGGING_CONFIG = None
TIME_ZONE = "UTC"
