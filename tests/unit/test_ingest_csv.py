"""The streaming Simplicity CSV reader: decoding, line splitting, rows, rejections, COPY text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.stack.demo import DEMO_CSV
from reference.simplicity import HeaderError
from reference.workers.ingest_csv import (
    FileStructureError,
    Rejected,
    SimplicityReader,
    iter_lines,
    random_uuids,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"
HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
UUID4_HEX = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")

Row = list[str | None]


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def decode_copy_text(text: str) -> list[Row]:
    """COPY text format back to fields (empty field = NULL), as Postgres reads it.

    The last field of each row, a fresh random judgment id, is checked and dropped.
    """
    rows: list[Row] = []
    for line in text.split("\n")[:-1]:
        *fields, judgment_id = line.split("\t")
        assert UUID4_HEX.fullmatch(judgment_id), line
        rows.append([_ESCAPE.sub(lambda m: _UNESCAPED[m[1]], f) if f else None for f in fields])
    return rows


def read(
    data: bytes, chunk_size: int = 1 << 20, block_rows: int = 20_000
) -> tuple[SimplicityReader, list[Row], list[Rejected]]:
    reader = SimplicityReader(chunked(data, chunk_size), block_rows=block_rows)
    rows: list[Row] = []
    rejected: list[Rejected] = []
    for block in reader.blocks():
        decoded = decode_copy_text(block.copy_text)
        assert len(decoded) == block.staged
        rows += decoded
        rejected += block.rejected
    return reader, rows, rejected


def test_iter_lines_keeps_every_kind_of_line_end_and_only_those() -> None:
    text = "a,b\r\nc\rd\ne\u2028f\x0cg\n\nlast"
    assert list(iter_lines([text.encode()])) == [
        "a,b\r\n",
        "c\r",
        "d\n",
        "e\u2028f\x0cg\n",
        "\n",
        "last",
    ]


def test_iter_lines_drops_a_bom_and_joins_characters_split_across_chunks() -> None:
    text = "\ufeffCase é,ü€𝄞\r\nnext\r\n"
    data = text.encode()
    for size in range(1, len(data) + 1):
        assert "".join(iter_lines(chunked(data, size))) == text.removeprefix("\ufeff"), size


def test_a_crlf_split_between_chunks_stays_one_line_end() -> None:
    assert list(iter_lines([b"a\r", b"\nb\r", b"\r\n"])) == ["a\r\n", "b\r", "\r\n"]


def test_the_simplicity_header_maps_and_rows_are_numbered_like_a_spreadsheet() -> None:
    data = (HEADER + "CV-1,P,D,$1.00,1/2/2024,Kings\n\nCV-2,P2,D2,2,2024-01-02,Erie\n").encode()
    reader, rows, rejected = read(data)
    assert reader.copy_columns() == (
        "case_number",
        "plaintiff",
        "defendant",
        "judgment_amount",
        "filing_date",
        "county",
    )
    assert rows == [
        ["2", "CV-1", "P", "D", "$1.00", "1/2/2024", "Kings"],
        ["4", "CV-2", "P2", "D2", "2", "2024-01-02", "Erie"],
    ]
    assert rejected == []


def test_blank_lines_whitespace_lines_and_empty_field_rows_are_skipped_but_counted() -> None:
    data = (HEADER + "\n   \n,,,,,\n , , ,\t, , \nCV-9,P,D,1,1/1/2024,K\n").encode()
    _, rows, rejected = read(data)
    assert [row[0] for row in rows] == ["6"]
    assert rejected == []


def test_blank_lines_before_the_header_move_the_header_down() -> None:
    reader, rows, _ = read(("\n\n" + HEADER + "CV-1,P,D,1,1/1/2024,K\n").encode())
    assert reader.header().positions["case_number"] == 0
    assert rows[0][0] == "4"


def test_values_are_trimmed_and_empty_ones_become_null() -> None:
    data = (HEADER + '  CV-1  ," P ",  ,"  ",\t1/1/2024\t,\n').encode()
    _, rows, _ = read(data)
    assert rows == [["2", "CV-1", "P", None, None, "1/1/2024", None]]


def test_aliases_reordered_columns_an_unknown_column_and_no_county() -> None:
    data = b"AMOUNT,Notes,debtor name,DATE FILED,case_no,Creditor\n"
    data += b"$5.00,ignored,Dee,2024-03-01,CV-7,Cred\n"
    reader, rows, _ = read(data)
    assert reader.copy_columns() == (
        "case_number",
        "plaintiff",
        "defendant",
        "judgment_amount",
        "filing_date",
    )
    assert reader.header().ignored == ("Notes",)
    assert rows == [["2", "CV-7", "Cred", "Dee", "$5.00", "2024-03-01"]]


def test_quoting_commas_escaped_quotes_and_a_multi_line_field() -> None:
    data = (
        HEADER + 'CV-1,"Smith, John","Say ""hi""","$1,234.56",1/1/2024,"Two\r\nlines"\r\n'
        "CV-2,P,D,1,1/1/2024,K\r\n"
    ).encode()
    _, rows, _ = read(data)
    assert rows == [
        ["2", "CV-1", "Smith, John", 'Say "hi"', "$1,234.56", "1/1/2024", "Two\r\nlines"],
        ["3", "CV-2", "P", "D", "1", "1/1/2024", "K"],
    ]


