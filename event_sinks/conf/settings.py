"""The ``EVENT_SINKS`` settings, declared once: each key's default, its check and its documentation.

Everything that reads settings goes through this declaration: :func:`get_settings` (the library,
the commands, the receivers), the Open edX plugin settings (the defaults), and the Django system
checks (:mod:`event_sinks.checks`), which report every bad key at ``manage.py check`` with the key,
the value and what was expected. :func:`get_settings` works with or without Django settings
configured, so the library and the ``event-sinks`` command line share one source of truth. The
environment variable ``EVENT_SINKS_DSN`` overrides ``DSN`` (handy for the command line and containers).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs

from ..core.schema import identifier
from ..errors import ConfigurationError, UnsafeIdentifierError
from .dsn import Target, mask_dsn, parse_dsn

DISPATCH_STRATEGIES = ("sync", "on_commit", "celery")
#: Options a sink accepts under ``EVENT_SINKS["SINKS"][name]``.
SINK_OPTIONS = ("ENABLED", "MODEL")
#: ``EVENT_SINKS["ASPECTS"]``: its options and their defaults (Aspects compatibility, docs/aspects.md).
ASPECTS_DEFAULTS = {"ENABLED": False, "DATABASE": "event_sink", "UNIT_NUMBERING": "ours"}
UNIT_NUMBERINGS = ("ours", "aspects")


class Invalid(ValueError):
    """A value that a setting's check refuses; the message says what was expected."""


# -- checks: each returns the value to use, or raises Invalid("expected ...") ------------------------


