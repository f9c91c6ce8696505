"""Settings modules shaped like edx-platform's ``cms/envs/common.py`` and ``production.py`` (see each)."""
