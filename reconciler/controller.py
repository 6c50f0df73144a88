"""One reconcile pass, and the ``--wait`` loop over passes.

A pass is: observe (one process) → plan → log → apply (unless a dry run) → plan again on
the last observed state, to say honestly whether the host is now in sync. Long operations
are never waited for inside a pass; the result carries ``requeue_after`` instead.

The only memory kept between passes is in this process (``Memory``): the progress each
operation in flight showed, to tell a slow one from a stalled one, and when this process
last started a pvmove. Nothing of it is written to disk: after a crash, observation alone
says what to do. (A ``--once`` process keeps one thing on disk, its last plan that had nothing
to do, with every answer it was made from: ``noop_memo``; it is used only when every answer
is the same again, so it never says what to do instead of the observation.)

* **A pvmove is resumed only when no process polls it.** Observation reads who polls it
  from /proc (a ``pvmove`` process, or lvmpolld's ``lvm lvpoll``); bare
  ``pvmove --background`` runs only when there is none (and not within
  ``poller_grace_seconds`` of this process starting one: lvmpolld forks its poller a moment
  after the request). Where /proc cannot be read, a move is resumed only after it has not
  moved for longer than its stall window; a fresh process never resumes at first sight. A
  move in a shared VG (``lock_type`` not none) is never resumed: another node may poll it.
* **Stalls are judged on progress over a window scaled to the operation**: at least
  ``stall_seconds``, and ``stall_steps`` times what one reporting step of its percentage
  (0.01 %, lvm's two decimals) takes at the slowest rate it showed between two changes (or
  at ``stall_floor_rate`` when
  it was never seen moving), so a multi-TB move whose percent changes once a minute is not
  called stalled. An operation idle past its window is reported blocked (exit 1), with the
  rate it had and how long it has not moved, until it moves again.
* **Whatever blocked a pass stays in its result**: the final plan is computed with the
  same knowledge as the first (what to resume, what is stalled), so a refusal to resume
  is an exit 1 with its reason in the status and metrics, not a silent exit 2.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from reconciler import actions, errors, executing, noop_memo, observing, ondemand, state
from reconciler.logs import logger
from reconciler.runner import CommandResult, RecordingRunner, Runner

if TYPE_CHECKING:  # the spec's models and the planner: imported by the first pass that plans
    from reconciler.spec import models
    from reconciler.spec.loading import LoadedSpec

EXIT_IN_SYNC = 0
EXIT_ERROR = 1
EXIT_PENDING = 2
# ``--wait`` with a deadline (``--wait-timeout``) that passed while changes were still
# pending or the node was still waiting on another one: not an error of this node.
EXIT_TIMEOUT = 4
# ``reconcile apply PLAN.json``: the saved plan no longer matches (the spec or the relevant
# observed state changed since it was made, or a pass would run a step it does not hold);
# nothing more was run.
EXIT_STALE_PLAN = 3
# Only with ``--detailed-exitcodes`` (as Puppet's): the run applied changes and the host is
# now in sync with the spec; 0 then means that nothing needed doing.
EXIT_CHANGED = 5


class Clock:
    """Real time. The simulator provides one with the same two methods."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class Environment:
    """What a pass needs from the outside world, passed in (tests pass a simulator)."""

    runner: Runner
    node: str
    resolve: observing.Resolver = observing.resolve_local
    clock: Clock = field(default_factory=Clock)
    requeue_seconds: float = 5.0  # first re-pass while an operation is in flight
    requeue_max_seconds: float = 30.0  # re-passes slow down to this while only waiting
    stall_seconds: float = 60.0  # the shortest stall window (see Memory)
    stall_steps: float = 5.0  # ... or this many reporting steps (0.01 %) at the observed rate
    stall_floor_rate: float = 256 * 1024.0  # bytes/s assumed until two changes are seen
    poller_grace_seconds: float = 10.0  # after starting a pvmove, before judging its poller
    # The clone ledger: which md clones were split after a complete sync (see planning.md).
    ledger: str = observing.DEFAULT_LEDGER
    # Why this host cannot change LIO targets (rtslib-fb missing for the applier), with what
    # to install; empty when it can (a simulated host models the applier). Observed as
    # ``IscsiState.lio_applier``: a change to a target is then blocked with it.
    lio_applier: str = ""


@dataclass
class _Track:
    """Progress of one operation as this process saw it: (done, time) when it last
    changed (or was first seen), and when it was first seen to change. The rate is measured
    between changes only: a first sample may sit anywhere inside a reporting step."""

    last: tuple[float, float]
    first_change: tuple[float, float] | None = None
    slowest: float | None = None  # the slowest rate between two changes seen

    def see(self, done: float, now: float) -> None:
        if done < self.last[0]:  # restarted from a checkpoint: measure again from here
            self.last, self.first_change, self.slowest = (done, now), None, None
        elif done > self.last[0]:
            (d0, t0), self.last = self.last, (done, now)
            if self.first_change is None:
                self.first_change = self.last
            elif now > t0:
                seg = (done - d0) / (now - t0)
                self.slowest = seg if self.slowest is None else min(self.slowest, seg)

    def rate(self) -> float | None:
        """The slowest rate seen between changes (not the average): the stall window is
        sized for the slowest stretch the operation has shown."""
        return self.slowest


