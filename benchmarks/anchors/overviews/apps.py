"""App config of the benchmarks-local ``CourseOverview`` model."""

from django.apps import AppConfig


class OverviewsConfig(AppConfig):
    name = "anchors.overviews"
    label = "anchor_overviews"
    default_auto_field = "django.db.models.AutoField"
