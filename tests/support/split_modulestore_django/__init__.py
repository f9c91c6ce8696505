"""A stand-in for the platform's course index app (``common.djangoapps.split_modulestore_django``)."""