@dataclass
class Memory:
    """What this process learnt across passes (see the module docstring)."""

    fresh: bool = True
    waiting_passes: int = 0  # consecutive passes that found nothing to do but wait
    # in-flight key -> (percent, time) when first seen with a known percentage: for an ETA
    samples: dict[str, tuple[float, float]] = field(default_factory=dict)
    progress: dict[str, _Track] = field(default_factory=dict)  # in-flight key -> progress
    moves: dict[str, _Track] = field(default_factory=dict)  # "vg/pvmoveN" -> progress
    pvmove_started_at: float | None = None  # when this process last started/resumed one
    # The last report parsed (the same text is not parsed again) and the last plan that had
    # nothing to do or wait for, with what it was made from (``plan``, ``_Planned``).
    reports: observing.ReportMemo = field(default_factory=observing.ReportMemo)
    planned: "_Planned | None" = None
    reused: int = 0  # passes whose plan was the previous pass's (tests, benchmarks)

    def plan(self, spec: models.Spec, st: state.HostState, *, node: str, digest: str,
             stalled: frozenset[str], whole: models.Spec | None) -> actions.Plan:
        """``planning.plan``, or the previous pass's plan when every input it was made from
        is the same: the spec (its digest), the node, what is stalled, and the observed
        state but for its time, the report being the very text the previous pass parsed.
        Planning is a pure function of those and of the time, which it reads through one
        accessor that marks the plan (``Plan.reads_time``): only a plan that did not read
        it is kept (``reusable``)."""
        kept = self.planned
        if kept is not None and kept.fits(digest, node, st, stalled):
            self.reused += 1
            return kept.plan
        from reconciler import planning
        the_plan = planning.plan(spec, st, node=node, spec_digest=digest, stalled=stalled,
                                 whole=whole)
        keep = reusable(spec, the_plan)
        self.planned = _Planned(digest, node, st, stalled, the_plan) if keep else None
        return the_plan

    def requeue_after(self, env: "Environment", acted: bool, plan: actions.Plan) -> float:
        """Re-pass soon after acting, then less and less often while only waiting, but
        never much later than the moment the first operation in flight should end (so the
        step waiting for it, a vgreduce or a split, starts without a long idle gap)."""
        self.waiting_passes = 0 if acted else self.waiting_passes + 1
        delay = min(env.requeue_seconds * (1 + self.waiting_passes), env.requeue_max_seconds)
        eta = self._first_eta(plan, env.clock.now())
        if eta is not None:
            delay = min(delay, max(env.requeue_seconds, eta + 1.0))
        return delay

    def _first_eta(self, plan: actions.Plan, now: float) -> float | None:
        etas = []
        seen = {}
        for f in plan.in_flight:
            if f.eta is not None:
                etas.append(f.eta)
            if f.percent is None:
                continue
            p0, t0 = self.samples.get(f.key, (f.percent, now))
            seen[f.key] = (p0, t0)
            if f.eta is None and f.percent > p0 and now > t0:
                rate = (f.percent - p0) / (now - t0)  # percent per second
                etas.append((100.0 - f.percent) / rate)
        self.samples = seen
        return min(etas) if etas else None

    @staticmethod
    def _window(env: "Environment", step: float, rate: float | None, sized: bool) -> float:
        """How long an operation may show no progress before it counts as stalled."""
        if rate is not None:
            return max(env.stall_seconds, env.stall_steps * step / rate)
        if sized:
            return max(env.stall_seconds, env.stall_steps * step / env.stall_floor_rate)
        return env.stall_seconds

    def _measure(self, tracks: dict[str, _Track], key: str, percent: float, total: int | None,
                 now: float, env: "Environment") -> actions.Stall:
        done = percent / 100.0 * total if total else percent
        step = total / 10000.0 if total else 0.01  # lvm reports percents with 2 decimals
        track = tracks.get(key)
        if track is None:
            track = tracks[key] = _Track((done, now))
        else:
            track.see(done, now)
        rate = track.rate()
        return actions.Stall(idle=now - track.last[1],
                             window=self._window(env, step, rate, bool(total)),
                             rate=rate, per="B" if total else "%")

    def stalled(self, st: state.HostState, now: float, env: "Environment") -> frozenset[str]:
        """The pvmoves to resume (``vg/pvmoveN``): no process polls them; or, where who
        polls cannot be seen, no progress for longer than their window."""
        out: set[str] = set()
        tracks: dict[str, _Track] = {}
        own_start = (self.pvmove_started_at is not None
                     and now - self.pvmove_started_at < env.poller_grace_seconds)
        for vg in st.vgs.values():
            if vg.lock_type not in ("", "none"):
                # A shared VG's move may be polled on another node: no local poller proves
                # nothing, so it is never resumed from here.
                continue
            for mv in vg.pvmoves:
                if mv.copy_percent is not None:
                    if mv.key in self.moves:
                        tracks[mv.key] = self.moves[mv.key]
                    stall = self._measure(tracks, mv.key, mv.copy_percent, mv.size, now, env)
                else:
                    stall = None
                if st.pollers is not None:
                    if not st.pollers.polling(mv.key) and not own_start:
                        out.add(mv.key)
                elif stall is not None and stall.expired:
                    out.add(mv.key)
                    del tracks[mv.key]  # measured again from the resume on
        self.moves = tracks
        self.fresh = False
        return frozenset(out)

    def stalls(self, plan: actions.Plan, now: float, env: "Environment"
               ) -> dict[str, actions.Stall]:
        """What each in-flight operation of ``plan`` showed: those that have not moved for
        at least half their window (reported), past it (blocked, see planning)."""
        out: dict[str, actions.Stall] = {}
        tracks: dict[str, _Track] = {}
        for f in plan.in_flight:
            if f.percent is None:
                continue
            if f.key in self.progress:
                tracks[f.key] = self.progress[f.key]
            stall = self._measure(tracks, f.key, f.percent, f.total, now, env)
            if stall.idle >= stall.window / 2 and stall.idle > 0:
                out[f.key] = stall
        self.progress = tracks
        return out