def test_tabs_backslashes_and_newlines_in_values_survive_the_copy_text() -> None:
    data = (HEADER + 'CV-1,"a\tb","c\\\\d","e\nf",\\N,K\n').encode()
    _, rows, _ = read(data)
    assert rows == [["2", "CV-1", "a\tb", "c\\\\d", "e\nf", "\\N", "K"]]


def test_wrong_column_counts_are_rejected_with_their_row_and_raw_text() -> None:
    data = (HEADER + "CV-1,P,D,1\nCV-2,P,D,1,1/1/2024,K\nCV-3,P,D,1,1/1/2024,K,extra\n").encode()
    _, rows, rejected = read(data)
    assert [row[0] for row in rows] == ["3"]
    assert [(r.row_number, r.error_code) for r in rejected] == [
        (2, "wrong_column_count"),
        (4, "wrong_column_count"),
    ]
    assert rejected[0].message.startswith("The row has 4 fields but the header has 6")
    assert rejected[0].raw_row == "CV-1,P,D,1"
    assert rejected[1].raw_row == "CV-3,P,D,1,1/1/2024,K,extra"


def test_a_nul_or_bytes_that_are_not_utf8_reject_only_their_row() -> None:
    data = HEADER.encode() + b"CV-1,P\x00x,D,1,1/1/2024,K\nCV-2,P,D\xff\xfe,1,1/1/2024,K\n"
    data += b"CV-3,P,D,1,1/1/2024,K\n"
    _, rows, rejected = read(data)
    assert [row[0] for row in rows] == ["4"]
    assert [(r.row_number, r.error_code) for r in rejected] == [
        (2, "invalid_text"),
        (3, "invalid_text"),
    ]
    assert "NUL character or bytes that are not UTF-8" in rejected[0].message
    assert rejected[0].raw_row == "CV-1,P\ufffdx,D,1,1/1/2024,K"


def test_an_unclosed_quote_swallowing_a_huge_field_rejects_that_row_and_reading_goes_on() -> None:
    data = (HEADER + 'CV-1,"' + "x" * 200_000 + "\nCV-2,P,D,1,1/1/2024,K\n").encode()
    _, rows, rejected = read(data, chunk_size=4096)
    assert [(r.row_number, r.error_code) for r in rejected] == [(2, "field_too_long")]
    assert "field larger than field limit" in rejected[0].message
    assert "never closed" in rejected[0].message
    assert rows == [["3", "CV-2", "P", "D", "1", "1/1/2024", "K"]]


