"""reconciler: a declarative storage reconciler (LVM, md clones, lvmlockd, DRBD, iSCSI)."""

# The one place the version is written: pyproject.toml reads it (dynamic version), and
# `reconcile --version` falls back to it when the package is not installed.
__version__ = "0.1.0"


def _package_files(root: str | None = None) -> list[tuple[str, int, int, int, int]] | None:
    """Every file of this package but its bytecode caches (name, size, modification and
    change times, inode), or None when they cannot be listed: what ``noop_memo`` calls the
    code. Taken here, as the package is first imported, before any of its code is."""
    import os
    root = root or os.path.dirname(os.path.abspath(__file__))
    entries, todo = [], [root]
    try:
        while todo:
            with os.scandir(todo.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        if e.name != "__pycache__":
                            todo.append(e.path)
                    else:
                        st = e.stat(follow_symlinks=False)
                        entries.append((e.path[len(root):], st.st_size, st.st_mtime_ns,
                                        st.st_ctime_ns, st.st_ino))
    except OSError:
        return None
    entries.sort()
    return entries


FILES_AT_START = _package_files()
