"""A Django app for the model sink tests: one model per kind of field, and a CourseOverview stand-in."""
