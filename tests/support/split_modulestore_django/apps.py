"""The stand-in course index app, under the platform app's label."""

from django.apps import AppConfig


class SplitModulestoreDjangoConfig(AppConfig):
    """Labelled ``split_modulestore_django``, so ``apps.get_model`` finds the index as in the platform."""

    name = "tests.support.split_modulestore_django"
    label = "split_modulestore_django"
    default_auto_field = "django.db.models.AutoField"
