"""Sphinx configuration of the event-sinks documentation (``tox -e docs``; warnings are errors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "_ext"), str(HERE.parent)]
os.environ.setdefault("COLUMNS", "100")  # argparse's help width, for a stable reference

# The generated reference imports the management commands and the registry: Django settings as the
# command line has them (the app, no database; nothing connects to an engine while building).
from event_sinks import __version__  # noqa: E402
from event_sinks.cli import configure  # noqa: E402

configure(None)

project = "event-sinks"
author = "the event-sinks authors"
copyright = "the event-sinks authors, AGPL-3.0"  # noqa: A001 - Sphinx's name
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxcontrib.mermaid",
    "event_sinks_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "tutorial/output"]

# markdown: heading anchors so that links such as settings.md#the-event-bus resolve
myst_heading_anchors = 3
myst_fence_as_directive = ["mermaid"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = f"event-sinks {release}"
html_static_path: list[str] = []