def _memo_settings(env: Environment) -> tuple:
    """What of ``env`` could reach a plan, for ``noop_memo``'s key (its runner, resolver
    and clock by kind: a simulated host and a real one never share a saved pass). Not the
    LIO applier's state: it reaches a plan only through the iSCSI state observed for this
    node's targets and sessions, and a node with any never saves nor uses a pass
    (``reconcile_once``); so a spec declaring another node's target keys the same as the
    ``--once`` that tries its saved pass before parsing it (and so before knowing)."""
    return (type(env.runner).__qualname__, getattr(env.resolve, "__qualname__", "?"),
            type(env.clock).__qualname__, env.requeue_seconds, env.requeue_max_seconds,
            env.stall_seconds, env.stall_steps, env.stall_floor_rate,
            env.poller_grace_seconds, env.ledger)


def reusable(spec: models.Spec, the_plan: actions.Plan) -> bool:
    """Whether ``Memory`` may give ``the_plan`` to a later pass whose inputs are the same
    but for the time: a plan that did not read the time (``Plan.reads_time``), with no
    step and nothing in flight (whose stall windows the loop judges on the clock), and not
    made for a clone (kept out as before; md's planning reads the time only to stamp a
    completed copy, in a plan that has a step). Planning has no other way to the time
    (tests/planning/test_time_reads.py), and every test's plan that this allows is planned
    again with the time moved, to be the same (tests/support/timeshift.py)."""
    return (not the_plan.reads_time and not the_plan.steps and not the_plan.in_flight
            and not spec.clone)


# What a plan is made from, but the clock (compared one field at a time, see ``_Planned``).
_COMPARED = tuple(f.name for f in dataclasses.fields(state.HostState)
                  if f.compare and f.name != "observed_at")


@dataclass(frozen=True)
class _Planned:
    """A plan with nothing to do or wait for, and every input it was made from but the
    clock (``Memory.plan``)."""

    digest: str
    node: str
    st: state.HostState
    stalled: frozenset[str]
    plan: actions.Plan

    def fits(self, digest: str, node: str, st: state.HostState,
             stalled: frozenset[str]) -> bool:
        if (digest, node, stalled) != (self.digest, self.node, self.stalled):
            return False
        # The same report text gives the very same parsed objects (observing.ReportMemo):
        # anything else, one changed byte included, is planned again.
        if st.vgs is not self.st.vgs or st.pvs is not self.st.pvs:
            return False
        for name in _COMPARED:
            a, b = getattr(st, name), getattr(self.st, name)
            if a is not b and a != b:
                return False
        return True


@dataclass
class PassResult:
    plan: actions.Plan
    final: actions.Plan
    report: executing.ApplyReport | None
    exit_code: int
    processes: int
    duration: float
    requeue_after: float | None
    error: str | None = None
    observed: state.HostState | None = None  # what the pass observed first (its plan's input)

    def as_dict(self) -> dict:
        return {
            "exit_code": self.exit_code, "error": self.error, "processes": self.processes,
            "duration_s": round(self.duration, 3), "requeue_after_s": self.requeue_after,
            "plan": self.plan.as_dict(),
            "applied": [{"key": r.step.key, "outcome": str(r.outcome), "detail": r.detail,
                         "duration_s": round(r.duration, 3),
                         "commands": [{"argv": list(c.command.argv), "rc": c.rc,
                                       "duration_s": round(c.duration, 3)} for c in r.results]}
                        for r in (self.report.results if self.report else [])],
            "final": self.final.as_dict(),
        }


def _exit_code(p: actions.Plan) -> int:
    if p.blocked:
        return EXIT_ERROR
    return EXIT_PENDING if (p.steps or p.in_flight) else EXIT_IN_SYNC


