"""Settings modules shaped like edx-platform's ``cms/envs/common.py`` and ``production.py`` (see each)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

PRODUCTION = "tests.support.openedx_envs.production"


def production_settings(monkeypatch, tmp_path, yaml_text: str) -> ModuleType:
    """The production settings module, built afresh from ``yaml_text`` (the CMS_CFG file) as the platform would."""
    config = tmp_path / "cms.yml"
    config.write_text(yaml_text, encoding="utf-8")
    monkeypatch.setenv("CMS_CFG", str(config))
    for name in (PRODUCTION, "tests.support.openedx_envs.common"):
        sys.modules.pop(name, None)
    return importlib.import_module(PRODUCTION)
