"""Plain-text tables for command output (no dependency for something this small)."""

from __future__ import annotations

from collections.abc import Sequence


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text.replace("\n", "\\n")


def format_table(names: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Columns padded to their widest cell, with a header rule and a row count."""
    cells = [[_cell(v) for v in row] for row in rows]
    width = max([len(names)] + [len(row) for row in cells])
    names = [*names, *(f"column{i + 1}" for i in range(len(names), width))]  # rows wider than the header
    cells = [row + [""] * (width - len(row)) for row in cells]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
