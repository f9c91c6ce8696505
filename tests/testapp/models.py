"""Models for the model sink tests.

``Everything`` has one field of every kind a model sink maps (and nullable twins); ``CourseOverview``
has the field names and types of edx-platform's
``openedx.core.djangoapps.content.course_overviews.models.CourseOverview`` for the fields its sink
reads (``modified`` comes from model_utils' TimeStampedModel there: a DateTimeField set on save).
"""

import uuid
from datetime import date

from django.db import models
from django.utils import timezone
from opaque_keys.edx.django.models import CourseKeyField, UsageKeyField


class Owner(models.Model):
    """A foreign key target with an AutoField primary key (Int32)."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=50)


class CourseOverview(models.Model):
    """edx-platform's CourseOverview, reduced to the fields the course_overviews sink reads."""

    created = models.DateTimeField(default=timezone.now, editable=False)
    modified = models.DateTimeField(auto_now=True)
    version = models.IntegerField(default=1)
    id = CourseKeyField(db_index=True, primary_key=True, max_length=255)
    _location = UsageKeyField(max_length=255, blank=True)
    org = models.TextField(max_length=255, default="outdated_entry")
    display_name = models.TextField(null=True)
    start = models.DateTimeField(null=True)
    end = models.DateTimeField(null=True)
    enrollment_start = models.DateTimeField(null=True)
    enrollment_end = models.DateTimeField(null=True)
    self_paced = models.BooleanField(default=False)
    lowest_passing_grade = models.DecimalField(max_digits=5, decimal_places=2, null=True)

    class Meta:
        app_label = "testapp"


class Everything(models.Model):
    """One field of every mapped kind, then nullable twins; ``updated_at`` is the version."""

    id = models.BigAutoField(primary_key=True)
    char = models.CharField(max_length=50, default="")
    text = models.TextField(default="")
    slug = models.SlugField(default="")
    email = models.EmailField(default="")
    url = models.URLField(default="")
    small = models.SmallIntegerField(default=0)
    integer = models.IntegerField(default=0)
    big = models.BigIntegerField(default=0)
    psmall = models.PositiveSmallIntegerField(default=0)
    pint = models.PositiveIntegerField(default=0)
    pbig = models.PositiveBigIntegerField(default=0)
    amount = models.DecimalField(max_digits=12, decimal_places=3, default=0)
    ratio = models.FloatField(default=0.0)
    at = models.DateTimeField(default=timezone.now)
    day = models.DateField(default=date.today)
    flag = models.BooleanField(default=False)
    uid = models.UUIDField(default=uuid.uuid4)
    data = models.JSONField(default=dict)
    owner = models.ForeignKey(Owner, on_delete=models.CASCADE)
    course = CourseKeyField(max_length=255)
    usage = UsageKeyField(max_length=255)
    overview = models.OneToOneField(CourseOverview, null=True, on_delete=models.SET_NULL)
    maybe_text = models.CharField(max_length=50, null=True)
    maybe_int = models.IntegerField(null=True)
    maybe_amount = models.DecimalField(max_digits=6, decimal_places=2, null=True)
    maybe_at = models.DateTimeField(null=True)
    maybe_day = models.DateField(null=True)
    maybe_flag = models.BooleanField(null=True)
    maybe_uid = models.UUIDField(null=True)
    maybe_data = models.JSONField(null=True)
    maybe_course = CourseKeyField(max_length=255, null=True)
    maybe_owner = models.ForeignKey(Owner, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)


class Note(models.Model):
    """A plain model with a text primary key, for the third-party plugin and PII tests."""

    slug = models.SlugField(primary_key=True)
    body = models.TextField()
    author_email = models.EmailField(default="")
