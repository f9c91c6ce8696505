"""The exceptions the library raises, one base class so callers can catch them all.

Every message says what was expected and what was found: these errors reach operators through
management commands and logs, usually far from the code that raised them.
"""

from typing import Any


class EventSinksError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(EventSinksError):
    """A setting is missing or malformed (the message names the setting)."""


class SinkDefinitionError(EventSinksError, TypeError):
    """A Sink subclass is declared wrongly (caught at class creation or registration)."""


class UnknownSinkError(EventSinksError, LookupError):
    """A sink name that no installed package registers."""


class InvalidKeyError(EventSinksError, ValueError):
    """A key (e.g. a course key) that the sink cannot parse."""


class NotHandledKeyError(InvalidKeyError):
    """A well-formed key the sink deliberately leaves alone (a content library for the course sinks).

    Receivers ignore such keys with a debug line; asked for explicitly (``dump_sink``), it is an error.
    """


class UnsafeIdentifierError(EventSinksError, ValueError):
    """A table, database, column or cluster name that is not a plain identifier."""


class EngineError(EventSinksError):
    """ClickHouse refused or failed a statement; ``code`` is ClickHouse's error code when it gave one."""

    def __init__(self, message: str = "", *, code: int | None = None):
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable with its code (Celery results, multiprocessing)
        return (_rebuild_engine_error, (type(self), str(self), self.code))


class EngineUnavailableError(EngineError):
    """ClickHouse could not be reached (server down, embedded data directory locked...)."""


class DumpError(EventSinksError):
    """A dump of one key failed; the previous complete dump stays visible."""


def _rebuild_engine_error(cls: type[EngineError], message: str, code: int | None) -> EngineError:
    return cls(message, code=code)