def _recorded(env: Environment, pass_no: int, current_step: list[str]
              ) -> tuple[RecordingRunner, list[int]]:
    """``env``'s runner, each command it runs counted and logged (tagged with the step in
    ``current_step``): [commands run, of them those that change the host (at INFO)]."""
    counts = [0, 0]

    def on_result(res: CommandResult) -> None:
        counts[0] += 1
        if res.command.mutates:
            counts[1] += 1
        logger.bind(pass_no=pass_no, obj=res.command.host, step=current_step[0]).log(
            "DEBUG" if not res.command.mutates else "INFO",
            "ran {} -> rc {} in {:.3f}s{}", " ".join(res.command.argv), res.rc, res.duration,
            "" if res.ok else f": {res.stderr.strip().splitlines()[-1:] or ''}")

    return RecordingRunner(env.runner, on_result), counts


def _log_plan(pass_no: int, log, the_plan: actions.Plan) -> None:
    """The plan's summary line (DEBUG when it only waits), what blocks it (WARNING) and
    what is in flight (INFO)."""
    waiting = {f.key for f in the_plan.in_flight}
    only_waiting = the_plan.only_waiting_on_others or (
        not the_plan.blocked and all(s.after & waiting for s in the_plan.steps))
    log.log("DEBUG" if only_waiting else "INFO",
            "plan: {} step(s), {} in flight, {} blocked, {} unmanaged", len(the_plan.steps),
            len(the_plan.in_flight), len(the_plan.blocked), len(the_plan.unmanaged))
    for b in the_plan.blocked:
        logger.bind(pass_no=pass_no, obj=b.object).warning("blocked: {}", b.reason)
    for f in the_plan.in_flight:
        if f.waiting_on:  # every pass, at INFO: what this node waits for, and on whom
            logger.bind(pass_no=pass_no, obj=f.object).info(
                "{}", actions.describe_in_flight(f))
            continue
        logger.bind(pass_no=pass_no, obj=f.object).info(
            "in flight: {} {}", f.what, "?" if f.percent is None else f"{f.percent:.1f}%")


def saved_candidate(spec_digest: str, env: Environment, memo: str, *,
                    tag: object = None) -> noop_memo.Saved | None:
    """The last no-op ``--once`` pass saved at ``memo`` for this spec (``spec_digest``: the
    digest ``spec.files`` reads, the spec not parsed), node, environment, code and ``tag``,
    or None (why not is logged at DEBUG). Reads no more than that file: the host is asked
    only by ``saved_pass``, once the caller has taken the instance lock."""
    key = noop_memo.key(spec_digest=spec_digest, node=env.node,
                        settings=_memo_settings(env), tag=tag)
    try:
        saved, why = noop_memo.load(memo, key)
    except Exception as exc:  # noqa: BLE001 - a miss: the pass parses and plans as always
        saved, why = None, f"{type(exc).__name__}: {exc}"
    if saved is None:
        logger.bind(obj=f"node {env.node}").debug("the last no-op pass ({}) not used: {}",
                                                  memo, why)
    return saved


def saved_pass(saved: noop_memo.Saved, env: Environment, memo: str, *,
               pass_no: int = 1) -> PassResult | noop_memo.Primed:
    """``saved`` (``saved_candidate``) asked again, before the spec is parsed: its plan as
    this pass's result when every answer read is the same, byte for byte (the pass parses,
    observes and plans nothing, and imports neither the spec's models nor the planner);
    else the answers already read, for ``reconcile_once(asked=...)``, which parses, observes
    and plans as always and asks none of them twice. The key held the spec's bytes and the
    code (models, validators and TOML reader included), so the spec is the one that was
    valid and planned when it was saved, and its plan is the one planning would make."""
    log = logger.bind(pass_no=pass_no, obj=f"node {env.node}")
    t0 = time.monotonic()
    runner, counts = _recorded(env, pass_no, ["-"])
    same, primed = noop_memo.check(saved, runner, env.resolve)
    if not same:
        log.debug("the last no-op pass ({}) not used: an answer differs", memo)
        primed.ran = counts[0]
        return primed
    log.debug("pass start: spec {}: plan: the last no-op pass's ({}), made from the same "
              "inputs (code, spec, every answer read)", "(not parsed)", memo)
    _log_plan(pass_no, log, saved.plan)
    return PassResult(saved.plan, saved.plan, None, _exit_code(saved.plan), counts[0],
                      time.monotonic() - t0, None)


