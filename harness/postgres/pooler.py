"""PgBouncer in transaction mode in front of a server: production's shape (Supabase on 6543).

Each transaction may run on another server connection, session state does not follow the
client, and prepared statements are not kept: what works here works behind Supabase's pooler.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from harness.network import free_port
from harness.postgres.embedded import ensure_server_user, let_others_traverse, start_embedded
from harness.postgres.server import PostgresServer, PostgresSourceError
from harness.secret_files import write_secret
from harness.waiting import WaitTimeoutError, wait_until

PGBOUNCER = os.environ.get("DRAGONFLY_PGBOUNCER", "") or "/usr/sbin/pgbouncer"
# Server connections per (database, user) pair: small, so clients share them as in production.
POOL_SIZE = 4
START_TIMEOUT = 30.0  # seconds PgBouncer gets to accept connections
STOP_TIMEOUT = 10.0  # seconds it gets to exit after SIGTERM
PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it


def _pgbouncer_binary() -> str:
    found = shutil.which(PGBOUNCER) or shutil.which("pgbouncer")
    if found is None:
        raise PostgresSourceError(
            f"pooler: PgBouncer not found ({PGBOUNCER}); install it (`apt-get install pgbouncer`) "
            "or point DRAGONFLY_PGBOUNCER at its binary"
        )
    return found


def _quoted(value: str) -> str:
    """A value in PgBouncer's auth file: double-quoted, a double quote doubled."""
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """One PgBouncer process in front of `direct` (a libpq connection string as superuser).

    Any role the server accepts logs in: PgBouncer looks the role's SCRAM secret up on the
    server (`auth_query` as the superuser of `direct`) and passes the authentication through.
    """

    def __init__(self, direct: str, pool_size: int = POOL_SIZE) -> None:
        params = {k: str(v) for k, v in conninfo_to_dict(direct).items() if v is not None}
        self.server_host = params.get("host", "127.0.0.1")
        self.server_port = params.get("port", "5432")
        self.auth_user = params.get("user", "postgres")
        self.auth_password = params.get("password", "")
        self.pool_size = pool_size
        self.user: pwd.struct_passwd | None = ensure_server_user() if os.geteuid() == 0 else None
        self.workdir = Path(tempfile.mkdtemp(prefix="dragonfly-pgbouncer-"))
        self.log_file = self.workdir / "pgbouncer.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def _write_private(self, name: str, text: str) -> Path:
        """A file only PgBouncer's user may read (mode 0600, created so: never world-readable)."""
        path = write_secret(self.workdir / name, text)
        if self.user:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return path

    def _configure(self, port: int) -> Path:
        for name in ("pgbouncer.ini", "users.txt"):
            (self.workdir / name).unlink(missing_ok=True)
        auth_file = self._write_private(
            "users.txt", f"{_quoted(self.auth_user)} {_quoted(self.auth_password)}\n"
        )
        server = f"host={self.server_host} port={self.server_port} auth_user={self.auth_user}"
        config = "\n".join(
            [
                "[databases]",
                f"* = {server}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "pool_mode = transaction",
                f"default_pool_size = {self.pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 1000",
                "max_db_connections = 0",
                "auth_type = scram-sha-256",
                f"auth_file = {auth_file}",
                "auth_query = SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename=$1",
                f"admin_users = {self.auth_user}",
                f"stats_users = {self.auth_user}",
                # Production's pooler runs no reset query between transaction-mode clients.
                "server_reset_query_always = 0",
                "server_check_delay = 0",
                "ignore_startup_parameters =",
                f"logfile = {self.log_file}",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
        return self._write_private("pgbouncer.ini", config)

    def _log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""

    def conninfo(self, dbname: str = "postgres") -> str:
        return make_conninfo(
            "",
            host="127.0.0.1",
            port=str(self.port),
            user=self.auth_user,
            password=self.auth_password,
            dbname=dbname,
        )

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise PostgresSourceError(
                f"pooler: PgBouncer exited with status {self.process.returncode}:\n"
                f"{self._log_tail()}".rstrip()
            )
        try:
            with psycopg.connect(self.conninfo(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def start(self) -> None:
        """Start PgBouncer on a free 127.0.0.1 port and wait until it serves a query."""
        binary = _pgbouncer_binary()
        if self.user:
            os.chown(self.workdir, self.user.pw_uid, self.user.pw_gid)
            let_others_traverse(self.workdir.parent)
        self.workdir.chmod(0o700)
        for _attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            config = self._configure(self.port)
            self.process = subprocess.Popen(
                [binary, str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.workdir,
                user=self.user.pw_uid if self.user else None,
                group=self.user.pw_gid if self.user else None,
                extra_groups=[] if self.user else None,
                start_new_session=True,
            )
            try:
                wait_until("PgBouncer to answer", self._answers, START_TIMEOUT)
                return
            except WaitTimeoutError:
                break
            except PostgresSourceError:
                if "Address already in use" not in self._log_tail():
                    raise
        self.stop()
        raise PostgresSourceError(f"pooler: PgBouncer did not start:\n{self._log_tail()}".rstrip())

    def stop(self) -> None:
        """SIGTERM (PgBouncer's immediate shutdown), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def behind_pooler(server: PostgresServer, pool_size: int = POOL_SIZE) -> PostgresServer:
    """`server` reached through a new PgBouncer (transaction mode); stopping it stops both."""
    pooler = PgBouncer(server.conninfo, pool_size)
    try:
        pooler.start()
    except BaseException:
        pooler.destroy()
        raise

    def stop() -> None:
        try:
            pooler.destroy()
        finally:
            server.stop()

    return PostgresServer(
        source="pooler",
        conninfo=pooler.conninfo(server.dbname),
        description=f"PgBouncer (transaction mode, pool size {pool_size}) on "
        f"127.0.0.1:{pooler.port} in front of {server.description}",
        _stop=stop,
        _process=server._process,
        container_id=server.container_id,
        direct_conninfo=server.conninfo,
        pool_size=pool_size,
    )


def start_pooled_embedded(data_root: Path | None = None) -> PostgresServer:
    """An embedded server behind PgBouncer in transaction mode."""
    server = start_embedded(data_root)
    try:
        return behind_pooler(server)
    except BaseException:
        server.stop()
        raise


@contextmanager
def every_server_connection(
    server: PostgresServer, connect: Callable[[], psycopg.Connection[Any]]
) -> Iterator[list[psycopg.Connection[Any]]]:
    """`server.pool_size` clients from `connect` (pooled, one database and user), each inside an
    open transaction: together they hold every pooled server connection of that pair, one each.

    E.g. after a run, show that no server connection was left with a session setting:
        with every_server_connection(pg_server, db_connect) as clients:
            for conn in clients:
                assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
    """
    if not server.pool_size:
        raise PostgresSourceError(f"{server.source}: not behind the pooler source (no pool_size)")
    with ExitStack() as stack:
        clients = []
        for _ in range(server.pool_size):
            conn = stack.enter_context(connect())
            stack.enter_context(conn.transaction())
            clients.append(conn)
        pids = {conn.execute("SELECT pg_backend_pid()").fetchone() for conn in clients}
        if len(pids) != server.pool_size:
            raise PostgresSourceError(
                f"pooler: {server.pool_size} clients in transactions share {len(pids)} server "
                "connections; the pool is larger than pool_size says"
            )
        yield clients
