"""Stream the services' log files to the terminal, each line prefixed with its service."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

POLL_INTERVAL = 0.2  # seconds between looks at the files


class LogTail:
    """Follows files from their start; lines appear as `[name] line`."""

    def __init__(self) -> None:
        self.files: dict[Path, str] = {}
        self.offsets: dict[Path, int] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="log-tail", daemon=True)

    def follow(self, path: Path, label: str) -> None:
        self.files[path] = label
        self.offsets.setdefault(path, 0)

    def start(self) -> None:
        self.thread.start()

    def _drain(self) -> None:
        for path, label in list(self.files.items()):
            if not path.exists():
                continue
            with path.open("rb") as file:
                file.seek(self.offsets[path])
                chunk = file.read()
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
