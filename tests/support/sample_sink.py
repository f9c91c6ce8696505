"""A small sink over an in-memory source, so the dump model can be tested without Open edX."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import attrs

from event_sinks import Sink, column
from event_sinks.errors import InvalidKeyError

#: document name -> list of words; tests edit it between dumps.
SOURCE: dict[str, list[str]] = {}
#: set to an int N to make serialize raise after N rows (a crash mid-stream).
FAIL_AFTER: dict[str, int] = {}


@attrs.define
class WordRow:
    doc: str = column("LowCardinality(String)")
    position: int = column("UInt32")
    word: str = column("String")
    is_long: bool = column("Bool")
    seen_at: datetime | None = column("Nullable(DateTime64(6, 'UTC'))")


class WordsSink(Sink):
    """Words of in-memory documents, one row per word."""

    name = "test_words"
    row_type = WordRow
    key_field = "doc"
    order_by = ("position",)

    def keys(self):
        return sorted(SOURCE)

    def normalize_key(self, key):
        if not key or not key.isidentifier():
            raise InvalidKeyError(f"a document name must be an identifier, found {key!r}")
        return key

    def version(self, key):
        return hashlib.sha1("\n".join(SOURCE.get(key, [])).encode()).hexdigest()

    def serialize(self, key):
        words = SOURCE[key]
        fail_after = FAIL_AFTER.get(key)
        for i, word in enumerate(words):
            if fail_after is not None and i >= fail_after:
                raise RuntimeError(f"source of {key} broke at word {i}")
            seen = datetime(2026, 1, 1, 12, 0, i % 60, 123456, tzinfo=UTC) if i % 2 else None
            if i % 3:
                yield (key, i, word, len(word) > 5, seen)  # the tuple fast path
            else:
                yield WordRow(key, i, word, len(word) > 5, seen)  # and row instances
