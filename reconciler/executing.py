"""Apply a plan: walk its steps in order, act, re-observe, verify.

The rules, all about not making things worse:

* a step whose effect is already visible is not run again (crash between act and record);
* a long operation already in flight is adopted, never started a second time;
* only transient failures (a lock held, a busy device) are retried, by the one tenacity
  policy here, with backoff; everything else fails the step at once. Before a retry the
  host is observed again: a step whose effect is now visible stops there, otherwise it
  resumes at the first command that has not succeeded, so a command that did succeed
  (``pvcreate``, ``lvchange --addtag``) is never issued twice;
* a step that takes a device away, overwrites, exports or copies it
  (``Action.takes_devices``, the one rule of ``state.taking``) does not start while the
  device is in use here: a PV of a VG active here, mounted, held (the state observed last),
  or open by any process or swap (``Runner.openers``, asked right before the step's first
  command, never on passes that do not need it). Once a command of the step has run, the
  step is not refused half way on a retry, except where the step says what its commands
  so far should have freed (``Action.takes_before``: vgexport only once ``vgchange -an``
  has freed the PVs), which is checked again right before the next command;
* after a step's commands succeed the state is observed again and the step must be done
  (or, for a long operation, visibly started): exit code 0 is not proof (``NotConverged``);
* the dependents of a failed step are skipped, the dependents of a started long operation
  are deferred to a later pass; independent steps go on.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler import actions, errors, state
from reconciler.adapters import md
from reconciler.runner import CommandResult, Runner
from reconciler.state import taking

if TYPE_CHECKING:
    import tenacity


class Outcome(enum.StrEnum):
    DONE = "done"
    ALREADY_DONE = "already done"
    STARTED = "started"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"


@dataclass
class StepResult:
    step: actions.Step
    outcome: Outcome
    detail: str = ""
    duration: float = 0.0
    results: list[CommandResult] = field(default_factory=list)
    error: errors.ReconcilerError | None = None


@dataclass
class ApplyReport:
    results: list[StepResult]
    state: state.HostState
    refused: str | None = None  # ``before_commands``'s reason: the apply stopped there

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    @property
    def changed(self) -> bool:
        return any(r.outcome in (Outcome.DONE, Outcome.STARTED) and r.results
                   for r in self.results)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _retrying(sleep: Callable[[float], None], attempts: int) -> tenacity.Retrying:
    import tenacity  # imported by the first step run: a pass with nothing to do never needs it
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=1, min=1, max=30),
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, errors.CommandFailed) and e.kind.is_transient),
        sleep=sleep, reraise=True)


def apply(plan: actions.Plan, runner: Runner, observe: Callable[[], state.HostState],
          current: state.HostState, *, sleep: Callable[[float], None] = time.sleep,
          attempts: int = 5, on_step: Callable[[StepResult], None] | None = None,
          before_step: Callable[[actions.Step], bool] | None = None,
          before_commands: Callable[[actions.Step], str | None] | None = None) -> ApplyReport:
    """Run ``plan`` against ``runner``; ``observe()`` re-reads the host after each change.

    ``before_step(step)`` is asked before each step starts; when it returns False (the
    daemon is shutting down) that step and every later one are reported deferred, never
    started: a step already running always finishes, with its verification.
    ``before_commands(step)`` (``reconcile apply``) is asked right before a step's first
    command, once its own checks on the observed state (done, started, waiting) let it run:
    a reason from it reports that step and every later one deferred, none started, and the
    report says why (``refused``).
    """
    failed: set[str] = set()
    waiting: set[str] = {f.key for f in plan.in_flight}
    results: list[StepResult] = []
    st = current
    for i, step in enumerate(plan.steps):
        if before_step is not None and not before_step(step):
            for rest in plan.steps[i:]:
                results.append(StepResult(rest, Outcome.DEFERRED, "not started: shutting down"))
                if on_step:
                    on_step(results[-1])
            break
        try:
            res = _apply_step(step, runner, observe, st, failed, waiting, sleep, attempts,
                              before_commands)
        except _Refused as exc:
            for j, rest in enumerate(plan.steps[i:]):
                results.append(StepResult(rest, Outcome.DEFERRED, f"not run: {exc.reason}"
                                          if j == 0 else "not started: the apply stopped"))
                if on_step:
                    on_step(results[-1])
            return ApplyReport(results=results, state=st, refused=exc.reason)
        if res.outcome in (Outcome.FAILED, Outcome.SKIPPED):
            failed.add(step.key)
        elif res.outcome in (Outcome.STARTED, Outcome.DEFERRED):
            waiting.add(step.key)
        if res.results:
            try:
                st = observe()
            except errors.ReconcilerError as exc:
                # Commands ran but the host can no longer be read: stop here, and report
                # what was done so far rather than losing it.
                res.outcome, res.error = Outcome.FAILED, exc
                res.detail = (res.detail + "; " if res.detail else "") + f"re-observation failed: {exc}"
                results.append(res)
                if on_step:
                    on_step(res)
                break
            res = _verify(step, st, res)
            if res.outcome is Outcome.FAILED:
                failed.add(step.key)
            elif res.outcome is Outcome.STARTED:
                waiting.add(step.key)
        results.append(res)
        if on_step:
            on_step(res)
    return ApplyReport(results=results, state=st)


def _apply_step(step: actions.Step, runner: Runner, observe: Callable[[], state.HostState],
                st: state.HostState, failed: set[str], waiting: set[str],
                sleep: Callable[[float], None], attempts: int,
                before_commands: Callable[[actions.Step], str | None] | None = None
                ) -> StepResult:
    """Run one step, or say why not. Skipped when a step it is ordered after failed,
    deferred while one it waits for is deferred; nothing runs when the observed state
    already shows its effect, or shows it started (a long operation, adopted, never started
    twice), or when the action says it must wait. Right before its first command, a step
    that takes a device is checked again on the state as observed now and against the
    processes that have the device open (``_check_taken``). Its commands run in order, each
    at most once successfully; only a transient failure is retried (with backoff, at most
    ``attempts`` times), and before each retry the host is observed again: the step ends
    there when its effect is now seen or its precondition is gone (``_seen_again``). Another
    node holding what the step needs (``FailureKind.PEER``) defers it: a wait, not an
    error."""
    bad = sorted(step.after & failed)
    if bad:
        return StepResult(step, Outcome.SKIPPED, f"upstream failed: {', '.join(bad)}")
    pending = sorted(step.after & waiting)
    if pending:
        return StepResult(step, Outcome.DEFERRED, f"waiting for {', '.join(pending)}")
    action = step.action
    if action.is_done(st):
        return StepResult(step, Outcome.ALREADY_DONE, "already visible in observed state")
    if action.long and action.adoptable and action.is_started(st):
        return StepResult(step, Outcome.STARTED, "already in flight; adopted")
    not_yet = action.waiting_for(st)
    if not_yet:
        return StepResult(step, Outcome.DEFERRED, not_yet)
    refusal = before_commands(step) if before_commands is not None else None
    if refusal:
        raise _Refused(refusal)
    t0 = time.monotonic()
    ran: list[CommandResult] = []
    commands = action.commands()
    done = 0  # commands of this step that succeeded: never issued again
    now = st
    try:
        for attempt in _retrying(sleep, attempts):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    now = observe()
                    seen = _seen_again(action, now)
                    if seen is not None:
                        return StepResult(step, seen[0], seen[1], time.monotonic() - t0, ran)
                if done == 0:
                    _check_taken(action, now, runner, sleep)
                while done < len(commands):
                    if done:  # what a command before it should have freed: verified free
                        _check_between(action, now, runner, sleep, commands, done)
                    result = runner.run(commands[done])
                    ran.append(result)
                    if not result.ok:
                        raise action.failure(result)
                    done += 1
    except errors.CommandFailed as exc:
        if exc.kind is errors.FailureKind.PEER:
            # Another node must act first (lvmlockd: it holds the lock; iSCSI: it has not
            # exported the target yet). Not an error: wait for that node.
            tail = exc.stderr.strip().splitlines()
            # (lvmlockd does not say which node: "LV locked by other host"; an iSCSI login
            # names the exporting node first.) The error stays, for whoever reads it whole.
            return StepResult(step, Outcome.DEFERRED, actions.waiting_text(
                "", tail[0].strip() if tail else "lock held elsewhere"),
                time.monotonic() - t0, ran, exc)
        return StepResult(step, Outcome.FAILED, str(exc), time.monotonic() - t0, ran, exc)
    except errors.ReconcilerError as exc:
        return StepResult(step, Outcome.FAILED, str(exc), time.monotonic() - t0, ran, exc)
    return StepResult(step, Outcome.DONE, "", time.monotonic() - t0, ran)


def _seen_again(action: actions.Action, st: state.HostState) -> tuple[Outcome, str] | None:
    """Before a retry, on the host as it is now (``st``, observed again): the step's effect
    is there (the failed command did its work after all, or someone else did), or its
    precondition no longer holds (a leg left the sync while waiting): how the step ends.
    None: retry it."""
    if action.is_done(st):
        return Outcome.DONE, "done (seen when observing again before a retry)"
    if action.long and action.adoptable and action.is_started(st):
        return Outcome.DONE, "started (seen when observing again before a retry)"
    not_yet = action.waiting_for(st)
    if not_yet:
        return Outcome.DEFERRED, f"not retried: {not_yet}"
    return None


def _mounted_now(runner: Runner, host: str) -> dict[tuple[int, int], tuple[str, ...]] | None:
    """Device number -> mount points, as the kernel says right now (/proc/self/mountinfo:
    a file, no process, parsed as observation parses it), or None when it cannot be read.
    A mount made since the last observation is in no /proc/*/fd; one gone since is gone."""
    try:
        text = runner.read("/proc/self/mountinfo", host=host)
    except OSError:
        return None
    return None if text is None else md.parse_mountinfo(text)


def _holders_now(runner: Runner, devno: tuple[int, int],
                 host: str) -> tuple[str, ...] | None:
    """What holds the device right now (/sys/dev/block/M:m/holders/: a file listing, no
    process): a device-mapper map or md array built since the last observation (multipathd,
    LVM or md autoactivation once a disk answers again); None when it cannot be read."""
    try:
        text = runner.read(f"/sys/dev/block/{devno[0]}:{devno[1]}/holders/", host=host)
    except OSError:
        return None
    return None if text is None else tuple(x for x in text.splitlines() if x)


def _map_now(runner: Runner, st: state.HostState, use: taking.Use, vg: str, device: str,
             host: str) -> taking.Use:
    """A holder ``use`` of ``device``, resolved as sysfs says now: its own when its dm uuid
    (/sys/block/dm-N/dm/uuid, read then) is a map of an LV of ``vg``; anything else (a
    multipath map, dm-crypt, another VG's LV, md, DRBD, a map gone or unreadable) named,
    with where to look."""
    name, _, on = use.who.partition(" ")
    dm_name = uuid = ""
    if name.startswith("dm-"):
        try:
            dm_name = (runner.read(f"/sys/block/{name}/dm/name", host=host) or "").strip()
            uuid = (runner.read(f"/sys/block/{name}/dm/uuid", host=host) or "").strip()
        except OSError:
            dm_name = uuid = ""
    owner = taking.lv_map_vg(st, uuid)
    if owner == vg:
        return taking.Use("holder", use.who, of=owner)
    dm = name.startswith("dm-")
    what = (f"device-mapper map {dm_name or '?'}, uuid {uuid}: " if uuid else
            "no device-mapper uuid readable now: " if dm else "")
    look = f"dmsetup info {name}, lsblk {device}" if dm else f"lsblk {device}"
    return taking.Use("holder", f"{name}{' ' + on if on else ''} ({what}not a device-mapper "
                      f"map of an LV of VG {vg}; check what it is before the disk leaves "
                      f"this host: {look})", of=owner)


def _family_now(runner: Runner, st: state.HostState, path: str,
                host: str) -> tuple[tuple[tuple[int, int], str], ...]:
    """``taking.family`` with the partitions sysfs lists now for a whole disk (a plain
    disk's too: a mounted vdc1 is named under a take of /dev/vdc, not left to the probe's
    EBUSY), each named " (on vdc1)"."""
    out = list(taking.family(st, path))
    if not out:
        return ()
    major, minor = out[0][0]
    base = f"/sys/dev/block/{major}:{minor}"
    try:
        uevent = runner.read(f"{base}/uevent", host=host) or ""
        name = next((x[len("DEVNAME="):] for x in uevent.splitlines()
                     if x.startswith("DEVNAME=")), "")
        entries = (runner.read(f"{base}/", host=host) or "").splitlines() if name else []
        for e in entries:
            if e == name or not e.startswith(name) or any(f" (on {e})" == on for _, on in out):
                continue
            text = (runner.read(f"{base}/{e}/dev", host=host) or "").strip()
            if ":" in text:
                a, b = text.split(":", 1)
                out.append(((int(a), int(b)), f" (on {e})"))
    except (OSError, ValueError):
        pass
    return tuple(dict.fromkeys(out))


# udev's workers open a disk for a moment after another program closed it (blkid's probe
# after ``drbdadm create-md``, ``pvcreate``, ``mkfs``): not a user, but an opener all the
# same. Seen alone, they are waited out for up to UDEV_WAIT_S, then count like any other.
UDEV_WORKERS = ("(udev-worker)", "systemd-udevd")
UDEV_WAIT_S = 5.0
UDEV_POLL_S = 0.25


def _only_udev(opened: dict[str, tuple[str, ...]]) -> bool:
    who = [w for ws in opened.values() for w in ws]
    return bool(who) and all(w.endswith(tuple(f"({c})" for c in UDEV_WORKERS)) for w in who)


# Uses that are exclusive claims on the device itself (or a partition, or its disk): one of
# them found explains the kernel's EBUSY (it lets one holder claim a device at a time). Not
# "pv": a VG active here (some LV of it, or only an lvmlockd lock) claims none of its PVs
# by itself; its LVs' maps claim those they map, and those show as holders (read now). Not
# "open": an LV's open bit is set by a plain open() too. Not a process: only its own O_EXCL
# would claim, which the scan cannot tell. A LIO backstore over it (observed) claims it.
_CLAIMING = ("mount", "holder", "backstore")
# Errors of the probe's open that its driver returns, after the kernel's claim check passed.
_PAST_THE_CLAIM = ("ENXIO", "EMEDIUMTYPE")


def _claim(probe: bool | str, found: list[taking.Use]) -> taking.Use | None:
    """The use the exclusive-open probe adds to those ``found`` for one device: None when
    nothing claims it, or when a use found (counted for the step or allowed) claims it
    itself; a "claim" when the kernel refuses the open (EBUSY) and nothing found explains
    it; a "probe" use when the probe met another error, which is said. ENXIO and
    EMEDIUMTYPE are nobody's claim: the kernel checks the claim before the driver opens the
    disk, so the open got past it (a SCSI disk set transport-offline, e.g. a FREE iSCSI
    session's, answers ENXIO from its driver; DRBD 8.4's open of a Secondary, EMEDIUMTYPE:
    DRBD refuses every open there, so nothing here uses it)."""
    if probe is False or (isinstance(probe, str) and probe.startswith(_PAST_THE_CLAIM)):
        return None
    if any(u.kind in _CLAIMING or u.key == "process:swap" for u in found):
        return None
    if probe is not True:
        return taking.Use("probe", probe)
    # a process listed: most likely its own exclusive open (the scan cannot tell which)
    return taking.Use("claim", "process" if any(u.kind == "process" for u in found)
                      else "kernel")


def _shown(cmd) -> str:
    return "`" + " ".join(cmd.argv) + "`"


def _check_between(action: actions.Action, st: state.HostState, runner: Runner,
                   sleep: Callable[[float], None], commands: tuple, done: int) -> None:
    """``Action.takes_before(done)`` checked right before command ``done`` of the step (the
    ones before it ran): what they should have freed is free now, or the step fails there,
    saying what was done and what was not. A process's open alone (a udev-started ``lvm``
    reading the disk after the metadata it just wrote) is waited out for up to
    ``UDEV_WAIT_S``, then counts; a holder counts at once."""
    takes = action.takes_before(done)
    if not takes:
        return
    lead = (f"{_shown(commands[done])} not run (done: "
            f"{', '.join(_shown(c) for c in commands[:done])})")
    waited = 0.0
    while True:
        try:
            _check_taken(action, st, runner, sleep, takes=takes, lead=lead)
            return
        except errors.DeviceInUse as exc:
            if not exc.only_processes or waited >= UDEV_WAIT_S:
                raise
        sleep(UDEV_POLL_S)
        waited += UDEV_POLL_S


def _named_now(runner: Runner, use: taking.Use, device: str, host: str) -> taking.Use:
    """A holder still there between a step's commands, named as sysfs says now (its dm name
    and uuid), with where to look."""
    name, _, on = use.who.partition(" ")
    if not name.startswith("dm-"):
        return use
    try:
        dm_name = (runner.read(f"/sys/block/{name}/dm/name", host=host) or "").strip()
        uuid = (runner.read(f"/sys/block/{name}/dm/uuid", host=host) or "").strip()
    except OSError:
        dm_name = uuid = ""
    return taking.Use("holder", f"{name}{' ' + on if on else ''} (device-mapper map "
                      f"{dm_name or '?'}, uuid {uuid or '?'}, still there; check what it is "
                      f"and whether anything uses it: dmsetup info {name}, lsblk {device})")


def _check_taken(action: actions.Action, st: state.HostState, runner: Runner,
                 sleep: Callable[[float], None] = time.sleep,
                 takes: tuple[taking.Take, ...] | None = None,
                 lead: str = "not run") -> None:
    """Refuse to start a step while a device it takes is in use here (``state.taking``):
    the uses the last observed state shows (its mounts replaced by those the kernel lists
    now, when it can be read and the device's number is known), every
    process that has it open now (a udev worker's probe alone is waited out first), and a
    claim of the kernel's that none of those explains (an exclusive open refused now:
    ``Runner.claimed``, ``_claim``). An iSCSI session's disk (resolved by its by-path name
    to the observed device number) is checked with each of its partitions, for mounts and
    for holders as sysfs lists them now (every taken device's holders are read now: they
    are what explains the kernel's EBUSY on a PV of an active VG). A take whose own holders
    are its VG's LV maps (vgexport: ``Take.maps_of``) has each holder told by its dm uuid
    now (``_map_now``): any other refuses it, named. ``takes``: checked between two of the
    step's commands (``_check_between``) instead of its own, where what observation
    recorded before the step is stale: the holders are those sysfs lists now, each named by
    its dm name and uuid, and one that cannot be read refuses; ``lead`` says what was run."""
    between = takes is not None
    takes = action.takes_devices() if takes is None else takes
    if not takes:
        return
    devices = tuple(dict.fromkeys(t.device for t in takes))
    opened = runner.openers(devices, host=action.host)
    waited = 0.0
    while _only_udev(opened) and waited < UDEV_WAIT_S:
        sleep(UDEV_POLL_S)
        waited += UDEV_POLL_S
        opened = runner.openers(devices, host=action.host)
    mounted = _mounted_now(runner, action.host)
    # a claim never counts for a copy's source (Take.counts): not probed, it could only wait
    probed = tuple(d for d in devices
                   if any(t.device == d and t.effect is not taking.Effect.COPIES for t in takes))
    claimed = runner.claimed(probed, host=action.host) if probed else {}
    refused: list[tuple[str, str, tuple[str, ...], str]] = []
    only_processes = True
    for take in takes:
        found = list(taking.observed_uses(st, take.device))  # counted or not: see _claim
        family = _family_now(runner, st, take.device, action.host)
        if mounted is not None and family:  # the kernel's mounts now, not observation's
            found = [u for u in found if u.kind != "mount"]
        holders = {devno: _holders_now(runner, devno, action.host) for devno, _ in family}
        if between:  # what the step's commands left is what sysfs lists now
            found = [u for u in found if u.kind != "holder"]
            found += [taking.Use("holder", f"what /sys/dev/block/{a}:{b}/holders/ lists (it "
                                 f"cannot be read now)") for (a, b), h in holders.items()
                      if h is None]
        elif take.maps_of is not None and family and None not in holders.values():
            # whose maps the holders are is read now (_map_now): a map gone since
            # observation (its dm-N perhaps another map's now) is not judged
            found = [u for u in found if u.kind != "holder"]
        seen = {u.key for u in found}
        for devno, on in family:
            now = [taking.Use("mount", m + on) for m in (mounted or {}).get(devno, ())]
            now += [taking.Use("holder", h + on) for h in holders[devno] or ()]
            for u in now:
                if u.key not in seen:
                    seen.add(u.key)
                    found.append(u)
        vg = take.maps_of
        if vg is not None:  # whose maps its holders are, by their dm uuid now
            found = [_map_now(runner, st, u, vg, take.device, action.host)
                     if u.kind == "holder" else u for u in found]
        elif between:
            found = [_named_now(runner, u, take.device, action.host)
                     if u.kind == "holder" else u for u in found]
        found += [taking.Use("process", who) for who in opened.get(take.device, ())]
        claim = _claim(claimed.get(take.device, False), found)
        if claim is not None:
            found.append(claim)
        uses = [u for u in found if take.counts(u)]
        if uses:
            only_processes = only_processes and all(u.kind == "process" for u in uses)
            refused.append((take.role, take.device,
                            tuple(u.who for u in uses if u.kind == "process"),
                            taking.refusal(take, uses)))
    if refused:
        raise errors.DeviceInUse(refused, "stop it first" if only_processes
                                 else "take it out of use here first", lead=lead,
                                 only_processes=only_processes)


def _verify(step: actions.Step, st: state.HostState, res: StepResult) -> StepResult:
    if res.outcome is not Outcome.DONE:
        return res
    action = step.action
    if action.is_done(st):
        return res
    if action.long and action.is_started(st):
        res.outcome = Outcome.STARTED
        prog = action.progress(st)
        if prog and prog.percent is not None:
            res.detail = f"{prog.detail} {prog.percent:.1f}%"
        return res
    exc = errors.NotConverged(f"{action.object}: {action.describe()}",
                              "its effect in the re-observed state",
                              "no change; the command exited 0 but the host does not show it")
    res.outcome, res.detail, res.error = Outcome.FAILED, str(exc), exc
    return res
