"""The ContentFlag table."""

import opaque_keys.edx.django.models
from django.db import migrations, models


class Migration(migrations.Migration):
    """Create ContentFlag."""

    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ContentFlag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("course_key", opaque_keys.edx.django.models.CourseKeyField(db_index=True, max_length=255)),
                ("usage_key", opaque_keys.edx.django.models.UsageKeyField(max_length=255)),
                ("reason", models.CharField(
                    choices=[("broken", "Broken"), ("outdated", "Outdated"), ("unclear", "Unclear")], max_length=16,
                )),
                ("note", models.TextField(blank=True)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("modified", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