def reconcile_once(loaded: LoadedSpec, env: Environment, *, dry_run: bool = False,
                   memory: Memory | None = None, pass_no: int = 1,
                   should_stop: Callable[[], bool] | None = None,
                   vet: Callable[[actions.Plan], str | None] | None = None,
                   vet_step: Callable[[actions.Step], str | None] | None = None,
                   memo: str | None = None, fresh: bool = False,
                   asked: noop_memo.Primed | None = None, memo_tag: object = None,
                   memo_notes: tuple[str, ...] = ()) -> PassResult:
    """One pass: observe, plan, apply, and plan again on what the apply left.

    Decides the pass's exit code and when to come back: an observation that fails ends the
    pass with an error before anything is planned (a plan on a partial view could undo
    something); a dry run or an empty plan applies nothing; otherwise the plan is applied
    and planned again on the state the executor last observed, with the same knowledge of
    what is stalled (unless a resume was issued now), so the result says what is still to
    do or blocked. ``memory`` carries what a pass cannot observe (when a pvmove started,
    stalls) from pass to pass and says when to requeue.

    ``should_stop()`` is asked before each step starts (the daemon's SIGTERM): once it is
    true, the steps not yet started are deferred and the pass ends normally.
    ``vet(plan)`` (``reconcile apply``) is asked before anything is applied: a reason from
    it ends the pass with ``EXIT_STALE_PLAN`` and that reason, nothing run. ``vet_step(step)``
    is asked right before a step's first command (``executing.apply``'s ``before_commands``):
    a reason from it ends the pass there with ``EXIT_STALE_PLAN``, nothing more run.
    ``memo`` (``reconcile --once``, a process's only pass): the file of the last no-op pass
    (``noop_memo``); its plan is this pass's when every input is the same, byte for byte,
    and this pass's is saved there when it may be reused (``fresh``: the file is removed
    first, and this pass plans from scratch), with ``memo_notes`` (the caller's warnings)
    and ``memo_tag`` in its key. ``asked``: what a ``saved_pass`` that missed already read
    (the file is not loaded again). Not for a node whose spec holds iSCSI: its observation
    reads CHAP secrets, of which no digest is ever kept."""
    from reconciler import planning
    from reconciler.spec import models
    memo = memo if memory is None else None  # the daemon reuses in memory (Memory.plan)
    memory = memory if memory is not None else Memory()
    log = logger.bind(pass_no=pass_no, obj=f"node {env.node}")
    t0 = time.monotonic()
    current_step = ["-"]  # tags each command's log line with the step that ran it
    runner, count = _recorded(env, pass_no, current_step)  # count[1]: changed the host
    spec = loaded.for_node(env.node)
    devices = observing.spec_devices(spec)
    md_targets = observing.md_targets(spec, env.ledger)
    lockd = any(vg.scope is models.Scope.SHARED for vg in spec.vg.values())
    quorum = any(vg.scope is models.Scope.SHARED and vg.lock_type is models.LockType.DLM
                 for vg in spec.vg.values())
    drbd_targets = observing.drbd_targets(spec, env.node, observing.drbd_ledger_path(env.ledger))
    lvm_targets = observing.lvm_targets(spec)
    # Pacemaker is read once per pass, when anything declared could be Pacemaker's (a VG,
    # a DRBD resource, a target; an md clone's devices or a session's disks, which a
    # Filesystem or an iSCSILogicalUnit primitive could mount or export): the reconciler
    # changes nothing Pacemaker manages, so a re-observation reuses it.
    pcmk_seen: list[state.Pacemaker | None] = []
    pcmk_wanted = bool(spec.vg or spec.iscsi_target or spec.drbd or spec.clone
                       or spec.iscsi_session)

    # The last no-op --once pass (noop_memo): its reads asked again, in order, before the
    # first observation; a miss gives that observation the answers already read.
    memo_key = saved = None
    first: list = [runner, env.resolve]  # what the first observation reads through
    if asked is not None:  # asked by saved_pass: counted here, asked on through this runner
        count[0] += asked.ran
        asked = dataclasses.replace(asked, runner=runner, ran=0)
        first = [asked, asked.resolve]
    secrets = frozenset(observing.chap_files(spec))
    if memo is not None and (any(observing.iscsi_parts(spec)) or secrets):
        noop_memo.forget(memo)  # (one an older version saved could hold a secret's digest)
        memo = None
    if memo is not None:
        memo_key = noop_memo.key(spec_digest=loaded.digest, node=env.node,
                                 settings=_memo_settings(env), tag=memo_tag)
    if memo is not None and fresh:
        noop_memo.forget(memo)
    elif memo is not None and asked is None:
        try:
            saved, why = noop_memo.load(memo, memo_key)
            if saved is None:
                log.debug("the last no-op pass ({}) not used: {}", memo, why)
            else:
                same, primed = noop_memo.check(saved, runner, env.resolve)
                first = [primed, primed.resolve]  # what it read, given to the observation
                if not same:
                    saved = None
                    log.debug("the last no-op pass ({}) not used: an answer differs", memo)
        except Exception as exc:  # noqa: BLE001 - a miss: the pass observes as always
            saved = None
            log.debug("the last no-op pass ({}) not used: {}: {}", memo, type(exc).__name__,
                      exc)
    transcript: list[noop_memo.Transcript] = []

    def observe() -> state.HostState:
        reader, resolve = runner, env.resolve
        if first:
            reader, resolve = first
            first.clear()
            if memo_key is not None:
                transcript.append(noop_memo.Transcript(reader, resolve, secrets))
                reader, resolve = transcript[0], transcript[0].resolve
        st = observing.observe(reader, host="local", devices=devices, resolve=resolve,
                               now=env.clock.now(), md_targets=md_targets,
                               iscsi_parts=observing.iscsi_parts(spec), lockd=lockd,
                               quorum=quorum,
                               drbd_targets=drbd_targets, lvm_targets=lvm_targets,
                               exported=observing.exported_devices(spec),
                               chap_files=observing.chap_files(spec),
                               pacemaker=pcmk_seen[0] if pcmk_seen else pcmk_wanted,
                               reports=memory.reports)
        if pcmk_wanted and not pcmk_seen:
            pcmk_seen.append(st.pacemaker)
        if env.lio_applier and st.iscsi is not None:
            st = dataclasses.replace(st, iscsi=dataclasses.replace(
                st.iscsi, lio_applier=env.lio_applier))
        return st

    log.debug("pass start: spec {} ({} file(s)), {} VG(s) and {} clone(s) for this node{}",
              loaded.digest[:12], len(loaded.files), len(spec.vg), len(spec.clone),
              " [dry run]" if dry_run else "")
    empty = actions.Plan(node=env.node, spec_digest=loaded.digest)
    st: state.HostState | None = None
    if saved is not None:
        the_plan = saved.plan
        memory.reused += 1
        log.debug("plan: the last no-op pass's ({}), made from the same inputs (code, spec, "
                  "every answer read)", memo)
    else:
        try:
            st = observe()
        except errors.ReconcilerError as exc:
            log.error("observation failed: {}", exc)
            return PassResult(empty, empty, None, EXIT_ERROR, count[0],
                              time.monotonic() - t0, env.requeue_seconds, str(exc))
        stalled = memory.stalled(st, env.clock.now(), env)
        reused = memory.reused
        the_plan = memory.plan(spec, st, node=env.node, digest=loaded.digest,
                               stalled=stalled, whole=loaded.spec)
        if memory.reused != reused:
            log.debug("plan: the previous pass's, made from the same inputs (spec, report, "
                      "files)")
        if memo is not None and transcript and transcript[0].secret:
            noop_memo.forget(memo)  # a pass that read a secret: no file (see noop_memo)
        elif memo_key and transcript and not stalled and reusable(spec, the_plan):
            try:
                noop_memo.save(memo, memo_key, transcript[0], the_plan, memo_notes)
            except Exception as exc:  # noqa: BLE001 - an optimisation: the pass is done
                log.debug("the no-op pass not saved to {}: {}: {}", memo, type(exc).__name__,
                          exc)
    the_plan = planning.note_stalls(the_plan, memory.stalls(the_plan, env.clock.now(), env))
    _log_plan(pass_no, log, the_plan)
    refusal = vet(the_plan) if vet is not None and not dry_run else None
    if refusal:
        log.error("not applied: {}", refusal)
        return PassResult(the_plan, the_plan, None, EXIT_STALE_PLAN, count[0],
                          time.monotonic() - t0, None, refusal, observed=st)
    if dry_run or not the_plan.steps:
        code = _exit_code(the_plan)
        return PassResult(the_plan, the_plan, None, code, count[0], time.monotonic() - t0,
                          memory.requeue_after(env, False, the_plan) if code == EXIT_PENDING else None,
                          observed=st)
    try:  # all of this process's code, before its first command (see ondemand)
        ondemand.load_everything()
    except ImportError as exc:
        why = (f"the reconciler's own code could not be imported before the first step "
               f"({exc}); nothing was run. Is an upgrade of the package under way? Run "
               f"again once it is installed (restart the service)")
        log.error("not applied: {}", why)
        return PassResult(the_plan, the_plan, None, EXIT_ERROR, count[0],
                          time.monotonic() - t0, None, why, observed=st)

    def on_step(r: executing.StepResult) -> None:
        lg = logger.bind(pass_no=pass_no, obj=r.step.action.object, step=r.step.key)
        level = ("ERROR" if r.outcome is executing.Outcome.FAILED else
                 "DEBUG" if r.outcome is executing.Outcome.DEFERRED
                 and not r.detail.startswith(actions.WAITING) else "INFO")
        lg.log(level, "{} {}: {}{}", r.step.action.verb, r.outcome, r.step.action.describe(),
               f" ({r.detail})" if r.detail else "")

    def before_step(step: actions.Step) -> bool:
        if should_stop is not None and should_stop():
            return False
        current_step[0] = step.key
        return True

    try:
        report = executing.apply(the_plan, runner, observe, st, sleep=env.clock.sleep,
                                 on_step=on_step, before_step=before_step,
                                 before_commands=vet_step)
        moved = [r for r in report.results if r.outcome in (
            executing.Outcome.STARTED, executing.Outcome.DONE) and r.results
            and isinstance(r.step.action, (actions.MoveExtents, actions.ResumeMoves))]
        if moved:
            memory.pvmove_started_at = env.clock.now()
        # The same knowledge as the first plan (what to resume, what is stalled), so that
        # what blocked this pass is still in its result: only a resume issued now is done.
        resumed = any(isinstance(r.step.action, actions.ResumeMoves) for r in moved)
        final = planning.plan(spec, report.state, node=env.node, spec_digest=loaded.digest,
                              stalled=frozenset() if resumed else stalled, whole=loaded.spec)
        final = planning.note_stalls(final, memory.stalls(final, env.clock.now(), env))
        final = _peer_waits(final, report)
    except errors.ReconcilerError as exc:
        log.error("pass aborted: {}", exc)
        return PassResult(the_plan, the_plan, None, EXIT_ERROR, count[0],
                          time.monotonic() - t0, env.requeue_seconds, str(exc))
    code = EXIT_ERROR if report.failed else _exit_code(final)
    if report.refused:
        log.error("stopped: {}", report.refused)
        code = EXIT_STALE_PLAN
    result = PassResult(the_plan, final, report, code, count[0], time.monotonic() - t0,
                        memory.requeue_after(env, report.changed, final) if code == EXIT_PENDING else None,
                        "; ".join([r.detail for r in report.failed]
                                  + ([report.refused] if report.refused else [])) or None,
                        observed=st)
    log.log("INFO" if report.changed or report.failed else "DEBUG",
            "pass end: exit {} in {:.3f}s, {} process(es): {} that change the host, {} "
            "observation(s)", code, result.duration, count[0], count[1], count[0] - count[1])
    return result


