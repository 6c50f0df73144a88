"""The continuous reconciler: one loop thread that runs passes, and what wakes it.

A pass runs at start, after a spec change (debounced), on SIGHUP, sooner while a long
operation is in flight (the pass's ``requeue_after``), after an error (with backoff), and
otherwise every ``resync_seconds`` to catch changes made by hand. Only the loop thread runs
passes, so two passes never overlap; everything else (the watchdog observer thread, signal
handlers) only *pokes* the ``Wakeup``.

Why it is shaped this way:

* **Debounce in one place.** A spec event schedules a pass ``debounce_seconds`` later; each
  further event pushes it back, up to ``debounce_max_seconds`` after the first, so an
  editor's save-rename-write or a ``git pull`` of many files gives one pass, and a file
  written continuously still gets passes. If the spec changes again while it is being
  loaded, the load is thrown away and the loop waits for quiet again; and while a spec
  file is open for writing (modified and not closed yet: a writer that truncates it and
  writes it in chunks, however slowly), the specs are not loaded at all. Nothing is
  applied from a half-written file; one left open for ``write_wait_seconds`` is refused.
* **An invalid spec on disk stops every change.** While the files on disk fail validation
  (or are refused for their permissions), passes go on against the last good spec as dry
  runs: they observe and report (status, metrics, the errors with file and key) and run no
  step at all, not even one the last good spec asked for. The operator's latest intent is
  unknown then: an edit that withdrew an ``absent`` and has a typo elsewhere must not let
  the old ``absent`` remove what they meant to keep.
* **Signals set flags.** SIGTERM (and SIGINT) ask the loop to stop; a pass in progress
  finishes the step it is running (a command is never abandoned half way: the executor is
  asked before each step, see ``controller.reconcile_once(should_stop=…)``), defers the
  rest, and the process exits 0. Long kernel operations (pvmove, raid sync) keep running;
  the next start observes and adopts them. SIGHUP asks for a pass now. A change to the
  spec seen during a pass is handled the same way: the steps planned from the spec loaded
  before it are deferred after the running one, and the next pass reloads.
* **One instance per host** (``reconciler.instance_lock``). ``flock`` on a lock file under
  /run, held for the process's life (and closed on exec, so a command's children never
  inherit it); a second instance refuses to start and names the PID holding it.
* **Root acts on the spec, so only root may write it** (``reconciler.spec.permissions``).
  A spec directory or file that a non-root user can write (or own) is refused like an
  invalid spec: reported, and nothing is changed until it is fixed.
* **systemd.** READY=1 once the first pass has observed the host (the loop is up and the
  tools answer), STATUS= after each pass, WATCHDOG=1 from this loop only: while it waits,
  and around every command, with the interval stretched to the command's own timeout while
  it runs (``notify.Notifier.allow``), so a loop stuck anywhere else is restarted.
* **Runtime trouble is reported, not fatal.** An unreadable or missing spec directory, a
  tool missing from PATH, a command killed by its timeout: each ends that pass with a
  clear message in the log, the status file and the metrics, and the loop retries later.

The rooms: ``loop`` (the ``Daemon`` and its ``Settings``), ``wakeup`` (what wakes it); the
instance lock is ``reconciler.instance_lock`` and the spec-permission check
``reconciler.spec.permissions``, because a ``--once`` pass takes them too.
"""

from reconciler.daemon.loop import KILL_GRACE_SECONDS, RUN_DIR, Daemon, Settings
from reconciler.daemon.wakeup import Wakeup

# Compatibility: callers that knew these as the daemon's (cli catches AlreadyRunning here).
from reconciler.instance_lock import AlreadyRunning, InstanceLock
from reconciler.spec.permissions import UntrustedSpec, check_permissions

__all__ = ["KILL_GRACE_SECONDS", "RUN_DIR", "AlreadyRunning", "Daemon", "InstanceLock",
           "Settings", "UntrustedSpec", "Wakeup", "check_permissions"]
