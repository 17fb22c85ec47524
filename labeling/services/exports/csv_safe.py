"""Spreadsheet-safe CSV cells (OWASP "CSV injection"): every CSV the product writes passes its cells through here.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula by Excel,
LibreOffice or Google Sheets (`=HYPERLINK(...)`, `@SUM(...)`, `+cmd`); it is written with a single quote in front,
which spreadsheets show as text. Numbers are left alone. JSON, JSONL and manifest files keep the true value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """`value`, with a leading single quote when it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """A row for csv.writer.writerow, every cell made safe."""
    return [csv_cell(value) for value in values]


def csv_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for csv.DictWriter.writerow, every cell made safe."""
    return {key: csv_cell(value) for key, value in row.items()}