def _peer_waits(final: actions.Plan, report: executing.ApplyReport) -> actions.Plan:
    """``final`` with each step this pass deferred because a named node must act first (an
    iSCSI login before that node exported its target) as a wait on that node, the step
    after it: what only execution can find out is said like any other wait."""
    planned = {s.key for s in final.steps}
    waits: dict[str, actions.InFlight] = {}  # step key -> its wait
    for r in report.results:
        exc = r.error
        if (r.outcome is executing.Outcome.DEFERRED and r.step.key in planned
                and isinstance(exc, errors.CommandFailed) and exc.peer is not None):
            waits[r.step.key] = actions.InFlight(
                key=f"{r.step.key}:waiting", object=r.step.action.object, what=exc.peer[1],
                percent=None, waiting_on=exc.peer[0])
    if not waits:
        return final
    steps = tuple(dataclasses.replace(s, after=s.after | {waits[s.key].key}) if s.key in waits
                  else s for s in final.steps)
    return dataclasses.replace(final, steps=steps,
                               in_flight=final.in_flight + tuple(waits.values()))


@dataclass(frozen=True)
class Applied:
    """One step's outcome in one pass of a ``--wait`` run."""

    pass_no: int
    result: executing.StepResult
    # For a long operation started (or adopted) here: the pass that saw it end, if any.
    finished_pass: int | None = None
    # ... and the in-flight operations it stands for (the object's own; for a step on the
    # whole host, such as resuming interrupted pvmoves, everything then in flight)
    watching: frozenset[str] = frozenset()