def _dsn(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(f"expected None or a DSN string, found {value!r}")
    try:
        parse_dsn(value, "event_sinks")
    except ConfigurationError as exc:
        raise Invalid("expected " + str(exc).split(" must look like ", 1)[-1]) from None
    return value


def _path(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise Invalid(f"expected a folder path, found {value!r}")
    return os.fspath(value)


def _identifier(optional: bool) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        try:
            return identifier(value, "the name")
        except UnsafeIdentifierError as exc:
            raise Invalid(f"expected {'None or ' if optional else ''}{exc.args[0][len('the name '):]}") from None

    return check


def _dispatch(value: Any) -> str:
    if value not in DISPATCH_STRATEGIES:
        raise Invalid(f"expected one of {list(DISPATCH_STRATEGIES)}, found {value!r}")
    if value == "celery":
        try:
            import celery  # noqa: F401
        except ImportError:
            raise Invalid(
                "'celery' needs Celery, which is not installed: pip install 'openedx-event-sinks[celery]', "
                "or choose 'on_commit'"
            ) from None
    return value


def _int(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(f"expected an integer of at least {minimum}, found {value!r}")
        return value

    return check


def _seconds(minimum_exclusive: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or (minimum_exclusive and value == 0):
            bound = "more than 0" if minimum_exclusive else "0 or more"
            raise Invalid(f"expected a finite number of seconds, {bound}, found {value!r}")
        return float(value)

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected True or False, found {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected None or a non-empty string, found {value!r}")
    return value


def _sinks(value: Any) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a dict of {{sink name: {{option: value}}}}, found {value!r}")
    for name, options in value.items():
        if not isinstance(options, Mapping):
            raise Invalid(f"expected a dict of options for sink {name!r} (e.g. {{'ENABLED': False}}), "
                          f"found {options!r}")
        unknown = sorted(str(k) for k in set(options) - set(SINK_OPTIONS))
        if unknown:
            raise Invalid(f"sink {name!r}: unknown options {unknown}; known: {list(SINK_OPTIONS)}")
        if "ENABLED" in options and not isinstance(options["ENABLED"], bool):
            raise Invalid(f"sink {name!r}: ENABLED expects True or False, found {options['ENABLED']!r}")
        model = options.get("MODEL")
        if model is not None and (not isinstance(model, str) or model.count(".") != 1):
            raise Invalid(f"sink {name!r}: MODEL expects 'app_label.ModelName', found {model!r}")
    return value


def _paths(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)) or not isinstance(value, (list, tuple)):
        raise Invalid(f"expected a list of paths, found {value!r}")
    bad = [p for p in value if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise Invalid(f"expected a list of paths, found {bad[0]!r} in it")
    return tuple(os.fspath(p) for p in value)


def _aspects(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a dict like {{'ENABLED': True, 'DATABASE': 'event_sink'}}, found {value!r}")
    unknown = sorted(str(k) for k in set(value) - set(ASPECTS_DEFAULTS))
    if unknown:
        raise Invalid(f"unknown options {unknown}; known: {list(ASPECTS_DEFAULTS)}")
    options = {**ASPECTS_DEFAULTS, **value}
    if not isinstance(options["ENABLED"], bool):
        raise Invalid(f"ENABLED expects True or False, found {options['ENABLED']!r}")
    try:
        identifier(options["DATABASE"], "the name")
    except UnsafeIdentifierError:
        raise Invalid(f"DATABASE expects a plain identifier, found {options['DATABASE']!r}") from None
    if options["UNIT_NUMBERING"] not in UNIT_NUMBERINGS:
        raise Invalid(f"UNIT_NUMBERING expects one of {list(UNIT_NUMBERINGS)}, found {options['UNIT_NUMBERING']!r}")
    return options


# -- the declaration -------------------------------------------------------------------------------


def setting(default: Any, check: Callable[[Any], Any], doc: str) -> Any:
    """A field of :class:`Settings`: its ``EVENT_SINKS`` key is the field name in capitals."""
    return attrs.field(default=default, metadata={"check": check, "doc": doc})


@attrs.frozen
class Settings:
    """The validated settings in force (fields are the ``EVENT_SINKS`` keys in lower case)."""

    dsn: str | None = setting(
        None, _dsn,
        "Engine: 'chdb:///absolute/path' (embedded) or 'http(s)://user:password@host:port/database'. "
        "None: Aspects' EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG when set, else the embedded engine in DATA_DIR "
        "where EMBEDDED_ALLOWED, else no engine (the sinks are off).",
    )
    embedded_allowed: bool = setting(
        True, _bool,
        "Whether DSN None may mean the embedded engine. The Open edX plugin settings set it False: the "
        "LMS/CMS run many processes and chDB serves one, so there the sinks stay off until DSN is set.",
    )
    data_dir: str = setting(
        "event_sinks_data", _path,
        "Data folder of the embedded engine when DSN is None (relative paths: from the working directory).",
    )
    database: str = setting(
        "event_sinks", _identifier(False),
        "Database holding the tables and views (an http DSN's /database path wins when present).",
    )
    cluster: str | None = setting(
        None, _identifier(True), "ClickHouse cluster: adds ON CLUSTER to DDL and uses Replicated* engines.",
    )
    dispatch: str = setting(
        "on_commit", _dispatch, "How triggered keys are dumped: 'sync', 'on_commit' or 'celery'.",
    )
    batch_size: int = setting(50_000, _int(1), "Rows per insert.")
    sinks: Mapping[str, Mapping[str, Any]] = setting(
        attrs.Factory(dict), _sinks,
        "Per-sink options: {'course_outline': {'ENABLED': False}}; 'MODEL' points a model sink elsewhere. "
        "PII sinks need ENABLED: True.",
    )
    connect_timeout: float = setting(
        3, _seconds(True), "Seconds to wait for a ClickHouse server to accept a connection.",
    )
    send_receive_timeout: float = setting(
        30, _seconds(True), "Seconds to wait for a ClickHouse server's answer.",
    )
    dump_timeout: float = setting(
        60, _seconds(True),
        "Seconds one dump may spend waiting for ClickHouse, all its requests together (reading the source "
        "is not counted): a slow or trickling server fails the dump after that, and a publish waits at "
        "most this long per sink (a backfill's dump of n courses together, n times this). Servers also get "
        "it as max_execution_time.",
    )
    auto_create_schema: bool = setting(
        True, _bool, "Create missing tables and views on first use (False where DDL is managed elsewhere).",
    )
    celery_queue: str | None = setting(None, _optional_text, "Celery queue of dump tasks (None: Celery's routing).")
    celery_max_retries: int = setting(8, _int(0), "Retries of a dump task that failed on the engine.")
    coalesce_seconds: float = setting(
        2.0, _seconds(False), "Seconds during which repeated triggers of one key collapse into one dump (celery).",
    )
    olx_paths: tuple[str, ...] = setting(
        (), _paths,
        "Outside Open edX: OLX exports (folders, .tar.gz, or folders of them) the course sinks read. "
        "Inside Open edX leave it empty: courses come from the modulestore.",
    )
    aspects: Mapping[str, Any] = setting(
        attrs.Factory(lambda: dict(ASPECTS_DEFAULTS)), _aspects,
        "Aspects compatibility (docs/aspects.md): with ENABLED, every committed dump of course_outline and "
        "course_overviews is copied into Aspects' course_blocks and course_overviews tables of DATABASE (made "
        "with Aspects' DDL when absent, never altered), each tombstone deletes the key's rows there; "
        "UNIT_NUMBERING 'aspects' numbers units as platform-plugin-aspects does, 'ours' as course_outline.",
    )

    #: The setting :attr:`dsn` came from (not a setting itself): errors about the engine name it.
    dsn_origin: str = attrs.field(default="EVENT_SINKS['DSN']", kw_only=True)

    @property
    def target(self) -> Target:
        """The engine's location, parsed from :attr:`dsn`; ConfigurationError when there is none."""
        if self.dsn is None:
            raise ConfigurationError(NO_ENGINE)
        return parse_dsn(self.dsn, self.database, setting=self.dsn_origin)

    def sink_enabled(self, name: str, pii: bool = False) -> bool:
        """Whether the sink ``name`` is switched on: default on, except for PII sinks; all off with no engine."""
        if self.dsn is None:
            return False
        options = self.sinks.get(name, {})
        return bool(options.get("ENABLED", not pii))


#: ``EVENT_SINKS`` key -> field of :class:`Settings`.
FIELDS: dict[str, attrs.Attribute] = {f.name.upper(): f for f in attrs.fields(Settings) if "check" in f.metadata}


def _default(field: attrs.Attribute) -> Any:
    default: Any = field.default
    factory = getattr(default, "factory", None)  # an attrs.Factory
    return factory() if factory is not None else default


#: Every key with its default (the Open edX plugin settings start from these).
DEFAULTS: dict[str, Any] = {key: _default(field) for key, field in FIELDS.items()}


def describe(key: str) -> str:
    """The documentation of one ``EVENT_SINKS`` key."""
    return FIELDS[key].metadata["doc"]


def problems(given: Any) -> list[tuple[str | None, str]]:
    """Every problem of an ``EVENT_SINKS`` value, as (key or None, message); empty when all is well."""
    if not isinstance(given, Mapping):
        return [(None, f"settings.EVENT_SINKS must be a dict, found {type(given).__name__}")]
    found: list[tuple[str | None, str]] = []
    unknown = sorted(str(k) for k in set(given) - set(FIELDS))
    if unknown:
        found.append((None, f"EVENT_SINKS has unknown keys {unknown}; known keys are {sorted(FIELDS)}"))
    for key, field in FIELDS.items():
        if key in given:
            try:
                field.metadata["check"](given[key])
            except Invalid as exc:
                found.append((key, f"EVENT_SINKS[{key!r}]: {exc}"))
    return found


def _django_settings() -> Any:
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - django is a dependency
        return {}
    if not settings.configured:
        return {}
    return getattr(settings, "EVENT_SINKS", None) or {}


def sink_options(name: str) -> Mapping[str, Any]:
    """``EVENT_SINKS["SINKS"][name]`` as configured, read cheaply (no validation): for hot paths."""
    given = _django_settings()
    sinks = given.get("SINKS") if isinstance(given, Mapping) else None
    options = sinks.get(name) if isinstance(sinks, Mapping) else None
    return options if isinstance(options, Mapping) else {}


def get_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings in force: defaults, then Django's EVENT_SINKS, then the environment, then overrides.

    Raises :class:`ConfigurationError` naming every bad key, its value and what was expected.
    """
    given = _django_settings()
    raw = dict(given) if isinstance(given, Mapping) else given
    from_env = False
    if isinstance(raw, dict):
        if os.environ.get("EVENT_SINKS_DSN"):
            raw["DSN"] = os.environ["EVENT_SINKS_DSN"]
            from_env = "DSN" not in (overrides or {})
        raw.update(overrides or {})
    found = problems(raw)
    if found:
        raise ConfigurationError("; ".join(
            ENV_DSN + message[len("EVENT_SINKS['DSN']"):] if key == "DSN" and from_env else message
            for key, message in found))
    values = {field.name: field.metadata["check"](raw[key]) if key in raw else _default(field)
              for key, field in FIELDS.items()}
    origin = ENV_DSN if from_env else "EVENT_SINKS['DSN']"
    if values["dsn"] is None:
        values["dsn"], origin = aspects_dsn(), f"{ASPECTS_SETTING}['url']"
        if values["dsn"] is not None:
            parse_dsn(values["dsn"], values["database"], setting=origin)  # a bad port is the url's fault
    if values["dsn"] is None and values["embedded_allowed"]:
        values["dsn"], origin = f"chdb://{os.path.abspath(values['data_dir'])}", "EVENT_SINKS['DATA_DIR']"
    return Settings(**values, dsn_origin=origin)


#: How a bad DSN taken from the environment is named (it overrides EVENT_SINKS['DSN']).
ENV_DSN = "EVENT_SINKS_DSN (the environment variable, which overrides EVENT_SINKS['DSN'])"
#: Why nothing is dumped when no engine is configured (inside the LMS/CMS with no DSN).
NO_ENGINE = (
    "no ClickHouse is configured: EVENT_SINKS['DSN'] is not set, and inside the LMS/CMS the embedded engine "
    "cannot serve (it allows one process per data directory; EMBEDDED_ALLOWED is False there). Set "
    "EVENT_SINKS['DSN'] = 'http(s)://user:password@host:port/database' (or Aspects' "
    "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG); until then the sinks are off"
)
#: Aspects' (platform-plugin-aspects') setting for its ClickHouse: {"url", "username", "password", "database"}.
ASPECTS_SETTING = "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG"


def aspects_dsn() -> str | None:
    """A DSN from Aspects' ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG`` (its url and credentials), or None.

    Its ``database`` is deliberately not used: Aspects' database holds tables named like this library's
    views (``course_blocks``, ``course_overviews``), so ours stay in ``DATABASE`` (default ``event_sinks``).
    """
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - django is a dependency
        return None
    config = getattr(settings, ASPECTS_SETTING, None) if settings.configured else None
    if config is None:
        return None
    if not isinstance(config, Mapping):  # its value is not shown: it may hold the password
        raise ConfigurationError(f"{ASPECTS_SETTING} must be a dict like {{'url': 'http://host:8123', 'username': "
                                 f"..., 'password': ...}}, found a {type(config).__name__}")
    if config.get("url") is None:
        return None
    if not isinstance(config["url"], str):
        raise ConfigurationError(f"{ASPECTS_SETTING}['url'] must be 'http(s)://host:port', found a "
                                 f"{type(config['url']).__name__}: {mask_dsn(str(config['url']))!r}")
    scheme, sep, location = config["url"].rstrip("/").partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ConfigurationError(
            f"{ASPECTS_SETTING}['url'] must be 'http(s)://host:port', found {mask_dsn(config['url'])!r}")
    location = location.split("/", 1)[0]
    user = quote(str(config.get("username") or "default"), safe="")
    password = quote(str(config.get("password") or ""), safe="")
    return f"{scheme}://{user}:{password}@{location}" if password else f"{scheme}://{user}@{location}"


__all__ = [
    "ASPECTS_SETTING", "DEFAULTS", "DISPATCH_STRATEGIES", "FIELDS", "NO_ENGINE", "Settings", "aspects_dsn", "describe",
    "get_settings", "mask_dsn", "problems", "sink_options",
]
