"""A settings module shaped like edx-platform's ``cms/envs/common.py``, as far as this plugin sees it.

What matters here, from the platform (Ulmo): every request is one transaction (``ATOMIC_REQUESTS``);
the plugin apps' *common* settings are applied at the end of the module through edx-django-utils'
``add_plugins(__name__, ProjectType.CMS, SettingsType.COMMON)`` (``ProjectType.CMS`` is
``"cms.djangoapp"``, ``SettingsType.COMMON`` is ``"common"`` in ``openedx.core.djangoapps.plugins.constants``).
"""

from edx_django_utils.plugins import add_plugins

SERVICE_VARIANT = "cms"
SECRET_KEY = "platform-shaped-tests"
USE_TZ = True
TIME_ZONE = "UTC"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "ATOMIC_REQUESTS": True}}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "openedx_events", "event_sinks"]

add_plugins(__name__, "cms.djangoapp", "common")
