"""The spec's files as the loader reads them, and their digest, without parsing them.

Which files a spec location holds (``collect``), each read safely (``read``: only a regular
file is opened, never blocking, at most ``MAX_FILE_BYTES``), and the digest of their names
and bytes (``digest``): what ``loading`` starts from, and all that ``permissions`` and a
``reconcile --once`` whose inputs are those of its last no-op pass need (``noop_memo``): that
pass reads the spec's bytes and compares their digest, and never imports the models (nor
pydantic) to parse what it already knows is the same valid spec.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from reconciler.spec.text import file_name

MAX_FILE_BYTES = 16 * 1024**2
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))

Problem = tuple[str, str, str]  # (file, key path, message), all safe to print


def add_to_digest(h: "hashlib._Hash", rel: str, raw: bytes) -> None:
    """One file (its name relative to the location, its bytes) into the spec's digest."""
    h.update(rel.encode() + b"\0" + str(len(raw)).encode() + b"\0" + raw)


def digest(location: str | Path) -> str | None:
    """The digest ``loading.load`` gives the spec at ``location`` (``LoadedSpec.digest``),
    read the same way; None when the loader would report a problem reading it (a file it
    cannot read, a file name it refuses, no file at all): the loader then says what."""
    found, problems = collect(location)
    if problems or not found:
        return None
    h = hashlib.sha256()
    for path, rel in found:
        if not rel.isprintable():
            return None
        raw = read(path, problems)
        if raw is None:
            return None
        add_to_digest(h, rel, raw)
    return h.hexdigest()


def collect(location: str | Path) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """(path, name relative to the location) of every spec file, and problems found walking.

    Everything named ``*.toml`` is returned whatever its type (the reader refuses what is not
    a regular file, naming it); symbolic links to directories are not descended into.
    """
    root = Path(location)
    if not root.is_dir():
        return [(root, root.name)], []
    problems: list[Problem] = []

    def walk_error(exc: OSError) -> None:
        problems.append((file_name(str(exc.filename or root)), "",
                         f"cannot read this directory: {exc.strerror or exc}"))

    found: list[tuple[Path, str]] = []
    for top, dirs, names in os.walk(root, onerror=walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or not name.endswith(".toml"):
                continue
            path = Path(top) / name
            found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda f: f[1]), problems


def spec_files(location: str | Path) -> list[Path]:
    """Every path ``load`` reads at ``location`` (for the daemon's permission check)."""
    return [path for path, _ in collect(location)[0]]


def read(path: Path, problems: list[Problem]) -> bytes | None:
    """The file's bytes, or None with a problem: never opens what is not a regular file."""
    where = file_name(str(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            problems.append((where, "", f"a symbolic link to {file_name(os.readlink(path))}, "
                             f"which does not exist"))
        else:
            problems.append((where, "", "no such file or directory"))
        return None
    except OSError as exc:
        problems.append((where, "", f"cannot read: {exc.strerror or exc}"))
        return None
    if not stat.S_ISREG(st.st_mode):
        problems.append((where, "", _not_regular(st.st_mode)))
        return None
    if st.st_size > MAX_FILE_BYTES:
        problems.append((where, "", _too_big(st.st_size)))
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        problems.append((where, "", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        st = os.fstat(fd)  # what was opened, not what was stat-ed a moment ago
        if not stat.S_ISREG(st.st_mode):
            problems.append((where, "", _not_regular(st.st_mode)))
            return None
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_FILE_BYTES:
            problems.append((where, "", _too_big(total, grew=True)))
            return None
        return b"".join(chunks)
    except OSError as exc:
        problems.append((where, "", f"cannot read: {exc.strerror or exc}"))
        return None
    finally:
        os.close(fd)


def _not_regular(mode: int) -> str:
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not a regular file: a spec file is read only when it is a regular file"


def _too_big(size: int, grew: bool = False) -> str:
    return (f"{'grew past' if grew else 'is'} {size} bytes; a spec file is at most "
            f"{MAX_FILE_BYTES // 1024**2} MiB (is this really a spec file?)")
