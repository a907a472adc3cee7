"""Run on purpose to fail: pytest's report of a failing test must not show the password."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url


def test_a_failing_comparison_of_the_url(database_url: str, pg_server) -> None:  # type: ignore[no-untyped-def]
    Path(os.environ["PASSWORD_OUT"]).write_text(make_url(database_url).password or "")
    print("captured output:", database_url, pg_server)
    assert database_url == "postgresql://somebody-else@elsewhere/db"
