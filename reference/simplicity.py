"""The "Simplicity" CSV export: its columns, the header aliases we accept, header mapping.

Shared by the API (to reject a file whose header lacks required columns) and the Ingest
Processor (to find each column), so both read a header the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Canonical column -> the header spellings seen in exports, normalised (see normalize_header).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "case_number": ("case number", "case no", "case #", "case", "index number", "index no"),
    "plaintiff": ("plaintiff", "plaintiff name", "creditor", "creditor name"),
    "defendant": ("defendant", "defendant name", "debtor", "debtor name"),
    "judgment_amount": ("judgment amount", "amount", "judgment amt", "amount awarded"),
    "filing_date": ("filing date", "date filed", "judgment date", "filed"),
    "county": ("county", "county name", "venue"),
}
REQUIRED_COLUMNS = ("case_number", "plaintiff", "defendant", "judgment_amount", "filing_date")
DISPLAY_NAMES = {
    "case_number": "Case Number",
    "plaintiff": "Plaintiff",
    "defendant": "Defendant",
    "judgment_amount": "Judgment Amount",
    "filing_date": "Filing Date",
    "county": "County",
}
_SEPARATORS = re.compile(r"[\s_\-.:]+")
_ALIAS_TO_COLUMN = {alias: column for column, names in COLUMN_ALIASES.items() for alias in names}


class HeaderError(ValueError):
    """The header row lacks required columns or names one column twice.

    `code` is the API's error code: missing_columns when anything is missing (the bigger
    problem), else duplicate_columns.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def normalize_header(name: str) -> str:
    """Lower-case, BOM and quotes dropped, runs of spaces/underscores/dots/dashes as one space."""
    cleaned = name.replace("\ufeff", "").strip().strip('"').lower()
    return _SEPARATORS.sub(" ", cleaned).strip()


@dataclass(frozen=True)
class HeaderMapping:
    """Where each known column sits in a row; other columns are ignored."""

    positions: dict[str, int]
    ignored: tuple[str, ...]


def map_header(fields: Sequence[str]) -> HeaderMapping:
    """Map a header row to column positions, or raise HeaderError saying what is missing."""
    positions: dict[str, int] = {}
    ignored: list[str] = []
    duplicated: list[str] = []
    for index, field in enumerate(fields):
        column = _ALIAS_TO_COLUMN.get(normalize_header(field))
        if column is None:
            ignored.append(field)
        elif column in positions:
            duplicated.append(DISPLAY_NAMES[column])
        else:
            positions[column] = index
    missing = [DISPLAY_NAMES[column] for column in REQUIRED_COLUMNS if column not in positions]
    problems = []
    if missing:
        problems.append(
            f"missing required column(s): {', '.join(missing)}; the header must name "
            f"{', '.join(DISPLAY_NAMES[c] for c in REQUIRED_COLUMNS)} (County is optional)"
        )
    if duplicated:
        problems.append(f"column(s) named twice: {', '.join(duplicated)}")
    if problems:
        raise HeaderError(
            "; ".join(problems), "missing_columns" if missing else "duplicate_columns"
        )
    return HeaderMapping(positions, tuple(ignored))