@dataclass
class SettledResult:
    """What a ``--wait`` run did over all its passes: the story from plan to result.

    ``plan`` is the first pass's plan (what was about to be done), ``applied`` every step
    that ran, started, failed, was skipped or found done, in every pass in order (not the
    deferrals of steps waiting for an operation in flight), ``final`` what is left after
    the last pass. The figures
    add up what the log lines say: ``processes`` = ``changes`` (the commands steps ran) +
    ``observations`` (one ``lvm fullreport`` per pass and per verified step).
    """

    plan: actions.Plan
    final: actions.Plan
    applied: list[Applied]
    exit_code: int
    passes: int
    processes: int
    changes: int
    duration: float
    error: str | None = None
    last: PassResult | None = None

    @property
    def observations(self) -> int:
        return self.processes - self.changes

    @property
    def report(self) -> executing.ApplyReport | None:
        return self.last.report if self.last else None

    @property
    def requeue_after(self) -> float | None:
        return self.last.requeue_after if self.last else None

    def as_dict(self) -> dict:
        return {
            "exit_code": self.exit_code, "meaning": exit_meaning(self.exit_code, self.final),
            "error": self.error, "passes": self.passes, "processes": self.processes,
            "changes": self.changes, "observations": self.observations,
            "duration_s": round(self.duration, 3),
            "requeue_after_s": self.requeue_after,
            "plan": self.plan.as_dict(),
            "applied": [dict(_step_dict(a.result), pass_no=a.pass_no,
                             finished_pass=a.finished_pass) for a in self.applied],
            "final": self.final.as_dict(),
        }


def _step_dict(r: executing.StepResult) -> dict:
    return {"key": r.step.key, "object": r.step.action.object,
            "description": r.step.action.describe(), "outcome": str(r.outcome),
            "detail": r.detail, "duration_s": round(r.duration, 3),
            "commands": [{"argv": list(c.command.argv), "rc": c.rc,
                          "duration_s": round(c.duration, 3)} for c in r.results]}


def exit_meaning(code: int, final: actions.Plan, *, dry_run: bool = False) -> str:
    """What an exit code says about this run, in the README's words."""
    if code == EXIT_IN_SYNC:
        return "in sync with the spec"
    if code == EXIT_CHANGED:
        return "changes applied, now in sync with the spec (--detailed-exitcodes)"
    if code == EXIT_PENDING:
        if dry_run:
            return "drift found (dry run: nothing was changed)"
        if final.only_waiting_on_others:
            return f"{actions.WAITING}: {waited_for(final)}"
        return "changes still pending (an operation is in flight or steps are left)"
    if code == EXIT_TIMEOUT:
        if final.waits:
            return f"the --wait deadline passed, still {actions.WAITING}: {waited_for(final)}"
        return ("the --wait deadline passed with changes still pending"
                + (f": {waited_for(final)}" if final.in_flight else ""))
    if code == EXIT_STALE_PLAN:
        return ("the saved plan no longer matches (what changed is above); nothing more was "
                "run: make and review a new plan")
    if final.blocked:
        return "blocked: a safe plan cannot proceed (reasons above)"
    return "error (see above)"


