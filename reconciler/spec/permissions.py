"""Root acts on the spec, so only root may be able to change it.

The reconciler runs as root and does what the spec files say; a spec directory or file that
a non-root user can write (or owns), or any directory above it that such a user could swap,
would let that user act as root. Such a spec is refused like an invalid one: the daemon
reports it and changes nothing until it is fixed, and ``reconcile --once`` exits 1. A
simulated host (``--simulate``) is not checked: nothing real is acted on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reconciler import errors
from reconciler.spec import files


class UntrustedSpec(errors.SpecError):
    """A spec file or directory that someone other than root could change: refused like an
    invalid spec (nothing is changed until it is fixed), with its own first line."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        super().__init__(problems)
        lines = [f"{f}: {msg}" for f, _, msg in self.problems]
        self.args = ("spec refused (permissions):\n  " + "\n  ".join(lines),)


def check_permissions(location: str | Path, trusted_uids: frozenset[int] | None = None) -> None:
    """Raise ``SpecError`` if anyone but root (or us) can change what ``load`` would read.

    Checked: every ancestor directory of the location (a world-writable one is accepted only
    with the sticky bit, like /tmp), the location, every spec file the loader would read and
    every directory between it and the location. Writable by the group is accepted only
    for group root. Symlinks are followed, as the loader follows them. Every problem is
    collected before raising, so one refusal names them all (the operator fixes them in one
    go). Owners trusted by default: root, and the user running the check (a test, or a
    daemon run by hand as that user, acts with no more rights than that user has anyway).
    """
    trusted = trusted_uids if trusted_uids is not None else frozenset({0, os.geteuid()})
    root = Path(location).absolute()
    problems: list[tuple[str, str, str]] = []
    seen: set[Path] = set()

    def check(path: Path, what: str, sticky_ok: bool = False) -> None:
        if path in seen:
            return
        seen.add(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return  # the loader says "no such file or directory"
        except OSError as exc:
            problems.append((str(path), "", f"cannot read {what}: {exc.strerror or exc}"))
            return
        if st.st_uid not in trusted:
            problems.append((str(path), "", (
                f"{what} is owned by uid {st.st_uid}, not root; the reconciler runs as root "
                f"and acts on these files, so only root may be able to change them — "
                f"chown root: {path}")))
        group_w = bool(st.st_mode & stat.S_IWGRP) and st.st_gid != 0
        other_w = bool(st.st_mode & stat.S_IWOTH)
        if (group_w or other_w) and not (sticky_ok and st.st_mode & stat.S_ISVTX):
            who = "others" if other_w else f"group {st.st_gid}"
            problems.append((str(path), "", (
                f"{what} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}); the "
                f"reconciler runs as root and acts on these files, so only root may be able "
                f"to change them — chmod go-w {path}")))

    for base in (root, root.resolve()):
        for anc in reversed(base.parents):
            check(anc, "an ancestor directory of the spec", sticky_ok=True)
    check(root, "the spec directory" if root.is_dir() else "the spec file")
    if root.is_dir():
        try:
            os.listdir(root)
        except OSError as exc:
            problems.append((str(root), "", f"cannot read the spec directory: "
                             f"{exc.strerror or exc}"))
        for f in files.spec_files(root):
            for d in reversed(f.parents):
                if d != root and d.is_relative_to(root):
                    check(d, "a spec subdirectory")
            check(f, "a spec file")
    if problems:
        raise UntrustedSpec(problems)
