"""A settings module shaped like edx-platform's ``cms/envs/production.py``, as far as this plugin sees it.

As in the platform: ``from .common import *``; the YAML file named by ``CMS_CFG`` is loaded and every
top-level key *replaces* the setting of that name (``vars().update(...)``: an ``EVENT_SINKS`` in the
YAML replaces the dict the common plugin settings built); ``ENV_TOKENS`` is the YAML, kept for old
plugins; then ``add_plugins(__name__, ProjectType.CMS, SettingsType.PRODUCTION)``.
"""

import os

import yaml
from edx_django_utils.plugins import add_plugins

from .common import *  # noqa: F403

with open(os.environ["CMS_CFG"], encoding="utf-8") as _file:
    _YAML_TOKENS = yaml.safe_load(_file) or {}
vars().update(_YAML_TOKENS)

ENV_TOKENS = _YAML_TOKENS
add_plugins(__name__, "cms.djangoapp", "production")
