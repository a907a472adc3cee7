"""Stream the services' log files to the terminal, each line prefixed with its service."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

POLL_INTERVAL = 0.2  # seconds between looks at the files


class LogTail:
    """Follows files as they are written; lines appear as `[name] line`.

    A file that is replaced or truncated (a service restarted on the same log file) is read
    again from its start, so every line of the current run appears and none of an earlier one.
    """

    def __init__(self) -> None:
        self.files: dict[Path, str] = {}
        self.offsets: dict[Path, int] = {}
        self.inodes: dict[Path, int] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="log-tail", daemon=True)

    def follow(self, path: Path, label: str, *, from_end: bool = False) -> None:
        """Follow `path`; with `from_end`, skip what it already holds."""
        self.files[path] = label
        exists = path.exists()
        self.offsets[path] = path.stat().st_size if exists and from_end else 0
        self.inodes[path] = path.stat().st_ino if exists else -1

    def start(self) -> None:
        self.thread.start()

    def _drain(self) -> None:
        for path, label in list(self.files.items()):
            try:
                with path.open("rb") as file:
                    stat = path.stat()
                    if stat.st_ino != self.inodes[path] or stat.st_size < self.offsets[path]:
                        self.inodes[path], self.offsets[path] = stat.st_ino, 0
                    file.seek(self.offsets[path])
                    chunk = file.read()
            except FileNotFoundError:
                continue
            complete = chunk.rfind(b"\n") + 1  # print whole lines only
            self.offsets[path] += complete
            for line in chunk[:complete].decode(errors="replace").splitlines():
                sys.stdout.write(f"[{label}] {line}\n")
        sys.stdout.flush()

    def _run(self) -> None:
        while not self.stop_event.wait(POLL_INTERVAL):
            self._drain()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join()
        self._drain()