def waited_for(final: actions.Plan) -> str:
    """What ``final`` still waits for, in one line: each wait on another node ("NODE: what
    it must do"), then each other operation in flight; "" when nothing is in flight."""
    waits = [f"{f.waiting_on}: {f.what}" for f in final.waits]
    others = [f"{f.object}: {f.what}" for f in final.in_flight if not f.waiting_on]
    return "; ".join(waits + others)


def detailed(code: int, changed: bool) -> int:
    """``--detailed-exitcodes``: ``EXIT_CHANGED`` for a run that changed the host and ended
    in sync; every other code as it is (0 is then "nothing to do")."""
    return EXIT_CHANGED if code == EXIT_IN_SYNC and changed else code


def _changes(r: PassResult) -> int:
    return sum(len(s.results) for s in r.report.results) if r.report else 0


def reconcile_until_settled(loaded: LoadedSpec, env: Environment, *, dry_run: bool = False,
                            max_passes: int = 100000,
                            on_pass: Callable[[PassResult], None] | None = None,
                            timeout: float | None = None,
                            go_on: Callable[[PassResult], bool | None] | None = None,
                            vet: Callable[[actions.Plan], str | None] | None = None,
                            vet_step: Callable[[actions.Step, int], str | None] | None = None
                            ) -> SettledResult:
    """``--wait``: repeat passes until in sync (0) or an error/block (1); 2 only when
    ``max_passes`` ran out or for a dry run. Every pass's applied steps are kept.

    ``timeout`` (seconds, on ``env.clock``): the deadline. The last pass runs at it; if that
    pass still leaves something pending (an operation in flight, a wait on another node),
    the run ends with ``EXIT_TIMEOUT``, never waiting past it.

    ``go_on(result)``, when given, overrides the decision after each pass: True goes on (a
    pass blocked on one object while another's operation is still moving), False stops (a
    forecast that reached a wait on another node), None keeps the rule above.

    ``vet(plan)`` and ``vet_step(step, n)``: see ``reconcile_once``; ``n`` is the pass as
    a forecast counts passes (only those in which a step ran, this one included)."""
    memory = Memory()
    first: PassResult | None = None
    result: PassResult | None = None
    applied: list[Applied] = []
    processes = changes = 0
    started_at = env.clock.now()
    n = 0
    looked_again = timed_out = False
    for n in range(1, max_passes + 1):
        ordinal = len({a.pass_no for a in applied}) + 1
        result = reconcile_once(
            loaded, env, dry_run=dry_run, memory=memory, pass_no=n, vet=vet,
            vet_step=None if vet_step is None else (
                lambda step, k=ordinal: vet_step(step, k)))
        first = first or result
        processes += result.processes
        changes += _changes(result)
        # Steps deferred while waiting come back every pass: the final plan says what is left.
        flying = result.final.in_flight
        for r in (result.report.results if result.report else []):
            if r.outcome is executing.Outcome.DEFERRED:
                continue
            mine = frozenset(f.key for f in flying if f.object == r.step.action.object)
            applied.append(Applied(n, r, watching=mine or frozenset(f.key for f in flying)))
        keys = {f.key for f in flying}
        for i, a in enumerate(applied):  # long operations seen to end in this pass
            if (a.finished_pass is None and a.result.outcome is executing.Outcome.STARTED
                    and not a.watching & keys):
                applied[i] = Applied(a.pass_no, a.result, n, a.watching)
        if on_pass:
            on_pass(result)
        # A pass that changed the host and then found something blocked looks once more: what
        # it just did may not be visible everywhere yet (udev makes a login's by-path names
        # a moment after iscsiadm returns).
        again = (result.exit_code == EXIT_ERROR and not looked_again and result.report is not None
                 and result.report.changed and not result.report.failed and not dry_run)
        looked_again = again
        verdict = go_on(result) if go_on is not None else None
        if verdict is False or dry_run or (
                verdict is None and result.exit_code != EXIT_PENDING and not again):
            break
        delay = result.requeue_after or env.requeue_seconds
        if timeout is not None:
            left = started_at + timeout - env.clock.now()
            if left <= 0:
                timed_out = result.exit_code == EXIT_PENDING
                break
            delay = min(delay, left)
        env.clock.sleep(delay)
    assert result is not None and first is not None
    return SettledResult(plan=first.plan, final=result.final, applied=applied,
                         exit_code=EXIT_TIMEOUT if timed_out else result.exit_code,
                         passes=n, processes=processes,
                         changes=changes, duration=env.clock.now() - started_at, error=result.error, last=result)
