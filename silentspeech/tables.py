"""Tables as text: GitHub markdown for the reports, aligned columns for the terminal.

Every report that shows a table (evaluation, export, distillation, the demo's
timings, the benches) builds it here, so that cells are formatted one way:
strings as given, floats to 3 significant digits (whole numbers from 1000
on), ``None`` as an empty cell.
"""

from __future__ import annotations

from typing import Any, Sequence


def table_cell(value: Any) -> str:
    """One cell's text: a string as given, a float to 3 significant digits, ``None`` empty."""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A GitHub markdown table (no trailing newline).

    ``align`` gives one letter per column, ``l`` (left) or ``r`` (right);
    columns it does not reach are left-aligned. Cells go through
    :func:`table_cell`; a ``|`` inside a cell is escaped.
    """
    if any(letter not in "lr" for letter in align) or len(align) > len(headers):
        raise ValueError(f"align {align!r}: one letter l or r per column, at most {len(headers)}")
    rule = ["---:" if i < len(align) and align[i] == "r" else "---" for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    lines = [line([str(h) for h in headers]), line(rule)]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"table row of {len(row)} cells under {len(headers)} headers: {list(row)}")
        lines.append(line([table_cell(value).replace("|", "\\|") for value in row]))
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table for the terminal: first column left-aligned, the rest right-aligned, a rule under the headers."""
    cells = [[str(h) for h in headers]] + [[table_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
