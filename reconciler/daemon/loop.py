"""The loop: one thread that runs the passes, one at a time, and reports each.

``Daemon.run`` holds the instance lock, starts the spec watcher, and then waits on its
``Wakeup`` and runs a pass for each reason it returns; ``_pass`` loads the spec (keeping the
last good one while the files on disk are refused), runs ``controller.reconcile_once`` and
schedules the next pass; the status file, the metrics and systemd hear of each. Why it is
shaped this way: see the package's docstring (``reconciler.daemon``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import actions, controller, errors, notify, ondemand, status, watching
from reconciler.daemon.wakeup import Wakeup
from reconciler.instance_lock import InstanceLock
from reconciler.logs import logger
from reconciler.runner import KILL_BOUND_SECONDS, Command, CommandResult, Runner
from reconciler.spec import loading
from reconciler.spec.permissions import check_permissions

RUN_DIR = status.DEFAULT_DIR
# Beyond a command's timeout: the runner's SIGTERM grace, SIGKILL and bounded reap (after
# which a stuck process is abandoned), plus a margin; the watchdog is stretched by this much.
KILL_GRACE_SECONDS = KILL_BOUND_SECONDS + 10.0


@dataclass
class Settings:
    """How the daemon runs; every path is configurable so tests need no root or /run."""

    spec: Path
    resync_seconds: float = 300.0
    debounce_seconds: float = 0.2
    debounce_max_seconds: float = 1.0
    # A spec file still open for writing after this long: refused (passes only observe)
    write_wait_seconds: float = 30.0
    error_backoff_seconds: float = 5.0
    status_dir: Path | None = RUN_DIR
    metrics_file: Path | None = RUN_DIR / status.METRICS_FILE
    lock_file: Path = RUN_DIR / "lock"
    watch: bool = True
    check_permissions: bool = True
    dry_run: bool = False


# -- the runner the passes use -----------------------------------------------------------------


class _LoopRunner:
    """Wraps the host's runner: watchdog keep-alives around each command, and READY once
    the first observation has come back."""

    def __init__(self, inner: Runner, daemon: Daemon):
        self.inner = inner
        self.daemon = daemon

    def run(self, cmd: Command) -> CommandResult:
        self.daemon._before_command(cmd)
        try:
            return self.inner.run(cmd)
        finally:
            self.daemon._after_command(cmd)

    def read(self, path: str, *, host: str = "local") -> str | None:
        return self.inner.read(path, host=host)

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        return self.inner.read_bytes(path, offset, length, host=host)

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        return self.inner.openers(paths, host=host)

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        return self.inner.claimed(paths, host=host)


# -- the loop ----------------------------------------------------------------------------------


class Daemon:
    """The continuous reconciler for one host. ``run()`` blocks until stopped; returns 0."""

    def __init__(self, env: controller.Environment, settings: Settings, *,
                 notifier: notify.Notifier | None = None,
                 on_wait: Callable[[float], None] | None = None):
        self.settings = settings
        self.notifier = notifier if notifier is not None else notify.Notifier()
        self.env = dataclasses.replace(env, runner=_LoopRunner(env.runner, self))
        self.on_wait = on_wait  # told how long each wait lasted (a simulated clock follows)
        self.wakeup = Wakeup()
        self.spec_events = 0  # events the watcher saw in the spec (see _pass)
        self.lock = InstanceLock(settings.lock_file)
        self.memory = controller.Memory()
        self.etas = status.EtaTracker()
        self.watcher: watching.SpecWatcher | None = None
        self.started_at = time.time()
        self.passes = 0
        self.pass_errors = 0
        self.last: controller.PassResult | None = None
        self.in_force: loading.LoadedSpec | None = None
        self.spec_loaded_at: float | None = None
        self.spec_error: str | None = None
        self.spec_error_at: float | None = None
        self.state = status.STARTING
        self.sections = status.empty_sections()
        self.ready = False
        self.next_pass_at = time.monotonic()
        self.next_pass_wall: float | None = None
        self.next_reason = "start"
        self._backoff = settings.error_backoff_seconds
        self._settle_skips = 0
        self._extended = False
        self._reported: dict[str, str | None] = {}

    # -- control (any thread, or a signal handler) ---------------------------------------------

    def request_pass(self, reason: str = "SIGHUP") -> None:
        self.wakeup.poke(reason)

    def request_stop(self) -> None:
        self.wakeup.signal_stop()

    def install_signal_handlers(self) -> dict[int, object]:
        """SIGTERM/SIGINT stop, SIGHUP forces a pass; returns the previous handlers."""
        previous = {}
        for sig, handler in ((signal.SIGTERM, lambda *_: self.wakeup.signal_stop()),
                             (signal.SIGINT, lambda *_: self.wakeup.signal_stop()),
                             (signal.SIGHUP, lambda *_: self.wakeup.signal_hup())):
            previous[sig] = signal.signal(sig, handler)
        return previous

    def _spec_event(self, path: str) -> None:
        self.spec_events += 1  # a pass running from the spec loaded before this one stops
        self.wakeup.poke("spec changed", path, quiet=self.settings.debounce_seconds,
                         cap=self.settings.debounce_max_seconds)

    # -- run -----------------------------------------------------------------------------------

    def run(self) -> int:
        """The daemon until it is stopped: all of its code imported first (a module imported
        at a later step could come from a package upgraded on disk since it started: see
        ``ondemand``), the instance lock taken, then a pass per wake-up (a spec change, a
        signal, a resync or a requeue), its result published after each."""
        ondemand.load_everything()
        self.lock.acquire()  # AlreadyRunning propagates: the caller prints it and exits 1
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = self.install_signal_handlers()
        log = logger.bind(obj=f"node {self.env.node}")
        log.info("daemon started (pid {}): spec {}, resync every {:g} s{}", os.getpid(),
                 self.settings.spec, self.settings.resync_seconds,
                 ", dry run" if self.settings.dry_run else "")
        try:
            if self.settings.watch:
                self.watcher = watching.SpecWatcher(self.settings.spec, self._spec_event)
                self.watcher.start()
                blind = watching.proc_blind_spot()
                if blind:
                    log.warning("{}: a spec file being written when the spec's watch is set "
                                "up again is recognised only by its next write", blind)
            self._publish()
            self.wakeup.poke("start")
            tick_every = (self.notifier.watchdog_seconds / 2
                          if self.notifier.watchdog_seconds else None)
            while not self.wakeup.stopping:
                if self.watcher is not None:
                    if self.watcher.refresh() and self.watcher.error is None:
                        # Re-armed on a new target (a swapped symlink, a recreated directory):
                        # what changed there before the new watch existed is read by one pass.
                        self._spec_event(str(self.settings.spec))
                    self._report_once("watch", self.watcher.error, "spec changes will be seen "
                                      "at the next resync only")
                t0 = time.monotonic()
                reasons = self.wakeup.wait(self.next_pass_at, tick=self.notifier.keepalive,
                                           tick_every=tick_every)
                if self.on_wait is not None:
                    self.on_wait(time.monotonic() - t0)
                if self.wakeup.stopping:
                    break
                reason = "; ".join(r + (f" ({', '.join(d)})" if d else "") for r, d in reasons)
                self._pass(reason or self.next_reason)
            log.info("stopping on request after {} pass(es); in-flight kernel operations keep "
                     "running and are adopted at the next start", self.passes)
            return 0
        finally:
            if self.watcher is not None:
                self.watcher.stop()
            self.state = status.STOPPED
            self._publish()
            self.notifier.stopping("stopping: " + status.summary(self._document()))
            self.notifier.close()
            if previous:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            self.lock.release()

    # -- one pass ------------------------------------------------------------------------------

    def _pass(self, reason: str) -> None:
        """One wake-up of the loop: run a pass for ``reason`` if the spec lets it, then
        schedule the next one.

        Decides, in order: whether to wait instead (a spec file still open for writing, or a
        spec that changed again while it was read: nothing is applied from a half-written
        file); which spec the pass runs from (the one on disk, or the last good one when the
        files are refused, and then the pass only observes, because the operator's latest
        intent is unknown); and when the next pass is due (backoff after an error, the
        requeue interval while something moves, the resync otherwise). A pass stops between
        steps when a stop is asked or the spec changes under it. An internal error in the
        pass is caught and reported like a failed pass: a bug must not end the loop that keeps
        the storage converged.
        """
        if self.watcher is not None:
            # The location may have been replaced during the wait: the watches are set up
            # again, and /proc asked what is open there, before anything is read (review 13)
            self.watcher.refresh()
            self.watcher.recheck()
        open_for_writing = self._open_for_writing()
        if open_for_writing and open_for_writing[1] < self.settings.write_wait_seconds:
            # A file is half-written (its writer has not closed it): wait for the close,
            # whose event pokes the loop, and look again a little later anyway.
            logger.bind(obj=f"spec {open_for_writing[0]}").debug(
                "open for writing; the pass waits for it to be closed")
            self.next_pass_at = time.monotonic() + self.settings.debounce_max_seconds
            self.next_reason = reason
            return
        events_at_load = self.spec_events
        loaded = self._load(still_open=open_for_writing)
        if self.wakeup.pending("spec changed") and self._settle_skips < 3:
            # The spec changed again while it was being read: wait for it to settle.
            self._settle_skips += 1
            self.next_pass_at = time.monotonic() + self.settings.debounce_max_seconds
            return
        self._settle_skips = 0
        if loaded is None:
            self.state = status.NO_SPEC
            self._schedule(error=True)
            self._publish()
            self._ready_once()
            return
        self.passes += 1
        number = self.passes
        # The files on disk were refused: observe and report against the last good spec,
        # change nothing (its steps may be exactly what the operator just tried to withdraw).
        refused = self.spec_error is not None
        logger.bind(pass_no=number, obj=f"node {self.env.node}").info(
            "pass triggered by {}{}", reason,
            "; the spec on disk is refused, so this pass only observes" if refused else "")
        started = time.time()
        try:
            result = controller.reconcile_once(
                loaded, self.env, dry_run=self.settings.dry_run or refused, memory=self.memory,
                pass_no=number, should_stop=lambda: (self.wakeup.stopping
                                                     or self.spec_events != events_at_load))
        except Exception as exc:
            # A bug must not end the loop that keeps the storage converged; it is logged with
            # its traceback, reported in the status, and the pass is retried with backoff.
            logger.opt(exception=exc).bind(pass_no=number, obj=f"node {self.env.node}").error(
                "pass {} failed with an internal error: {!r}", number, exc)
            empty = actions.Plan(node=self.env.node, spec_digest=loaded.digest)
            result = controller.PassResult(empty, empty, None, controller.EXIT_ERROR, 0,
                                           time.time() - started, None,
                                           f"internal error: {exc!r}")
        self.last = result
        self.state = status.pass_state(result, dry_run=self.settings.dry_run)
        if refused and self.state != status.ERROR:
            self.state = status.SPEC_REFUSED
        if self.state == status.ERROR:
            self.pass_errors += 1
        etas = self.etas.update(result.final.in_flight, self.env.clock.now())
        self.sections = status.pass_section(result, number=number, reason=reason,
                                            started_at=started, finished_at=time.time(),
                                            etas=etas)
        # Sooner re-passes while something moves: a long operation in flight, or steps left
        # waiting for one. A dry-run daemon's drift does not move by itself: resync only.
        moving = bool(result.final.in_flight) or (
            result.exit_code == controller.EXIT_PENDING and not self.settings.dry_run
            and not refused)
        self._schedule(error=self.state == status.ERROR,
                       requeue=(result.requeue_after or self.env.requeue_seconds)
                       if moving else None)
        self._publish()
        self._ready_once()

    def _open_for_writing(self) -> tuple[str, float] | None:
        """The spec file open for writing the longest, and for how many seconds."""
        if self.watcher is None:
            return None
        writing = self.watcher.writing()
        if not writing:
            return None
        path, since = min(writing.items(), key=lambda kv: kv[1])
        return path, time.monotonic() - since

    def _load(self, still_open: tuple[str, float] | None = None) -> loading.LoadedSpec | None:
        """Load and check the spec; on any problem return the last good one, with
        ``spec_error`` set (the pass then changes nothing)."""
        location = self.settings.spec
        log = logger.bind(obj=f"spec {location}")
        try:
            if still_open is not None:
                holder = self.watcher.holder(still_open[0]) if self.watcher else None
                how = (f"held open for writing by {holder} for {still_open[1]:.0f} s (as "
                       f"/proc shows; no write of it seen)" if holder else
                       f"still open for writing after {still_open[1]:.0f} s (modified, never "
                       f"closed)")
                raise errors.SpecError([(still_open[0], "", (
                    f"{how}; a half-written file is never applied: close it, or write "
                    f"specs to a temporary name and rename them into place"))])
            if self.settings.check_permissions:
                check_permissions(location)
            loaded = loading.load(location)
        except (errors.SpecError, OSError) as exc:
            message = str(exc)
            if message != self.spec_error:
                log.error("{}\n  {}", message, (
                    f"nothing will be changed until the spec on disk is valid again; passes "
                    f"observe and report against the last good spec ({self.in_force.digest[:12]})"
                    if self.in_force else "no pass will change anything until a valid spec "
                    "is in place"))
                self.spec_error_at = time.time()
            self.spec_error = message
            return self.in_force
        if self.spec_error is not None:
            log.info("spec accepted again")
            self.spec_error = self.spec_error_at = None
        if self.in_force is None or loaded.digest != self.in_force.digest:
            log.info("spec in force: {} ({} file(s), {} VG(s), {} clone(s))", loaded.digest[:12],
                     len(loaded.files), len(loaded.spec.vg), len(loaded.spec.clone))
            self.spec_loaded_at = time.time()
        self.in_force = loaded
        return loaded

    def _schedule(self, *, error: bool, requeue: float | None = None) -> None:
        s = self.settings
        if error:
            delay, self.next_reason = self._backoff, "retry after an error"
            self._backoff = min(self._backoff * 2, s.resync_seconds)
        else:
            self._backoff = s.error_backoff_seconds
            if requeue is not None:
                delay, self.next_reason = requeue, "operation in flight"
            else:
                delay, self.next_reason = s.resync_seconds, "periodic resync"
        delay = min(delay, s.resync_seconds)
        self.next_pass_at = time.monotonic() + delay
        self.next_pass_wall = time.time() + delay

    # -- reporting -----------------------------------------------------------------------------

    def _document(self) -> dict:
        loaded = self.in_force
        return {
            "format": status.FORMAT, "node": self.env.node, "pid": os.getpid(),
            "started_at": self.started_at, "updated_at": time.time(),
            "dry_run": self.settings.dry_run, "state": self.state, "passes": self.passes,
            "pass_errors": self.pass_errors, "resync_interval_s": self.settings.resync_seconds,
            "next_pass_at": self.next_pass_wall, "next_pass_reason": self.next_reason,
            "spec": {"location": str(self.settings.spec),
                     "digest": loaded.digest if loaded else None,
                     "files": list(loaded.files) if loaded else [],
                     "loaded_at": self.spec_loaded_at,
                     "error": self.spec_error, "error_at": self.spec_error_at},
            **self.sections,
        }

    def _publish(self) -> None:
        doc = self._document()
        s = self.settings
        status_file = s.status_dir / status.STATUS_FILE if s.status_dir else None
        try:
            for d in {p.parent for p in (status_file, s.metrics_file) if p is not None}:
                d.mkdir(parents=True, exist_ok=True)
            status.write(doc, status_file, s.metrics_file)
            problem = None
        except OSError as exc:
            problem = f"cannot write the status or metrics file: {exc}"
        self._report_once("publish", problem, "the loop goes on")
        if self.state != status.STOPPED:
            self.notifier.status(status.summary(doc))

    def _report_once(self, topic: str, problem: str | None, consequence: str) -> None:
        """Log a recurring problem when it appears or changes, and when it clears."""
        if problem == self._reported.get(topic):
            return
        log = logger.bind(obj=f"node {self.env.node}")
        if problem:
            log.warning("{}; {}", problem, consequence)
        else:
            log.info("{}: resolved", topic)
        self._reported[topic] = problem

    def _ready_once(self) -> None:
        if not self.ready:
            self.ready = True
            self.notifier.ready(status.summary(self._document()))

    # -- around each command (the loop thread) -------------------------------------------------

    def _before_command(self, cmd: Command) -> None:
        wd = self.notifier.watchdog_seconds
        if wd is not None and cmd.timeout + KILL_GRACE_SECONDS > wd / 2:
            self.notifier.allow(cmd.timeout + KILL_GRACE_SECONDS)
            self._extended = True
        else:
            self.notifier.keepalive()

    def _after_command(self, cmd: Command) -> None:
        if self._extended:
            self.notifier.allow(None)
            self._extended = False
        else:
            self.notifier.keepalive()
        if not self.ready and not cmd.mutates:
            # The first observation is back: the loop is up and the tools answer.
            self.ready = True
            self.notifier.ready(f"observed the host; pass {self.passes} running")
