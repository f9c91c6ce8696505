"""Support for ``benchmarks/vs_existing.py``: what the existing Open edX ClickHouse sinks need to run here.

The "anchors" are the course-publish dump tasks of the sinks this library is measured against:
``openedx-event-sink-clickhouse`` 1.1.1 and ``platform-plugin-aspects`` 1.1.2 and 2.1.0, installed
from PyPI in their own virtualenv (see ``vs_existing.py``'s docstring) and run unchanged. They are
edx-platform plugins, so this package gives them what the platform would:

- :mod:`.platform_stubs`: the few edx-platform modules they import (the modulestore, the detached
  block types, the tagging API), each a small module in ``sys.modules``;
- :mod:`.xblock_adapter`: the XBlock attributes they read that the modulestore stand-in's blocks
  lack (``scope_ids``, ``display_name_with_default``, ``completion_mode``, video start/end times);
- :mod:`.overviews`: a Django app with a minimal ``CourseOverview`` model (the fields their
  serializer reads), in place of ``openedx.core.djangoapps.content.course_overviews``;
- :mod:`.django_settings`: their settings, from their own ``plugin_settings``, pointed at a local
  HTTP endpoint (:mod:`.discard_server`) that reads each request's body and throws it away.

Nothing here is copied from the anchors or from edx-platform; each stub says which platform source
its behaviour follows.
"""
