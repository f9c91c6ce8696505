"""OLX attribute values as Open edX reads them: JSON-or-text, booleans, dates, and block ids."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

# opaque_keys' Locator.ALLOWED_ID_CHARS: what a block type or block id may contain.
ID_RE = re.compile(r"[\w\-~.:]+", re.UNICODE)


# BlockUsageLocator.clean(): characters replaced by "_", then runs of "_" collapsed.
_CLEAN_RE = re.compile(r"[^\w.%-]", re.UNICODE)


_UNDERSCORES_RE = re.compile(r"_+")


UNSET = object()


def json_or_raw(raw: str) -> Any:
    """Open edX's ``deserialize_field``: JSON-decode an attribute value when it is JSON, else keep it.

    JSON nested deeper than Python's recursion limit is a ValueError (in Open edX the RecursionError
    makes the block fail to load).
    """
    first = raw[:1]
    if first == '"' or first in "-0123456789[{" or raw in ("null", "true", "false"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
        except RecursionError:
            raise ValueError("JSON nested too deeply to decode") from None
    return raw


def string_value(value: object) -> str | None:
    """A string field's value from ``policy.json`` (JSON already decoded): text, or None."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def xml_string(raw: str) -> str | None:
    """A string field's value from an XML attribute."""
    value = json_or_raw(raw)
    if value is None or isinstance(value, str):
        return value
    return raw  # a number or list where a string was expected: Open edX keeps the raw text


def bool_value(value: object) -> bool:
    """xblock's ``Boolean.from_json``: strings are true only when "true" (any case)."""
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def xml_bool(raw: str) -> bool:
    """A boolean field's value from an XML attribute."""
    return bool_value(json_or_raw(raw))


@lru_cache(maxsize=4096)
def _parse_date_text(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    value: datetime | None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
        for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%B %d, %Y", "%b %d, %Y", "%Y/%m/%d", "%m/%d/%Y"):
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if value is None:
            raise ValueError(f"unreadable date {text!r}") from None
    assert value is not None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # within Python's years 1-9999 in its own zone, not in UTC
        raise ValueError(f"date {text!r} is out of range once in UTC") from None


def date_value(value: object) -> datetime | None:
    """Open edX's ``Date.from_json``: ISO text (naive means UTC), or milliseconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"unreadable date {value!r}")
    if isinstance(value, (int, float)):
        seconds = value / 1000
        if not math.isfinite(seconds):
            raise ValueError(f"unreadable date {value!r}")
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"date {value!r} (milliseconds since 1970) is out of range") from None
    if isinstance(value, str):
        return _parse_date_text(value)
    raise ValueError(f"unreadable date {value!r}")


def xml_date(raw: str) -> datetime | None:
    """A date field's value from an XML attribute."""
    return date_value(json_or_raw(raw))


def clean_id(value: str) -> str:
    """``BlockUsageLocator.clean``: make a display name usable as a block id, as Open edX does."""
    return _UNDERSCORES_RE.sub("_", _CLEAN_RE.sub("_", value))


def int_value(value: object) -> int | None:
    """xblock's ``Integer.from_json``: None, or ``int()`` of the value (text or number)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    return int(value)  # type: ignore[call-overload]


def xml_int(raw: str) -> int | None:
    """An integer field's value from an XML attribute."""
    return int_value(json_or_raw(raw))


def relative_time(value: object) -> float:
    """edx-platform's ``RelativeTime.from_json`` (video ``start_time``/``end_time``), in seconds.

    ``"HH:MM:SS"`` text (seconds may have a fraction) or a number of seconds; empty or None is 0.
    """
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) != 3:
            raise ValueError(f"not a time 'HH:MM:SS': {value!r}")
        hours, minutes, secs = int(parts[0]), int(parts[1]), float(parts[2])
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(f"not a time: {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a time: {value!r}")
    return seconds


def xml_relative_time(raw: str) -> float:
    """A video time from an XML attribute."""
    return relative_time(json_or_raw(raw))
