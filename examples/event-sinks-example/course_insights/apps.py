"""The Django app of the example plugin: it holds the ContentFlag model."""

from django.apps import AppConfig


class CourseInsightsConfig(AppConfig):
    """The app Open edX loads through the ``lms.djangoapp`` and ``cms.djangoapp`` entry points."""

    name = "course_insights"
    verbose_name = "Course insights (event-sinks example)"
    default_auto_field = "django.db.models.BigAutoField"
