"""Plain-text tables for the command line (reconcile, the load-test verdict, the benchmark)."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, sep: str = "  ",
               rule: bool = False) -> list[str]:
    """Left-aligned columns as wide as their widest cell; with `rule`, a line under the
    header (for tables pasted into Markdown-like reports)."""
    table = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [sep.join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
             for row in table]
    if rule:  # "-+-" under " | ", "--" under "  "
        lines.insert(1, sep.replace(" ", "-").replace("|", "+").join("-" * w for w in widths))
    return lines
