"""Deterministic generator of large "Simplicity" CSV exports, streamed to disk.

`python -m harness.inputs.csvgen --rows 100000 --out big.csv [--invalid-every N] [--seed S]
[--kind K]`

`--kind` writes the same rows as a file real clients send by mistake (FILE_KINDS): another
separator, UTF-16/UTF-32, compressed or zipped, a header pasted mid-file. The API refuses each
with its own error code, except `repeated-header`, whose repeated row is a row error.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import io
import random
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

HEADER = ("Case Number", "Plaintiff", "Defendant", "Judgment Amount", "Filing Date", "County")
MAX_ROWS = 9_999_999  # case numbers carry seven digits of row index
COUNTIES = ("Kings", "Queens", "New York", "Bronx", "Richmond", "Nassau", "Suffolk", "Erie")
CREDITORS = (
    "Midland Funding LLC",
    "Portfolio Recovery Associates, LLC",
    "LVNV Funding LLC",
    "Cavalry SPV I, LLC",
    "Capital One Bank (USA), N.A.",
    "Discover Bank",
)
FIRST_NAMES = ("James", "Maria", "Wei", "Aisha", "John", "Olga", "Luis", "Fatima", "Sean", "Ana")
LAST_NAMES = ("Smith", "Garcia", "Chen", "Okafor", "O'Brien", "Kowalski", "Nguyen", "Rossi")

Row = list[str]


def _amount(rng: random.Random, index: int) -> str:
    cents = rng.randrange(10_000, 5_000_000)
    dollars, rest = divmod(cents, 100)
    # Rotate through every spelling the processor accepts.
    match index % 4:
        case 0:
            return f"${dollars:,}.{rest:02d}"
        case 1:
            return f"{dollars}.{rest:02d}"
        case 2:
            return str(dollars)
        case _:
            return f"$ {dollars:,}"


def _date(rng: random.Random, index: int) -> str:
    year, month, day = rng.randrange(2010, 2025), rng.randrange(1, 13), rng.randrange(1, 29)
    if index % 2:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return f"{month}/{day}/{year}"  # one-digit month and day, as spreadsheets write them


def valid_row(rng: random.Random, seed: int, index: int) -> Row:
    """A valid row; case numbers are unique per index, and disjoint for seeds 0 to 99."""
    return [
        f"CV-{2010 + index % 15}-{seed % 100:02d}{index:07d}",
        rng.choice(CREDITORS),
        f"{rng.choice(LAST_NAMES)}, {rng.choice(FIRST_NAMES)}",
        _amount(rng, index),
        _date(rng, index),
        rng.choice(COUNTIES),
    ]


def _set(column: int, value: str) -> Callable[[Row, Row], Row]:
    def spoil(row: Row, _first: Row) -> Row:
        row[column] = value
        return row

    return spoil


# The ways a generated row goes wrong, in rotation; each yields exactly one invalid row.
# The first keeps its case number, so `duplicate` always has an earlier row to repeat.
SPOILERS: tuple[tuple[str, Callable[[Row, Row], Row]], ...] = (
    ("invalid_amount", _set(3, "12.345")),
    ("missing_case_number", _set(0, "")),
    ("missing_plaintiff", _set(1, "  ")),
    ("missing_defendant", _set(2, "")),
    ("missing_amount", _set(3, "")),
    ("invalid_date", _set(4, "02/30/2024")),
    ("missing_filing_date", _set(4, "")),
    ("field_too_long", _set(1, "X" * 600)),
    ("wrong_column_count", lambda row, _first: row[:4]),
    ("duplicate_case_number", lambda row, first: [first[0], *row[1:]]),
)


def _separated(separator: str) -> Callable[[bytes], bytes]:
    def convert(content: bytes) -> bytes:
        rows = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=separator, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue().encode()

    return convert


def _zipped(member: str) -> Callable[[bytes], bytes]:
    def convert(content: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if member.startswith("xl/"):  # enough of a workbook for a sniffer: its parts' names
                archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr(member, content)
        return buffer.getvalue()

    return convert


def _repeated_header(content: bytes) -> bytes:
    lines = content.splitlines(keepends=True)
    middle = max(1, len(lines) // 2)
    return b"".join([*lines[:middle], lines[0], *lines[middle:]])


# A CSV as clients send it by mistake; the API's error code for each is in the README's table.
FILE_KINDS: dict[str, Callable[[bytes], bytes]] = {
    "csv": lambda content: content,
    "semicolon": _separated(";"),
    "tab": _separated("\t"),
    "pipe": _separated("|"),
    "utf-16": lambda content: content.decode("utf-8-sig").encode("utf-16"),
    "utf-32": lambda content: content.decode("utf-8-sig").encode("utf-32"),
    "gzip": lambda content: gzip.compress(content, mtime=0),
    "bzip2": bz2.compress,
    "zip": _zipped("judgments.csv"),
    "xlsx": _zipped("xl/worksheets/sheet1.xml"),
    "pdf": lambda content: b"%PDF-1.7\n" + content,
    "repeated-header": _repeated_header,
}


def as_file_kind(content: bytes, kind: str) -> bytes:
    """A UTF-8 CSV's bytes as the file kind `kind` (a key of FILE_KINDS)."""
    return FILE_KINDS[kind](content)


def write_simplicity_csv(path: Path, rows: int, *, seed: int = 0, invalid_every: int = 0) -> Path:
    """Write `rows` data rows after the Simplicity header; every n-th row invalid when n > 0.

    With invalid_every=n exactly rows // n rows are invalid, cycling through SPOILERS; the
    same arguments always give the same bytes.
    """
    if not 0 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between 0 and {MAX_ROWS:,} (got {rows})")
    if invalid_every < 0:
        raise ValueError(f"invalid_every must be 0 (none) or a positive n (got {invalid_every})")
    rng = random.Random(seed)  # noqa: S311 -- test data must repeat, not be secret
    first: Row = []
    spoiled = 0
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for index in range(rows):
            row = valid_row(rng, seed, index)
            if index == 0:
                first = list(row)
            if invalid_every and (index + 1) % invalid_every == 0:
                row = SPOILERS[spoiled % len(SPOILERS)][1](row, first)
                spoiled += 1
            writer.writerow(row)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: generate one file and say what it holds."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.inputs.csvgen",
        description="Write a deterministic Simplicity CSV export for load and ingest tests.",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of data rows")
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--invalid-every",
        type=int,
        default=0,
        metavar="N",
        help="make every N-th row invalid, rotating through the error kinds (default: none)",
    )
    parser.add_argument(
        "--kind",
        choices=sorted(FILE_KINDS),
        default="csv",
        help="write the rows as this kind of file (default csv; see FILE_KINDS)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.rows <= MAX_ROWS:
        parser.error(f"--rows must be between 0 and {MAX_ROWS:,} (got {args.rows})")
    if args.invalid_every < 0:
        parser.error(f"--invalid-every must be 0 (none) or a positive N (got {args.invalid_every})")
    if not args.out.parent.is_dir():
        parser.error(f"--out: folder {args.out.parent} does not exist; create it first")
    try:
        path = write_simplicity_csv(
            args.out, args.rows, seed=args.seed, invalid_every=args.invalid_every
        )
    except ValueError as error:
        parser.error(str(error))
    except OSError as error:
        parser.error(f"--out: cannot write {args.out}: {error.strerror}")
    if args.kind != "csv":
        path.write_bytes(as_file_kind(path.read_bytes(), args.kind))
    invalid = args.rows // args.invalid_every if args.invalid_every else 0
    print(f"wrote {path}: {args.rows:,} rows ({invalid:,} invalid), {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
