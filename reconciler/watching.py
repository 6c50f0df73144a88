"""Spec-directory events → a trigger for the daemon loop. The only module importing watchdog.

The observer thread does one thing: for an event that can change what ``spec.loading``
reads, it calls ``trigger(path)``. It never loads, plans or runs anything; the daemon's
loop applies the debounce window (so a burst of writes gives one pass) and runs passes, one
at a time, on its own thread.

Which events count:

* created, modified, closed-after-write, moved and deleted entries whose path (or, for a
  move, either path) ends in ``.toml``, and directories created, moved or deleted (a whole
  subtree of specs can come and go at once);
* never anything under a hidden component (``.git``, ``.foo.toml.swp``): the loader skips
  those too, and a ``git pull`` writes far more there than in the specs;
* never opened / closed-without-write events: the loader's own reads would otherwise
  trigger the next pass, forever.

Files being written: a spec file that data was written to (modified) and not yet closed is
*being written* (``writing()``). A writer that truncates a file and writes it in several
chunks keeps it open until the last one; the daemon does not load the specs while a file
is open for writing, so nothing is applied from a half-written file (an editor's or git's
write-then-rename never shows: the temporary name is hidden or not ``.toml``).

The spec location itself may be replaced (a GitOps tool swapping a symlink, a directory
removed and recreated, a spec directory that did not exist yet at start): the parent
directory is watched for that entry too, and ``refresh()`` re-arms the recursive watch
whenever the location now resolves to another inode.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

_COUNTED = {"created", "modified", "closed", "moved", "deleted"}
_DIR_COUNTED = {"created", "moved", "deleted"}


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SpecWatcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [_text(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(_text(event.dest_path))
        hit = next((p for p in paths if self.watcher.relevant(p, event.event_type,
                                                                event.is_directory)), None)
        if hit is not None:
            if not event.is_directory:
                self.watcher._track(event.event_type, paths)
            self.watcher.trigger(hit)


class SpecWatcher:
    """Watches a spec file or directory; calls ``trigger(path)`` from the observer thread."""

    def __init__(self, location: str | Path, trigger: Callable[[str], None]):
        self.location = Path(location).absolute()
        self.trigger = trigger
        self._observer = None
        self._identity: tuple[int, int] | None = None
        self._armed = False
        self._root = self.location  # the location's target, where its events come from
        self.error: str | None = None
        self._lock = threading.Lock()
        self._writing: dict[str, float] = {}  # path -> monotonic time first seen written

    # -- files being written ---------------------------------------------------------------

    def _track(self, kind: str, paths: list[str]) -> None:
        with self._lock:
            # Only data written marks a file as being written: watchdog also reports files it
            # finds in a directory created a moment ago as "created", with no close to follow.
            if kind == "modified":
                self._writing.setdefault(paths[0], time.monotonic())
            elif kind in ("closed", "deleted", "moved"):
                for p in paths:
                    self._writing.pop(p, None)

    def writing(self) -> dict[str, float]:
        """Spec files open for writing now: path -> since when (monotonic), as far as the
        events say (created or modified, not closed since)."""
        with self._lock:
            return dict(self._writing)

    # -- what counts -----------------------------------------------------------------------

    def relevant(self, path: str, kind: str, is_directory: bool) -> bool:
        """Whether an event on ``path`` can change what the loader reads."""
        p = Path(path)
        if p == self.location:
            return kind in _COUNTED  # the location itself replaced, removed or (re)created
        if self._identity is None or not p.is_relative_to(self._root):
            return False
        if any(part.startswith(".") for part in p.relative_to(self._root).parts):
            return False
        if is_directory:
            return kind in _DIR_COUNTED
        return kind in _COUNTED and p.suffix == ".toml"

    # -- arming ------------------------------------------------------------------------------

    def _current_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.location)  # follows a symlinked location on purpose
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def start(self) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        self.refresh()

    def refresh(self) -> bool:
        """Re-arm the watches if the location now resolves to another inode (or did not
        exist before). Cheap (one ``stat``); the daemon calls it before each wait.
        Returns True when the watches were (re)armed."""
        if self._observer is None:
            return False
        identity = self._current_identity()
        if self._armed and identity == self._identity and self.error is None:
            return False
        self._observer.unschedule_all()
        with self._lock:
            self._writing.clear()  # a new watch: what was open before is not known
        self._identity = identity
        self._armed = True
        self.error = None
        handler = _Handler(self)
        parent = self.location.parent
        # watchdog does not follow a symlinked root: watch the target, and re-arm when the
        # link is swapped (the parent's watch sees that).
        self._root = Path(os.path.realpath(self.location))
        try:
            if parent.is_dir():
                self._observer.schedule(handler, str(parent), recursive=False)
            if identity is not None and self._root.is_dir():
                self._observer.schedule(handler, str(self._root), recursive=True)
        except OSError as exc:
            # e.g. the inotify watch limit (fs.inotify.max_user_watches) is reached; the
            # periodic resync still catches every change, only later.
            self.error = f"cannot watch {self.location}: {exc.strerror or exc}"
            self._identity = None
        return True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
