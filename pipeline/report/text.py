"""The report's plain-text pieces: durations for people and aligned columns."""

from __future__ import annotations

_UNITS = ((86_400.0, "d"), (3_600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


def human(seconds: float | None) -> str:
    """``1.2 s``, ``340 ms``, ``2.5 min``: three significant digits at most, in the largest unit below it."""
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0 s"
    sign = "-" if seconds < 0 else ""
    size = abs(seconds)
    for scale, unit in _UNITS:
        value = float(f"{size / scale:.3g}")  # rounded first: 999.7 ms is 1 s, not 1000 ms
        if value >= 1 or unit == "µs":
            if value >= 1000 and unit != "d":
                continue
            text = f"{value:.0f}" if 1000 <= value < 1e9 else f"{value:.3g}"
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def grid(headers: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """Aligned columns: the first left, the others right."""
    table = [list(headers), *rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(headers))]
    lines = []
    for cells in table:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        lines.append("  ".join((first, *rest)).rstrip())
    return lines
