"""The stand-in CCX app, labelled ``ccx`` as the platform's is."""

from django.apps import AppConfig


class CCXConfig(AppConfig):
    """``lms.djangoapps.ccx``'s label, so ``apps.get_model("ccx", "CustomCourseForEdX")`` finds the model."""

    name = "tests.support.ccx"
    label = "ccx"
    default_auto_field = "django.db.models.AutoField"
