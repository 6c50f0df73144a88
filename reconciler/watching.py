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
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileClosedEvent,
                             FileCreatedEvent, FileDeletedEvent, FileModifiedEvent,
                             FileMovedEvent, FileSystemEvent, FileSystemEventHandler)
from watchdog.observers import Observer

_COUNTED = {"created", "modified", "closed", "moved", "deleted"}
_DIR_COUNTED = {"created", "moved", "deleted"}

# What each watch asks the kernel for (watchdog makes the inotify mask of these): entries
# coming and going, and, where spec files are, data written and files closed after writing.
# Nothing else reaches this process: not the opens and reads of the specs (the loader's own),
# nor, in the parent directory of a spec directory, the writes to the files beside it (a
# log or a report written there would otherwise wake the observer thread at every write).
_ENTRIES = [FileCreatedEvent, DirCreatedEvent, FileDeletedEvent, DirDeletedEvent,
            FileMovedEvent, DirMovedEvent]
_WRITES = [FileModifiedEvent, FileClosedEvent]
_ENTRY_KINDS = {"created", "deleted", "moved"}


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SpecWatcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [_text(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(_text(event.dest_path))
        if event.event_type in _ENTRY_KINDS and any(
                Path(p) in (self.watcher.location, self.watcher._root) for p in paths):
            # the location itself (or its target) came, went or was replaced: the watches
            # are re-armed at the next refresh(), even when the new one has the old inode
            self.watcher._stale = True
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
        self._identity: tuple[int, int, int] | None = None
        self._armed = False
        self._stale = False  # an event named the location or its target since the arming
        self._wanted: tuple[bool, Path | None] = (False, None)  # parent watched; tree watched
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

    def _current_identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.location)  # follows a symlinked location on purpose
        except OSError:
            return None
        return st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)

    def start(self) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        self.refresh()

    def refresh(self) -> bool:
        """Re-arm the watches when the ones the location needs now are not the ones armed:
        a directory's are on its inode, so a directory replaced (another inode, or the same
        one reused after the old was removed: an event named the location since) needs new
        ones, and so does a location that became a directory, or a file, or appeared. A
        spec file's watch is its parent's, which a new file under the same name (an
        editor's write-then-rename) does not change: it is kept, with what it knows of files
        being written. Cheap (a ``stat`` or two); the daemon calls it before each wait and
        before each load. Returns True when the watches were (re)armed."""
        if self._observer is None:
            return False
        identity = self._current_identity()
        root = Path(os.path.realpath(self.location))
        tree = identity is not None and root.is_dir()
        parent = self.location.parent
        wanted = (parent.is_dir(), root if tree else None)
        stale, self._stale = self._stale, False
        if (self._armed and self.error is None and wanted == self._wanted
                and not (tree and (stale or identity != self._identity))):
            self._identity, self._root = identity, root
            return False
        self._observer.unschedule_all()
        with self._lock:
            self._writing.clear()  # a new watch: what was open before is not known
        self._identity = identity
        self._wanted = wanted
        self._armed = True
        self.error = None
        handler = _Handler(self)
        # watchdog does not follow a symlinked root: watch the target, and re-arm when the
        # link is swapped (the parent's watch sees that).
        self._root = root
        try:
            if wanted[0]:
                # a spec file (or one still to come) is written in place under its parent's
                # watch; a directory's files under its own
                self._observer.schedule(handler, str(parent), recursive=False,
                                        event_filter=_ENTRIES if tree else _ENTRIES + _WRITES)
            if tree:
                self._observer.schedule(handler, str(root), recursive=True,
                                        event_filter=_ENTRIES + _WRITES)
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
