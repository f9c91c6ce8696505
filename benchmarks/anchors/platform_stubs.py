"""The edx-platform modules the anchors import, as small modules in ``sys.modules``.

Only what is edx-platform's own is stubbed (everything else the anchors import is installed from
PyPI: Django, DRF, Celery, edx-toggles, edx-django-utils, XBlock, superset-api-client...). Each
stub names the platform source whose behaviour it follows.
"""

from __future__ import annotations

import sys
import types
from typing import Any

#: xmodule/modulestore/store_utilities.py: ``DETACHED_XBLOCK_TYPES = set(name for name, __ in
#: XBlock.load_tagged_classes("detached"))``. The classes the platform tags "detached" are
#: xmodule/html_block.py's AboutBlock, StaticTabBlock and CourseInfoBlock, so inside the LMS/CMS the
#: set is exactly this one (the anchors only test membership).
DETACHED_XBLOCK_TYPES = {"about", "course_info", "static_tab"}


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__path__ = []  # a package: its stubbed submodules import through sys.modules
        sys.modules[name] = module
    for attr, value in attrs.items():
        setattr(module, attr, value)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(_module(parent), child, module)
    return module


def no_object_tags(object_id: str, taxonomy_id: int | None = None, object_tag_class: Any = None) -> list[Any]:
    """openedx/core/djangoapps/content_tagging/api.py ``get_object_tags``, for a course with no tags.

    The platform's returns a queryset of the object's tags (one SQL query when the anchors iterate it,
    once per block); this stub answers "no tags" without a query, so the anchors' figures here are
    what they would reach with a free tagging API: a bound in their favour.
    """
    return []


def install(store: Any) -> None:
    """Put the stubs in ``sys.modules``; ``modulestore()`` returns ``store``.

    - ``xmodule.modulestore.django.modulestore``: xmodule/modulestore/django.py returns the process's
      one MixedModuleStore (created on first call, then cached); here, the modulestore stand-in.
    - ``xmodule.modulestore.store_utilities.DETACHED_XBLOCK_TYPES``: see above.
    - ``openedx.core.djangoapps.content_tagging.api.get_object_tags``: see :func:`no_object_tags`
      (Aspects reads it for every block; without this module it would take its pre-Redwood path, an
      ``ImportError`` caught on every block, which is not what a current platform does).
    """
    _module("xmodule.modulestore.django", modulestore=lambda: store)
    _module("xmodule.modulestore.store_utilities", DETACHED_XBLOCK_TYPES=DETACHED_XBLOCK_TYPES)
    _module("openedx.core.djangoapps.content_tagging.api", get_object_tags=no_object_tags)
