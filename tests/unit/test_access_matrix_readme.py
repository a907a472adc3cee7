"""The README shows the access matrix the tests enforce (harness/schema/access_matrix.py)."""

from __future__ import annotations

from pathlib import Path

from harness.schema.access_matrix import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_access_matrix() -> None:
    assert markdown_table() in README.read_text(), (
        "README.md's access matrix differs from harness/schema/access_matrix.py: paste "
        "`python -c 'from harness.schema.access_matrix import markdown_table; "
        "print(markdown_table())'`"
    )
