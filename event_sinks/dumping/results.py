"""What a dump did: one :class:`DumpResult` per key, and the :class:`DumpSummary` of a whole run."""

from __future__ import annotations

import time
import uuid

import attrs


@attrs.frozen
class DumpResult:
    """What happened to one key."""

    sink: str
    key: str
    status: str  # "dumped", "deleted", "skipped" or "failed"
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    dump_id: uuid.UUID | None = None
    source_version: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@attrs.define
class DumpSummary:
    """Totals over a run of :func:`dump`, for logs and the command's final line.

    Counts and failures are always kept; the per-key results only with ``keep_results`` (the
    library default), so a backfill of millions of keys does not hold one result per key.
    """

    keep_results: bool = True
    results: list[DumpResult] = attrs.Factory(list)
    failed: list[DumpResult] = attrs.Factory(list)
    counts: dict[str, int] = attrs.Factory(dict)
    rows: int = 0
    bytes: int = 0
    started: float = attrs.Factory(time.monotonic)
    finished: float | None = None

    def add(self, result: DumpResult) -> None:
        """Count one key's result."""
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        self.rows += result.rows
        self.bytes += result.bytes
        if result.status == "failed":
            self.failed.append(result)
        if self.keep_results:
            self.results.append(result)

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        """Keys seen by the run, whatever happened to them."""
        return sum(self.counts.values())

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def __str__(self) -> str:
        elapsed = self.elapsed
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.count('dumped')} dumped, {self.count('deleted')} deleted, {self.count('skipped')} skipped, "
            f"{len(self.failed)} failed; {self.rows} rows, {self.bytes} bytes in {elapsed:.2f}s ({rate:,.0f} rows/s)"
        )
