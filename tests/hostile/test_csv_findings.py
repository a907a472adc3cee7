"""The CSV findings of issue 11, pinned on the streaming reader (each failed before its fix)."""

from __future__ import annotations

import pytest

from reference.workers.ingest_csv import Rejected, SimplicityReader

HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
GOOD = "CV-{n},P,D,1,1/1/2024,K\n"


def read(text: str, chunk_size: int = 65536) -> tuple[list[str], list[Rejected]]:
    """(row numbers staged, rows rejected) of `text` read in chunks."""
    data = text.encode()
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    staged: list[str] = []
    rejected: list[Rejected] = []
    for block in SimplicityReader(chunks).blocks():
        staged += [line.split("\t", 1)[0] for line in block.copy_text.splitlines()]
        rejected += block.rejected
    return staged, rejected


@pytest.mark.parametrize(
    "opened",
    ['CV-1,P,D,1,1/1/2024,"Kings\n', 'CV-1,"P,D,1,1/1/2024,K\n', 'CV-1,P,D,"$1,0\n'],
    ids=["last-column", "second-column", "amount"],
)
def test_an_unclosed_quote_rejects_its_own_row_and_every_later_row_is_read(opened: str) -> None:
    rows = "".join(GOOD.format(n=n) for n in range(2, 6))

    staged, rejected = read(HEADER + opened + rows)

    assert staged == ["3", "4", "5", "6"]
    [error] = rejected
    assert (error.row_number, error.error_code) == (2, "unclosed_quote")
    assert "row 2" in error.message
    assert "double quote" in error.message
    assert "close" in error.message
    assert len(staged) + len(rejected) == 5  # every data row of the file is accounted for


def test_an_unclosed_quote_swallowing_more_than_the_field_limit_loses_no_later_row() -> None:
    rows = "".join(GOOD.format(n=n) for n in range(7000))  # > 131072 characters

    staged, rejected = read(HEADER + 'CV-X,"P,D,1,1/1/2024,K\n' + rows, chunk_size=4096)

    assert [(r.row_number, r.error_code) for r in rejected] == [(2, "field_too_long")]
    assert "a double quote is probably never closed" in rejected[0].message
    assert "row 2" in rejected[0].message
    assert staged == [str(n) for n in range(3, 7003)]


def test_a_closed_multi_line_field_at_the_end_is_not_an_unclosed_quote() -> None:
    staged, rejected = read(HEADER + 'CV-1,P,D,1,1/1/2024,"Kings\nCounty"')

    assert (staged, rejected) == (["2"], [])


def test_a_huge_cell_without_quotes_is_not_blamed_on_a_quote() -> None:
    huge = "x" * 9_000_000

    staged, rejected = read(HEADER + f"CV-1,{huge},D,1,1/1/2024,K\n" + GOOD.format(n=2))

    assert staged == ["3"]
    [error] = rejected
    assert (error.row_number, error.error_code) == (2, "field_too_long")
    assert "quote" not in error.message
    assert "131072 characters" in error.message
    assert "shorten" in error.message


def test_a_huge_field_after_a_multi_line_field_rejects_one_row() -> None:
    text = HEADER + 'CV-1,"two\nlines",D,1,1/1/2024,"' + "x" * 140_000 + '"\n' + GOOD.format(n=2)

    staged, rejected = read(text)

    assert staged == ["3"]
    assert [(r.row_number, r.error_code) for r in rejected] == [(2, "field_too_long")]
