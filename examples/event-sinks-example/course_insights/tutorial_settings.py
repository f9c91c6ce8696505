"""Django settings of the tutorial: the smallest project that runs the example plugin's sinks.

Inside Open edX the LMS and CMS are the project; here ``django-admin`` runs the plugin against a
SQLite file and the embedded ClickHouse engine, with its data where ``event-sinks`` keeps it.
"""

SECRET_KEY = "event-sinks-tutorial"  # a tutorial project, never deployed
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "event_sinks",
    "course_insights",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "tutorial.sqlite3"}}
EVENT_SINKS = {
    "DATA_DIR": "event_sinks_data",  # the directory the event-sinks command uses
    "OLX_PATHS": ["course"],  # where the course sinks read courses: Open edX's modulestore is not here
}
LOGGING_CONFIG = None