def test_chunk_boundaries_anywhere_give_the_same_rows() -> None:
    # Multi-byte characters, a quoted field with a comma, quote and newline, and CRLF:
    # every split point lands somewhere awkward at least once.
    text = (
        "\ufeff" + HEADER.replace("\n", "\r\n") + 'CV-1,"Müller, ""Jürgen""\r\nGmbH",Ñandú €,'
        '"$1,000",1/2/2024,Köln 𝄞\r\n\r\nCV-2,P,D,2,2024-02-29,K\r\n'
    )
    data = text.encode()
    _, expected, _ = read(data)
    assert expected == [
        ["2", "CV-1", 'Müller, "Jürgen"\r\nGmbH', "Ñandú €", "$1,000", "1/2/2024", "Köln 𝄞"],
        ["4", "CV-2", "P", "D", "2", "2024-02-29", "K"],
    ]
    for size in range(1, len(data) + 1):
        assert read(data, chunk_size=size)[1] == expected, f"chunk size {size}"


def test_a_chunk_ending_inside_a_multi_byte_character() -> None:
    data = (HEADER + "CV-1,Zoë,D,1,1/1/2024,K\n").encode()
    split = data.index("ë".encode()) + 1  # between the two bytes of ë
    reader = SimplicityReader([data[:split], data[split:]])
    [block] = list(reader.blocks())
    assert decode_copy_text(block.copy_text) == [["2", "CV-1", "Zoë", "D", "1", "1/1/2024", "K"]]


def test_a_chunk_ending_inside_a_quoted_field() -> None:
    data = (HEADER + 'CV-1,"Smith, John",D,"$1,234.56",1/1/2024,K\n').encode()
    split = data.index(b"Smith, ") + len(b"Smith, ")
    reader = SimplicityReader([data[:split], data[split:]])
    [block] = list(reader.blocks())
    assert decode_copy_text(block.copy_text)[0][2] == "Smith, John"


def test_rows_come_in_blocks_of_the_requested_size() -> None:
    data = (HEADER + "".join(f"CV-{n},P,D,1,1/1/2024,K\n" for n in range(25))).encode()
    reader = SimplicityReader([data], block_rows=10)
    assert [block.staged for block in reader.blocks()] == [10, 10, 5]
    assert reader.row_number == 26


def test_each_staged_row_gets_its_own_random_version_4_uuid() -> None:
    ids = random_uuids(10_000)
    assert len(ids) == 32 * 10_000
    chunks = {ids[start : start + 32] for start in range(0, len(ids), 32)}
    assert len(chunks) == 10_000
    assert all(UUID4_HEX.fullmatch(chunk) for chunk in chunks)
    data = (HEADER + "".join(f"CV-{n},P,D,1,1/1/2024,K\n" for n in range(3))).encode()
    [block] = SimplicityReader([data]).blocks()
    row_ids = [line.rsplit("\t", 1)[1] for line in block.copy_text.splitlines()]
    assert len(set(row_ids)) == 3


def test_a_header_only_file_has_no_blocks() -> None:
    reader = SimplicityReader([HEADER.encode()])
    assert list(reader.blocks()) == []


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n"])
def test_a_file_without_a_header_row_is_a_file_structure_error(data: bytes) -> None:
    with pytest.raises(FileStructureError, match="no header row"):
        SimplicityReader([data]).header()


def test_a_header_without_required_columns_is_a_header_error() -> None:
    with pytest.raises(HeaderError, match="missing required column"):
        SimplicityReader([b"Case Number,Plaintiff,County\nCV-1,P,K\n"]).header()


def test_the_fixture_files_read_as_their_readme_says() -> None:
    _, clean, rejected = read((FIXTURES / "simplicity_clean.csv").read_bytes())
    assert (len(clean), rejected) == (10, [])
    _, rows, rejected = read((FIXTURES / "simplicity_aliases_bom.csv").read_bytes(), 7)
    assert [row[0] for row in rows] == ["2", "3", "4", "5", "6"]
    assert rows[0] == [
        *("2", "CV-2023-000301", "Discover Bank", "Garcia, Maria"),
        *("$2,500.00", "2023-06-01", "Queens"),
    ]
    assert rows[3][2:4] == ["Cavalry SPV I, LLC", "Nguyễn Văn An"]
    _, rows, rejected = read(DEMO_CSV.read_bytes())
    assert [(r.row_number, r.error_code) for r in rejected] == [
        (14, "wrong_column_count"),
        (15, "invalid_text"),
    ]
    assert len(rows) == 14
