"""Engine DSNs: ``chdb:///path`` or ``http(s)://user:password@host:port/database``, parsed and masked.

The one parser of a DSN, so the settings check at startup and the engine connecting later give the
same answer and the same message; and the one masker, so a password never reaches a log or an error.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

import attrs

from ..core.schema import identifier
from ..errors import ConfigurationError, UnsafeIdentifierError

# user:password@ up to the last "@" (an unencoded "@" in a password must not leak its tail).
_PASSWORD = re.compile(r"(?P<head>://[^:/@]*:)(?P<password>.*)@(?=[^@]*$)")

EXPECTED = "'chdb:///path/to/data' or 'http(s)://user:password@host:port/database'"


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***``: safe for logs, errors and listings.

    Also for malformed DSNs (no ``://``, unencoded ``@ / # ?`` in the password): everything before
    the last ``@`` after the user name is treated as secret.
    """
    if not isinstance(dsn, str):
        return repr(dsn)
    if dsn.startswith("chdb:"):  # a path, which holds no password (and may hold an "@")
        return dsn
    if "://" not in dsn:
        return f"***@{dsn.rpartition('@')[2]}" if "@" in dsn else dsn
    return _PASSWORD.sub(lambda m: f"{m.group('head')}***@", dsn)


def mask_secrets(text: str, dsn: str | None) -> str:
    """``text`` with the password of ``dsn`` masked where the DSN, or its ``user:password@``, appears.

    Only there: a password is never replaced as a bare substring, so a short or common one (``o``,
    ``default``, ``clickhouse``) cannot garble a message ("Err***r", "***_connect"), and text that
    merely holds an ``@`` (a native stack frame, "? @ 0x...") is left alone. The userinfo counts as
    written in the DSN, URL-decoded and URL-encoded, so a driver quoting the URL either way is
    covered.
    """
    if not isinstance(text, str) or not isinstance(dsn, str) or not dsn:
        return text
    masked = text.replace(dsn, mask_dsn(dsn)) if dsn in text else text
    user, password = _credentials(dsn)
    if not password:
        return masked
    for name in _spellings(user):
        for secret in _spellings(password):
            masked = masked.replace(f"{name}:{secret}@", f"{name}:***@")
    return masked


def _credentials(dsn: str) -> tuple[str, str]:
    """The user and password of ``dsn`` as written (split at the last ``@``, like :func:`parse_dsn`)."""
    head, sep, rest = dsn.partition("://")
    if not sep:  # malformed ("http:/user:pw@host"): after the scheme
        rest = head.partition(":")[2].lstrip("/")
    userinfo, at, _ = rest.rpartition("@")
    if not at:
        return "", ""
    user, _, password = userinfo.partition(":")
    return user, password


def _spellings(value: str) -> set[str]:
    """``value`` as written, URL-decoded and URL-encoded."""
    decoded = unquote(value)
    return {value, decoded, quote(decoded, safe="")}


@attrs.frozen
class Target:
    """Where the engine is: parsed from the DSN, with the database resolved."""

    dsn: str = attrs.field(repr=False)
    embedded: bool
    database: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str = attrs.field(default="", repr=False)
    secure: bool = False
    #: the setting that named this engine (what an error about reaching it points the operator to)
    origin: str = "EVENT_SINKS['DSN']"

    @property
    def masked(self) -> str:
        """The DSN without its password."""
        return mask_dsn(self.dsn)

    def scrub(self, text: str) -> str:
        """``text`` with this DSN's password masked where the DSN or its userinfo shows (:func:`mask_secrets`)."""
        return mask_secrets(text, self.dsn)


def parse_dsn(dsn: str, default_database: str, *, setting: str = "EVENT_SINKS['DSN']") -> Target:
    """Split a DSN into an engine target; an http DSN's ``/database`` path wins over the setting.

    The credentials are split off at the *last* ``@`` before the URL is parsed, so a password with
    unencoded ``/ # ? @`` can neither leak into the host, port or database nor show up in an error.
    Raises :class:`ConfigurationError` naming ``setting``, the masked DSN and what was expected.
    """

    def problem(why: str) -> ConfigurationError:
        return ConfigurationError(f"{setting} must look like {EXPECTED}: {why}, found {mask_dsn(dsn)!r}")

    if not isinstance(dsn, str):
        raise problem("not a string")
    if dsn.startswith("chdb:"):
        path = dsn[len("chdb:") :]
        path = path[2:] if path.startswith("//") else path
        if not path or path == "memory":
            path = ":memory:"
        return Target(dsn, True, default_database, path, origin=setting)
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise problem("the scheme must be chdb, http or https")
    userinfo, at, location = rest.rpartition("@")
    if not at:
        userinfo, location = "", rest
    try:
        parts = urlsplit(f"{scheme}://{location}")
        port = parts.port
    except ValueError as exc:
        raise problem(f"bad host or port ({exc})") from None
    if not parts.hostname:
        raise problem("no host")
    user, _, password = userinfo.partition(":")
    database = unquote(parts.path.strip("/")) or default_database
    try:
        identifier(database, "the DSN's database")
    except UnsafeIdentifierError:
        raise problem(f"its database {database!r} (the /path) is not a plain identifier (letters, digits, "
                      "underscore; not starting with a digit; at most 128 characters)") from None
    return Target(
        dsn, False, database, host=parts.hostname, port=port or (8443 if scheme == "https" else 8123),
        username=unquote(user) or "default", password=unquote(password), secure=scheme == "https", origin=setting,
    )
