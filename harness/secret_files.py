"""Files holding a secret (a password, PgBouncer's auth file, the stack's database URL and key).

Created with mode 0600 by the open itself, never chmod-ed afterwards: between a write and a
chmod the secret would be readable by every local user (under the usual umask 022).
"""

from __future__ import annotations

import os
from pathlib import Path

SECRET_MODE = 0o600  # read and write for the owner only


def write_secret(path: Path, text: str) -> Path:
    """Write `text` to a new private file at `path`, replacing any file there (whose mode the
    open would otherwise keep). O_EXCL: the name is never followed to another file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path
