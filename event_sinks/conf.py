"""Settings: one ``EVENT_SINKS`` dict, each key documented with its default.

Read through :func:`get_settings`, which works with or without Django settings configured, so the
library and the ``event-sinks`` command line share one source of truth. The environment variable
``EVENT_SINKS_DSN`` overrides ``DSN`` (handy for the command line and containers).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ConfigurationError
from .schema import identifier

DISPATCH_STRATEGIES = ("sync", "on_commit", "celery")

#: Every setting with its default. Documented in docs/settings.rst.
DEFAULTS: dict[str, Any] = {
    # Engine DSN: "chdb:///absolute/path" (embedded) or "http(s)://user:password@host:port/database".
    # None means the embedded engine in DATA_DIR.
    "DSN": None,
    # Data directory of the embedded engine when DSN is None (relative paths: from the working dir).
    "DATA_DIR": "event_sinks_data",
    # Database holding the tables and views (an http DSN's /database path wins when present).
    "DATABASE": "event_sinks",
    # ClickHouse cluster name: adds ON CLUSTER to DDL and uses Replicated* engines.
    "CLUSTER": None,
    # How triggered keys are dumped: "sync", "on_commit" or "celery".
    "DISPATCH": "on_commit",
    # Rows per insert.
    "BATCH_SIZE": 50_000,
    # Per-sink switches: {"course_outline": {"ENABLED": False}}. PII sinks need ENABLED: True.
    "SINKS": {},
    # HTTP timeouts in seconds: bound how long a publish can wait on a slow or dead server.
    "CONNECT_TIMEOUT": 3,
    "SEND_RECEIVE_TIMEOUT": 30,
    # Create missing tables and views on first use (set False where DDL is managed elsewhere).
    "AUTO_CREATE_SCHEMA": True,
    # Celery: queue name for dump tasks (None: the default queue) and retry limits.
    "CELERY_QUEUE": None,
    "CELERY_MAX_RETRIES": 8,
    # Seconds during which repeated triggers of one key collapse into a single dump.
    "COALESCE_SECONDS": 2.0,
    # Course sinks outside Open edX: OLX exports (folders, .tar.gz, or folders of them) to read
    # courses from. Inside Open edX, leave empty: courses come from the modulestore.
    "OLX_PATHS": [],
}


@attrs.frozen
class Settings:
    """The validated settings in force."""

    dsn: str
    database: str
    cluster: str | None
    dispatch: str
    batch_size: int
    sinks: Mapping[str, Mapping[str, Any]]
    connect_timeout: int
    send_receive_timeout: int
    auto_create_schema: bool
    celery_queue: str | None
    celery_max_retries: int
    coalesce_seconds: float
    olx_paths: tuple[str, ...] = ()

    def sink_enabled(self, name: str, pii: bool = False) -> bool:
        """Whether the sink ``name`` is switched on: default on, except for PII sinks."""
        options = self.sinks.get(name, {})
        return bool(options.get("ENABLED", not pii))


def _django_settings() -> Mapping[str, Any]:
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - django is a dependency
        return {}
    if not settings.configured:
        return {}
    value = getattr(settings, "EVENT_SINKS", {}) or {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"settings.EVENT_SINKS must be a dict, found {type(value).__name__}")
    return value


def get_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings in force: defaults, then Django's EVENT_SINKS, then the environment, then overrides."""
    raw = dict(DEFAULTS)
    given = dict(_django_settings())
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigurationError(f"EVENT_SINKS has unknown keys {unknown}; known keys are {sorted(DEFAULTS)}")
    raw.update(given)
    if os.environ.get("EVENT_SINKS_DSN"):
        raw["DSN"] = os.environ["EVENT_SINKS_DSN"]
    raw.update(overrides or {})
    return _validate(raw)


def _validate(raw: Mapping[str, Any]) -> Settings:
    dsn = raw["DSN"] or f"chdb://{os.path.abspath(raw['DATA_DIR'])}"
    if not isinstance(dsn, str) or not dsn.startswith(("chdb:", "http://", "https://")):
        raise ConfigurationError(
            "EVENT_SINKS['DSN'] must look like 'chdb:///path/to/data' or "
            f"'http(s)://user:password@host:port/database', found {_mask(dsn)!r}"
        )
    for name in ("DATABASE", "CLUSTER"):
        if raw[name] is not None:
            try:
                identifier(raw[name], f"EVENT_SINKS['{name}']")
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
    if raw["DISPATCH"] not in DISPATCH_STRATEGIES:
        raise ConfigurationError(
            f"EVENT_SINKS['DISPATCH'] must be one of {list(DISPATCH_STRATEGIES)}, found {raw['DISPATCH']!r}"
        )
    if raw["DISPATCH"] == "celery":
        try:
            import celery  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "EVENT_SINKS['DISPATCH'] is 'celery' but Celery is not installed: "
                "pip install 'openedx-event-sinks[celery]', or choose 'on_commit'"
            ) from None
    batch = raw["BATCH_SIZE"]
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigurationError(f"EVENT_SINKS['BATCH_SIZE'] must be a positive integer, found {batch!r}")
    if not isinstance(raw["SINKS"], Mapping):
        raise ConfigurationError(f"EVENT_SINKS['SINKS'] must be a dict of dicts, found {raw['SINKS']!r}")
    return Settings(
        dsn=dsn,
        database=raw["DATABASE"],
        cluster=raw["CLUSTER"],
        dispatch=raw["DISPATCH"],
        batch_size=batch,
        sinks=raw["SINKS"],
        # clickhouse-connect takes whole seconds; round up so 0.5 does not become "no timeout".
        connect_timeout=math.ceil(float(raw["CONNECT_TIMEOUT"])),
        send_receive_timeout=math.ceil(float(raw["SEND_RECEIVE_TIMEOUT"])),
        auto_create_schema=bool(raw["AUTO_CREATE_SCHEMA"]),
        celery_queue=raw["CELERY_QUEUE"],
        celery_max_retries=int(raw["CELERY_MAX_RETRIES"]),
        coalesce_seconds=float(raw["COALESCE_SECONDS"]),
        olx_paths=tuple(str(p) for p in raw["OLX_PATHS"] or ()),
    )


def _mask(dsn: Any) -> Any:
    from .clickhouse import mask_dsn

    return mask_dsn(dsn) if isinstance(dsn, str) else dsn
