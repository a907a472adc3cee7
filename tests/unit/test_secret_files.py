"""Secret files (passwords, the PgBouncer auth file, the stack's URL and key) are private from
the moment they exist: created with mode 0600, never chmod-ed to it afterwards."""

from __future__ import annotations

import ast
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.secret_files import write_secret

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reference", "harness", "smoke", "loadtests")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask (022, the usual default), and no chmod: the mode creation gives."""
    previous = os.umask(0o022)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "chmod", lambda *_args, **_kwargs: None)
            patch.setattr(Path, "chmod", lambda *_args, **_kwargs: None)
            yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_a_secret_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api-key"
    write_secret(path, "k3y")
    assert _mode(path) == 0o600, oct(_mode(path))
    assert path.read_text() == "k3y"


@pytest.mark.usefixtures("open_umask")
def test_an_existing_readable_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "database-url"
    path.write_text("old")
    assert _mode(path) == 0o644
    write_secret(path, "postgresql://u:pw@h/db")
    assert _mode(path) == 0o600, oct(_mode(path))
    assert path.read_text() == "postgresql://u:pw@h/db"


def test_no_file_is_made_private_after_the_fact() -> None:
    """`chmod(0o600)` after a write leaves a window where the secret is readable."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", getattr(node.func, "id", "")) == "chmod"
                    and any(isinstance(a, ast.Constant) and a.value == 0o600 for a in node.args)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"create the file with mode 0600 (harness.secret_files): {found}"
