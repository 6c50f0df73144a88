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
directory is watched for that entry too, and ``refresh()`` re-arms the watches whenever the
location now resolves to another inode, an event named the location itself (created,
removed, moved), or a watch ended by itself (watchdog ends the watch of a directory that
was removed: a directory made again on the removed one's inode looks the same to ``stat``).

A new watch cannot know what was opened before it existed: a file being written into a
directory that replaced the old one, or a spec file that did not exist, would look
complete after its writer's first pause. So a re-arm asks the kernel (``open_for_writing``:
every process's descriptors in /proc and their access mode) which spec files there are
open for writing right now, and takes them as being written until their close is seen.
Only processes this one may inspect are seen: the daemon runs as root.
"""

from __future__ import annotations

import os
import stat
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
            if not event.is_directory and not (event.event_type == "moved"
                                                 and event.is_synthetic):
                # (a file's synthetic move: its directory's move carried it, below)
                self.watcher._track(event.event_type, paths)
            if event.event_type in _DIR_COUNTED and self.watcher.location in map(Path, paths):
                with self.watcher._lock:  # the location itself made, removed or replaced
                    self.watcher._stale = True
            elif event.event_type in ("created", "moved"):
                # A directory made or moved in (its watch came after what was written in it
                # first), or a spec file moved in (watchdog says 'created' for one moved in
                # from outside the tree): ask /proc what is open there, and only there
                with self.watcher._lock:
                    self.watcher._rescan.add(paths[-1])
            if event.is_directory and event.event_type in ("deleted", "moved"):
                # its files left that path with it (no event of their own): G2; moved
                # within the tree, they are still being written under the new path
                self.watcher._forget_under(paths[0], paths[1] if len(paths) == 2 else None)
            self.watcher.trigger(hit)

    def on_events_lost(self, event: FileSystemEvent) -> None:
        """The kernel's event queue overflowed: a close or a write may be among what was
        lost, so the watches are set up again and /proc asked (``refresh``)."""
        with self.watcher._lock:
            self.watcher._stale = True
        self.watcher.trigger(str(self.watcher.location))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def open_for_writing(files: dict[tuple[int, int], str]) -> dict[str, str]:
    """Which of ``files`` ((st_dev, st_ino) -> path) some process has open for writing now,
    each with one such process ('pid 4242 (scp)'): every descriptor in /proc/PID/fd whose
    target has the name of one of them (the only ones looked at further: a host may hold
    hundreds of thousands), matched by what it is, not by its path (another mount namespace
    names it otherwise), its access mode from /proc/PID/fdinfo. A process that goes away
    meanwhile is skipped: it holds nothing."""
    found: dict[str, str] = {}
    # a descriptor names the file a symlinked spec file leads to: that name too
    names = {os.path.basename(name) for path in files.values()
             for name in (path, os.path.realpath(path))}
    if not names:
        return found
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = [f"{fd_dir}/{fd}" for fd in os.listdir(fd_dir)]
            if not fds:  # a process whose main thread has ended: its threads hold the table
                fds = [f"/proc/{pid}/task/{t}/fd/{fd}" for t in os.listdir(f"/proc/{pid}/task")
                       for fd in os.listdir(f"/proc/{pid}/task/{t}/fd")]
        except OSError:
            continue
        for link in fds:
            fd = link.rsplit("/", 1)[1]
            info_dir = link.rsplit("/fd/", 1)[0] + "/fdinfo"
            try:
                if os.path.basename(os.readlink(link)) not in names:
                    continue
                st = os.stat(link)
                with open(f"{info_dir}/{fd}", encoding="ascii") as f:
                    info = f.read()
            except (OSError, ValueError):
                continue
            path = files.get((st.st_dev, st.st_ino))
            flags = next((line.split()[1] for line in info.splitlines()
                          if line.startswith("flags:")), None)
            if path is not None and flags is not None and \
                    int(flags, 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                found.setdefault(path, f"pid {pid} ({_comm(pid)})")
    return found


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return "?"


def proc_blind_spot() -> str | None:
    """Why /proc may not show every process that has a spec file open (``open_for_writing``
    then finds nothing for them), or None: not root, or in a PID namespace of its own."""
    if os.geteuid() != 0:
        return "not running as root: other users' processes are not seen in /proc"
    try:
        if os.stat("/proc/self/ns/pid").st_ino != _INIT_PID_NS:
            return "in a PID namespace of its own: the host's other processes are not seen"
    except OSError:
        return "/proc/self/ns/pid cannot be read"
    return None


_INIT_PID_NS = 0xEFFFFFFC  # the initial PID namespace's inode (PROC_PID_INIT_INO)


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
        # Closed, removed or moved since a re-arm began to ask /proc (``_seed_writing``):
        # what /proc answered for them is older than their event.
        self._closed_since: set[str] | None = None
        self._stale = False  # an event named the location itself: re-arm (``refresh``)
        self._rescan: set[str] = set()  # directories or spec files that came in: ask /proc
        # Being written as /proc said (at a re-arm or a rescan), no event of its own since:
        # path -> the holder. Asked of /proc again while passes wait (``recheck``).
        self._seeded: dict[str, str] = {}

    # -- files being written ---------------------------------------------------------------

    def _track(self, kind: str, paths: list[str]) -> None:
        with self._lock:
            # Only data written marks a file as being written: watchdog also reports files it
            # finds in a directory created a moment ago as "created", with no close to follow.
            if kind == "modified":
                self._writing.setdefault(paths[0], time.monotonic())
                self._seeded.pop(paths[0], None)  # the watch sees it: its close will come
            elif kind == "moved" and len(paths) == 2 and paths[0] in self._writing:
                # renamed while open: still being written under its new name (its close
                # names that; /proc may not show its writer), if the loader reads that name
                self._carry(paths[0], paths[1])
                if self._closed_since is not None:
                    self._closed_since.update(paths)
            elif kind in ("closed", "deleted", "moved"):
                for p in paths:
                    self._writing.pop(p, None)
                    self._seeded.pop(p, None)
                if self._closed_since is not None:
                    self._closed_since.update(paths)

    def _loaded(self, path: str) -> bool:
        """Whether ``path`` is a name the loader reads (a ``*.toml`` in the tree, no hidden
        component)."""
        try:
            rel = Path(path).relative_to(self._root)
        except ValueError:
            return False
        return not _hidden(rel) and path.endswith(".toml")

    def _carry(self, old: str, new: str | None) -> None:
        """What was known of ``old`` being written, now of ``new`` (renamed), or forgotten
        (``new`` None or not read by the loader). Under ``_lock``."""
        since = self._writing.pop(old, None)
        holder = self._seeded.pop(old, None)
        if since is None or new is None or not self._loaded(new):
            return
        if new not in self._writing and holder is not None:
            self._seeded[new] = holder
        self._writing.setdefault(new, since)

    def _forget_under(self, directory: str, dest: str | None = None) -> None:
        """A directory removed or moved (to ``dest``): what was being written below it is
        forgotten, or carried to its new path."""
        prefix = directory.rstrip("/") + "/"
        with self._lock:
            for p in [p for p in self._writing if p.startswith(prefix)]:
                self._carry(p, None if dest is None else dest.rstrip("/") + "/" + p[len(prefix):])

    def _spec_files(self, only: set[str] | None = None) -> dict[tuple[int, int], str]:
        """The spec files at the location now, as events name them: (st_dev, st_ino) ->
        path; with ``only``, those at or below those paths. A file whose close no watch
        sees (a spec file that is a symlink, a single-file location under a symlinked
        directory) is among them: ``recheck`` forgets it once /proc shows no writer."""
        files: dict[tuple[int, int], str] = {}

        def add(path: str) -> None:
            try:
                st = os.stat(path)
            except OSError:
                return
            if stat.S_ISREG(st.st_mode):
                files[(st.st_dev, st.st_ino)] = path

        if not self._root.is_dir():
            if only is None or str(self.location) in only:
                add(str(self.location))
            return files
        # what came in, each walked alone (not the whole tree per path: a checkout of
        # thousands of files comes as thousands of paths)
        tops = [str(self._root)] if only is None else sorted(only)
        for top in tops:
            try:
                if _hidden(Path(top).relative_to(self._root)):
                    continue
            except ValueError:  # not in the tree (moved out)
                continue
            if top != str(self._root) and (os.path.islink(top) or not os.path.isdir(top)):
                # (a symlink to a directory is not descended into, nor by the loader)
                if top.endswith(".toml"):
                    add(top)
                continue
            for where, dirs, names in os.walk(top):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in names:
                    if name.endswith(".toml") and not name.startswith("."):
                        add(os.path.join(where, name))
        return files

    def _seed_writing(self, before: dict[str, float], only: set[str] | None = None) -> None:
        """After a re-arm (or, with ``only``, for what came into the tree: a directory, a
        file moved in): the spec files the kernel says are open for writing are being
        written (a watch sees their close, or ``recheck`` their writer gone), since when
        ``before`` (what the old watch knew) says, else from now. Called once the watches
        exist, so a file opened later is seen by them and one closed since is not taken as
        open."""
        with self._lock:
            self._closed_since = set()
        found: dict[str, str] = {}
        try:
            found = open_for_writing(self._spec_files(only))
        finally:
            with self._lock:
                closed, self._closed_since = self._closed_since or set(), None
                now = time.monotonic()
                for path, holder in found.items():
                    if path in closed:
                        continue
                    if path not in self._writing:  # not already known from an event
                        self._seeded[path] = holder
                    self._writing.setdefault(path, before.get(path, now))

    def recheck(self) -> None:
        """Forget the files taken as being written on /proc's word (``_seed_writing``) that
        no process has open for writing any more: their close may have happened where no
        watch sees it. A file marked by an event is left to its close event: /proc may not
        show its writer (another PID namespace), and then this could not tell."""
        with self._lock:
            seeded = [p for p in self._seeded if p in self._writing]
        if not seeded:
            return
        files: dict[tuple[int, int], str] = {}
        for path in seeded:
            try:
                st = os.stat(path)
            except OSError:
                continue
            files[(st.st_dev, st.st_ino)] = path
        still = open_for_writing(files)
        with self._lock:
            for path in seeded:
                if path not in self._seeded:  # an event about it came meanwhile: its own
                    continue
                if path in still:
                    self._seeded[path] = still[path]
                else:
                    self._seeded.pop(path, None)
                    self._writing.pop(path, None)

    def holder(self, path: str) -> str | None:
        """The process /proc named for a file taken as being written on its word, if so."""
        with self._lock:
            return self._seeded.get(path)

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
        if _hidden(p.relative_to(self._root)):
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

    def _watch_ended(self) -> bool:
        """Whether one of the watches ended by itself (watchdog ends the watch of a directory
        removed, whose inode a directory made again may then reuse)."""
        try:
            return any(not emitter.is_alive() for emitter in list(self._observer.emitters))
        except RuntimeError:  # the set changed while it was copied: look again next time
            return False

    def refresh(self) -> bool:
        """Re-arm the watches if the location now resolves to another inode (or did not
        exist before), an event named the location itself, or a watch ended. Cheap (one
        ``stat``); the daemon calls it before each wait. Returns True when the watches were
        (re)armed; what was open for writing then is asked of the kernel."""
        if self._observer is None:
            return False
        with self._lock:
            stale, self._stale = self._stale, False
            rescan, self._rescan = self._rescan, set()
        identity = self._current_identity()
        if (self._armed and identity == self._identity and self.error is None
                and not stale and not self._watch_ended()):
            if rescan:
                self._seed_writing(self.writing(), only=rescan)
            return False
        self._observer.unschedule_all()
        with self._lock:
            # a new watch: what is open now is asked of /proc below
            before, self._writing = self._writing, {}
            self._seeded = {}
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
        self._seed_writing(before)
        return True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
