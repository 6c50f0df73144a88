"""The forecast: every step of every pass until convergence, before anything runs.

A dry run's plan is one pass; the steps a long operation unlocks (the ``vgreduce`` after a
``pvmove``, DRBD's ``primary --force`` once both nodes are connected) come only in later
passes. The forecast finds them the only honest way this project has: it replays the passes
(``controller.reconcile_until_settled``, what ``--wait`` runs) on a **simulated copy of the
observed host**, and reports each step that ran there, pass by pass, in order:

* a simulated host (``--simulate``) is copied whole (``copy.deepcopy``: its devices, its
  clock, the peers on its simulated links); what the copy does is what the simulator would
  do, at the simulator's rates, so a long operation's expected duration is known;
* a real host is captured as ``reconcile capture`` does (read only) and a simulated host is
  seeded from the capture (``offline.simulated_host``): the one model the project has. Its
  copy speed is the simulator's, not the host's, so durations say "unknown". What the
  seeding cannot hold (lvmlockd, DRBD, an iSCSI session) leaves the forecast at the first
  pass, and it says why.

The replay goes on past an object that is blocked while another object's operation is still
moving (a blocked object never hides the forecast of unrelated ones), and stops where the
outcome depends on another node or on the operator, saying where and why. Passes are
numbered as the forecast counts them: only the passes in which a step ran (the passes that
only waited for an operation in flight are left out), so they compare with a real run's.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler import actions, controller, errors, executing, offline
from reconciler.logs import logger
from reconciler.spec.loading import LoadedSpec

# How a copy was made (``Forecast.copy``).
COPIED = "a copy of the simulated host"
SEEDED = "a simulated host seeded from what this host shows (reconcile capture)"


@dataclass(frozen=True)
class ForecastStep:
    """One step of the forecast, as it ran on the copy."""

    pass_no: int  # the forecast's pass (1: the dry run's own plan)
    key: str
    action: str
    symbol: str
    object: str
    description: str
    reason: str
    argv: tuple[tuple[str, ...], ...]
    long: bool  # a long operation this step started (it runs on after the pass)
    gives_up: str  # what data it overwrites or gives up ("": none); ``Action.gives_up``
    outcome: str  # on the copy: done, started, failed, skipped
    expected_s: float | None = None  # a long step: how long it ran on the copy (None: unknown)
    finished_pass: int | None = None  # a long step: the forecast's pass that saw it end
    detail: str = ""

    def as_dict(self) -> dict:
        return {"pass_no": self.pass_no, "key": self.key, "action": self.action,
                "symbol": self.symbol, "object": self.object,
                "description": self.description, "reason": self.reason,
                "argv": [list(a) for a in self.argv], "long": self.long,
                "gives_up": self.gives_up or None, "outcome": self.outcome,
                "expected_duration_s": (None if self.expected_s is None
                                        else round(self.expected_s, 1)),
                "expected_duration": (None if not self.long else "unknown"
                                      if self.expected_s is None
                                      else actions.plans._seconds(self.expected_s)),
                "finished_pass": self.finished_pass, "detail": self.detail or None}


@dataclass
class Forecast:
    """The steps of every pass until convergence (or until it stops, and why)."""

    steps: list[ForecastStep] = field(default_factory=list)
    passes: int = 0  # passes in which a step ran
    converged: bool = False
    stops: list[str] = field(default_factory=list)  # where it stops, and why
    copy: str = ""  # how the simulated copy was made (COPIED, SEEDED)
    unavailable: str = ""  # why there is no forecast beyond the first pass
    durations_known: bool = False
    duration_s: float | None = None  # the copy's time from the first pass to the last
    # every step any replayed pass planned, (key, its commands): what ``reconcile apply``
    # lets a pass plan (a step waiting for an operation is planned before it runs)
    planned: list[tuple[str, tuple[tuple[str, ...], ...]]] = field(default_factory=list)
    # each time a step shown above started its commands on the copy, (key, its commands,
    # the forecast's pass): what ``reconcile apply`` lets run, once each, in that pass or a
    # later one
    reviewed: list[tuple[str, tuple[tuple[str, ...], ...], int]] = field(default_factory=list)
    # the steps the replay planned but only ever deferred (never shown above, never run by
    # ``reconcile apply``), each with its last reason
    deferred: list[ForecastStep] = field(default_factory=list)
    # what was already in flight on the host itself, with the time left at the rate the host
    # shows (its own counters: md's and DRBD's sync speed; None: it shows none)
    in_flight: list[actions.InFlight] = field(default_factory=list)

    def pass_steps(self, n: int) -> list[ForecastStep]:
        return [s for s in self.steps if s.pass_no == n]

    @property
    def gives_up(self) -> list[ForecastStep]:
        return [s for s in self.steps if s.gives_up]

    def as_dict(self) -> dict:
        return {"copy": self.copy or None, "unavailable": self.unavailable or None,
                "passes": self.passes, "converged": self.converged,
                "stops": list(self.stops), "durations_known": self.durations_known,
                "duration_s": None if self.duration_s is None else round(self.duration_s, 1),
                "gives_up": len(self.gives_up),
                "in_flight": [{"object": f.object, "what": actions.describe_in_flight(f),
                               "percent": f.percent,
                               "expected_left_s": None if f.eta is None else round(f.eta, 1)}
                              for f in self.in_flight],
                "steps": [s.as_dict() for s in self.steps],
                "deferred": [s.as_dict() for s in self.deferred],
                "planned": [{"key": k, "argv": [list(a) for a in argv]}
                            for k, argv in self.planned],
                "reviewed": [{"key": k, "argv": [list(a) for a in argv], "pass_no": n}
                             for k, argv, n in self.reviewed]}

    def render(self) -> str:
        """The forecast in text (the command line colours its signs on a terminal)."""
        if self.unavailable:
            return f"Forecast: only the plan above: {self.unavailable}"
        head = (f"Forecast ({self.passes} pass(es) replayed on {self.copy}"
                + (f", about {actions.plans._seconds(self.duration_s)} in all"
                   if self.durations_known and self.duration_s else "") + "):")
        lines = [head]
        for f in self.in_flight:
            if f.waiting_on:
                lines.append(f"  … now: {f.object}: {actions.describe_in_flight(f)}")
                continue
            pct = "?%" if f.percent is None else f"{f.percent:.1f}%"
            left = ("time left unknown (the host shows no rate)" if f.eta is None else
                    f"about {actions.plans._seconds(f.eta)} left at the rate the host shows")
            lines.append(f"  … now: {f.object}: {f.what} in progress, {pct}, {left}")
        if not self.steps:
            lines.append("  nothing to do")
        for n in range(1, self.passes + 1):
            lines.append(f"  pass {n}:")
            for s in self.pass_steps(n):
                when = ""
                if s.long:
                    took = ("expected duration unknown" if s.expected_s is None
                            else f"expected {actions.plans._seconds(s.expected_s)}")
                    when = (f"  (long: {took}; ends by pass {s.finished_pass})"
                            if s.finished_pass else f"  (long: {took})")
                out = "" if s.outcome in ("done", "started") else f"  [{s.outcome}: {s.detail}]"
                lines.append(f"    {s.symbol} {s.object}: {s.description}{when}{out}")
                if s.gives_up:
                    lines.append(f"      {actions.GIVES_UP_MARK}: {s.gives_up}")
                for argv in s.argv:
                    lines.append(f"      $ {' '.join(argv)}")
        if self.deferred:
            lines.append("  never run in the replay (reconcile apply will not run them):")
        for s in self.deferred:
            lines.append(f"    {s.symbol} {s.object}: {s.description}  "
                         f"[deferred in the replay: {s.detail}]")
            if s.gives_up:
                lines.append(f"      {actions.GIVES_UP_MARK}: {s.gives_up}")
        if self.converged:
            lines.append("  then: in sync with the spec")
        for stop in self.stops:
            lines.append(f"  stops: {stop}")
        return "\n".join(lines)


# On the copy, passes that only wait may be as far apart as the operation they wait for
# needs (a multi-TB move is replayed in tens of passes, not thousands); a pass still comes
# as soon as the first operation in flight should end.
_COPY_REQUEUE_MAX = 86400.0


def simulated_copy(env: controller.Environment, *, simulated: bool,
                   capture: Callable[[str], object] | None = None
                   ) -> tuple[controller.Environment, str]:
    """An environment on a simulated copy of ``env``'s host, and how it was made. Raises
    ``ReconcilerError`` when the host cannot be held by the simulator (said why).
    ``capture(dir)`` writes the capture a real host's copy is seeded from (default: this
    host's, as ``reconcile capture`` makes it; tests pass a simulated host's)."""
    if simulated and capture is None:
        host = copy.deepcopy(env.runner)
        return dataclasses.replace(env, runner=host, resolve=host.resolve_device,
                                   clock=host.clock,
                                   requeue_max_seconds=_COPY_REQUEUE_MAX), COPIED
    if capture is None:
        def capture(directory: str) -> object:
            return offline.capture(directory, ledger=env.ledger)
    with tempfile.TemporaryDirectory(prefix="reconciler-forecast-") as tmp:
        capture(tmp)
        sim = offline.simulated_host(tmp)
    host = sim.host
    return dataclasses.replace(env, runner=host, resolve=host.resolve_device,
                               clock=host.clock, lio_applier="",
                               requeue_max_seconds=_COPY_REQUEUE_MAX), SEEDED


def _go_on(result: controller.PassResult) -> bool | None:
    """After each replayed pass: go on past a block while something else still moves;
    stop where only another node (or the operator) can move things."""
    final = result.final
    report = result.report
    moving = [f for f in final.in_flight if not f.waiting_on]
    changed = report is not None and report.changed
    if report is not None and report.failed:
        return False
    if result.exit_code == controller.EXIT_ERROR and final.blocked:
        return bool(moving or changed) or None
    if result.exit_code == controller.EXIT_PENDING and final.waits and not moving and not changed:
        return False  # nothing here moves until another node acts
    return None


def apply_go_on(result: controller.PassResult) -> bool | None:
    """``reconcile apply``'s rule after each pass: as ``--wait`` (a wait on another node is
    waited for), and past a block while something else still moves, as the forecast was."""
    verdict = _go_on(result)
    return None if verdict is False and not (result.report and result.report.failed) else verdict


def forecast(loaded: LoadedSpec, env: controller.Environment, *, simulated: bool,
             max_passes: int = 2000, capture: Callable[[str], object] | None = None,
             first: actions.Plan | None = None) -> Forecast:
    """Replay the passes on a simulated copy of the host; the host itself is untouched.
    ``first``: the dry run's own plan, whose operations in flight are reported with the
    time left the host's own counters give."""
    fc = _forecast(loaded, env, simulated=simulated, max_passes=max_passes, capture=capture)
    fc.in_flight = list(first.in_flight) if first is not None else []
    return fc


def _forecast(loaded: LoadedSpec, env: controller.Environment, *, simulated: bool,
              max_passes: int, capture: Callable[[str], object] | None) -> Forecast:
    """The replay, and what ``reconcile apply`` may later run from it: the steps shown are
    those that ran (not deferred) on the copy; ``reviewed`` holds each time one of them
    reached its first command, with the forecast's pass; a step only ever deferred is
    listed apart (``deferred``) and is never reviewed as runnable."""
    try:
        copy_env, how = simulated_copy(env, simulated=simulated, capture=capture)
    except (errors.ReconcilerError, OSError) as exc:
        return Forecast(unavailable=f"the host cannot be replayed in the simulator: {exc}")
    except Exception as exc:  # noqa: BLE001 - the audit itself must not fail with its forecast
        logger.opt(exception=exc).warning("forecast: copying the host failed")
        return Forecast(unavailable=f"copying the host into the simulator failed: "
                                    f"{type(exc).__name__}: {exc}")
    times: dict[int, float] = {}
    planned: dict[tuple, None] = {}
    started: list[tuple[str, tuple[tuple[str, ...], ...], int]] = []
    deferred: dict[str, tuple[int, executing.StepResult]] = {}  # key -> first pass, last
    start = copy_env.clock.now()

    def seen(r: controller.PassResult) -> None:
        times[len(times) + 1] = copy_env.clock.now()
        for s in r.plan.steps:
            planned[(s.key, _argv(s))] = None
        for res in (r.report.results if r.report else []):
            if res.outcome is executing.Outcome.DEFERRED:
                deferred[res.step.key] = (deferred.get(res.step.key, (len(times), res))[0],
                                          res)

    def record(step: actions.Step, n: int) -> None:
        started.append((step.key, _argv(step), n))

    try:
        with logger.contextualize(forecast=True):
            settled = controller.reconcile_until_settled(
                loaded, copy_env, max_passes=max_passes, on_pass=seen, go_on=_go_on,
                vet_step=record)
    except (errors.ReconcilerError, errors.UnsupportedCommand) as exc:
        return Forecast(copy=how, unavailable=f"the replay on {how} stopped, the simulator "
                                              f"cannot model this host: {exc}")
    except Exception as exc:  # noqa: BLE001 - said, and the dry run's own plan still stands
        logger.opt(exception=exc).warning("forecast: the replay failed")
        return Forecast(copy=how, unavailable=f"the replay on {how} failed: "
                                              f"{type(exc).__name__}: {exc}")
    fc = _from_settled(settled, times, start, how, durations=how == COPIED)
    fc.planned = list(planned)
    shown = {(a.result.step.key, _argv(a.result.step)) for a in settled.applied
             if a.result.outcome is not executing.Outcome.DEFERRED}
    fc.reviewed = [r for r in started if (r[0], r[1]) in shown]
    ran = {key for key, _ in shown}
    fc.deferred = [_deferred_step(res, first, settled, fc.passes)
                   for key, (first, res) in deferred.items() if key not in ran]
    if settled.passes >= max_passes and settled.exit_code == controller.EXIT_PENDING:
        fc.stops.append(f"the replay ended at its limit of {max_passes} passes, before the "
                        f"host was in sync")
    return fc


def _argv(step: actions.Step) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(c.argv) for c in step.action.commands())


def _deferred_step(res: executing.StepResult, first: int, settled: controller.SettledResult,
                   passes: int) -> ForecastStep:
    """A step the replay only ever deferred, as the forecast shows it: numbered with the
    forecast's pass in which it was first deferred (``passes + 1``: after the last)."""
    ran = sorted({a.pass_no for a in settled.applied
                  if a.result.outcome is not executing.Outcome.DEFERRED})
    later = [i for i, p in enumerate(ran, 1) if p >= first]
    act = res.step.action
    return ForecastStep(
        pass_no=later[0] if later else passes + 1, key=res.step.key,
        action=type(act).__name__, symbol=str(act.symbol), object=act.object,
        description=act.describe(), reason=res.step.reason, argv=(), long=False,
        gives_up=act.gives_up(), outcome=str(res.outcome), detail=res.detail)


def _from_settled(settled: controller.SettledResult, times: dict[int, float], start: float,
                  how: str, *, durations: bool) -> Forecast:
    shown = [a for a in settled.applied if a.result.outcome is not executing.Outcome.DEFERRED]
    numbers = {p: i for i, p in enumerate(sorted({a.pass_no for a in shown}), 1)}

    def number(p: int | None) -> int | None:
        if p is None:
            return None
        # a pass that only saw an operation end counts as the next pass that ran a step
        later = [q for q in numbers if q >= p]
        return numbers[min(later)] if later else None  # after the last pass

    steps = []
    for a in shown:
        r = a.result
        act = r.step.action
        expected = None
        if act.long and durations and a.finished_pass is not None:
            expected = times.get(a.finished_pass, start) - times.get(a.pass_no, start)
        if r.outcome is executing.Outcome.SKIPPED:
            argv: tuple[tuple[str, ...], ...] = ()
        else:  # what ran on the copy (nothing: found done already)
            argv = tuple(tuple(c.command.argv) for c in r.results)
        steps.append(ForecastStep(
            pass_no=numbers[a.pass_no], key=r.step.key, action=type(act).__name__,
            symbol=str(act.symbol), object=act.object, description=act.describe(),
            reason=r.step.reason, argv=argv,
            long=act.long and r.outcome is executing.Outcome.STARTED, gives_up=act.gives_up(),
            outcome=str(r.outcome), expected_s=expected,
            finished_pass=number(a.finished_pass), detail=r.detail))
    final = settled.final
    stops = [f"{b.object}: BLOCKED: {b.reason}" for b in final.blocked]
    stops += [f"{s.action.object}: {s.action.describe()}: held back while the block in its VG "
              f"lasts" for s in final.held]
    stops += [f"{f.object}: {actions.describe_in_flight(f)}" for f in final.waits]
    stops += [f"{f.object}: {f.what} still in flight" for f in final.in_flight
              if not f.waiting_on]
    if settled.error:
        stops.append(f"a step failed on the copy: {settled.error}")
    if final.steps and not settled.error:
        stops.append(f"{len(final.steps)} step(s) left after it: "
                     + "; ".join(f"{s.action.object}: {s.action.describe()}"
                                 for s in final.steps))
    last = max(times.values()) if times else start
    return Forecast(steps=steps, passes=len(numbers), converged=final.converged, stops=stops,
                    copy=how, durations_known=durations,
                    duration_s=(last - start) if durations else None)


# -- saved plans: ``--once --dry-run --out PLAN.json`` and ``reconcile apply PLAN.json`` --------

PLAN_FORMAT = "reconciler-plan/2"  # 2: forecast.reviewed and forecast.deferred
# Observed facts that move on their own while nothing is done (progress, rates, the time):
# left out of the relevant observed state, so an operation in flight does not stale a plan.
_VOLATILE = frozenset({"observed_at", "pollers", "sync_completed", "sync_speed", "speed_kib",
                       "sync_done", "eta"})


def _plain(value: object) -> object:
    """JSON-able, in a stable order: dataclasses as dicts of their fields (volatile ones and
    private ones left out), mappings with string keys, sets sorted."""
    import enum
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_") and f.name not in _VOLATILE
                and "percent" not in f.name}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def relevant_state(st, spec) -> dict:
    """What of the observed state the plan is made from: everything observed for the spec's
    objects (the VGs it declares, every PV, its devices, md arrays, the ledgers, iSCSI, DRBD,
    lvmlockd), without what moves on its own (progress, rates, the time) and without the VGs
    it does not manage (never touched)."""
    import json
    doc = _plain(st)
    doc["vgs"] = {name: vg for name, vg in doc.get("vgs", {}).items() if name in spec.vg}
    return json.loads(json.dumps(doc))  # as it reads back from PLAN.json (plain ints)


def digest(doc: object) -> str:
    import hashlib
    import json
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def _flat(doc: object, prefix: str = "") -> dict[str, object]:
    if isinstance(doc, dict):
        out: dict[str, object] = {}
        for k, v in doc.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: doc}


def state_diff(before: dict, after: dict) -> list[str]:
    """What changed between two relevant states, one line per key path."""
    a, b = _flat(before), _flat(after)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"- {key}: {a[key]!r} (gone)")
        elif key not in a:
            lines.append(f"+ {key}: {b[key]!r} (new)")
        elif a[key] != b[key]:
            lines.append(f"~ {key}: {a[key]!r} -> {b[key]!r}")
    return lines


def spec_texts(loaded: LoadedSpec) -> dict[str, str]:
    from pathlib import Path
    out = {}
    for f in loaded.files:
        try:
            out[f] = Path(f).read_text()
        except OSError as exc:
            out[f] = f"<unreadable: {exc}>"
    return out


def _reviewed_steps(forecast: dict) -> set[tuple[str, str]]:
    import json
    return {(s["key"], json.dumps(s["argv"])) for s in forecast["planned"]}


def saved_plan(loaded: LoadedSpec, spec_path: str, result: controller.PassResult,
               fc: Forecast, *, node: str, simulate: str | None) -> dict:
    """The document ``--out PLAN.json`` writes: the forecast, the spec's digest and files,
    and the relevant observed state with its digest."""
    import datetime
    from pathlib import Path
    observed = relevant_state(result.observed, loaded.for_node(node)) if result.observed else {}
    return {"format": PLAN_FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "node": node, "simulate": simulate,
            "spec": {"path": str(Path(spec_path).absolute()), "digest": loaded.digest,
                     "files": spec_texts(loaded)},
            "observed": {"digest": digest(observed), "state": observed},
            "plan": result.plan.as_dict(), "forecast": fc.as_dict()}


def read_saved_plan(path: str) -> dict:
    import json
    try:
        doc = json.loads(open(path).read())
    except OSError as exc:
        raise errors.ReconcilerError(f"cannot read the plan {path}: {exc}") from None
    except ValueError as exc:
        raise errors.ReconcilerError(f"{path} is not a saved plan (JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
        raise errors.ReconcilerError(f"{path} is not a saved plan of format {PLAN_FORMAT} "
                                     f"(written by reconcile --once --dry-run --out PLAN.json)")
    if doc["forecast"].get("unavailable"):
        raise errors.ReconcilerError(
            f"{path} holds no forecast beyond the first pass "
            f"({doc['forecast']['unavailable']}): apply runs only a reviewed forecast")
    return doc


def spec_changes(doc: dict, loaded: LoadedSpec) -> list[str]:
    """What differs between the spec the plan was made from and the one on disk now, as a
    unified diff ("" when the digests agree)."""
    import difflib
    if loaded.digest == doc["spec"]["digest"]:
        return []
    old, new = doc["spec"]["files"], spec_texts(loaded)
    lines = [f"the spec changed: digest {doc['spec']['digest'][:12]} when planned, "
             f"{loaded.digest[:12]} now"]
    for f in sorted(set(old) | set(new)):
        lines += [line.rstrip("\n") for line in difflib.unified_diff(
            old.get(f, "").splitlines(True), new.get(f, "").splitlines(True),
            fromfile=f"{f} (planned)" if f in old else "/dev/null",
            tofile=f"{f} (now)" if f in new else "/dev/null")]
    return lines


def state_changes(doc: dict, loaded: LoadedSpec, st, node: str) -> list[str]:
    now = relevant_state(st, loaded.for_node(node))
    if digest(now) == doc["observed"]["digest"]:
        return []
    return ([f"the observed state changed: digest {doc['observed']['digest'][:12]} when "
             f"planned, {digest(now)[:12]} now"] + state_diff(doc["observed"]["state"], now))


class Vetter:
    """What ``reconcile apply`` lets run, from a saved plan.

    ``vet(plan)``, before each pass: every step the pass plans must be one the replay
    planned, with the same commands (else nothing of the pass runs). ``vet.step(step, n)``,
    right before a step's first command (once its own checks on the host as observed now
    let it run): the step must be one the forecast *shows* run, with the same commands,
    reviewed for pass ``n`` or an earlier one (passes counted as the forecast counts them),
    and each run the forecast shows authorizes one run. A step the replay only ever
    deferred is never authorized."""

    def __init__(self, doc: dict) -> None:
        import json
        fc = doc["forecast"]
        self._planned = _reviewed_steps(fc)
        self._left: dict[tuple[str, str], list[int]] = {}
        for r in fc.get("reviewed", []):
            self._left.setdefault((r["key"], json.dumps(r["argv"])), []).append(r["pass_no"])
        self._deferred = {d["key"]: d for d in fc.get("deferred", [])}
        self._shown = {s["key"] for s in fc["steps"]}

    def __call__(self, plan: actions.Plan) -> str | None:
        import json
        for s in plan.steps:
            argv = json.dumps([list(c.argv) for c in s.action.commands()])
            if (s.key, argv) not in self._planned:
                return (f"this pass would run a step the saved plan does not hold: "
                        f"{s.action.object}: {s.action.describe()} ("
                        + "; ".join(" ".join(c.argv) for c in s.action.commands()) + ")")
        return None

    def step(self, step: actions.Step, n: int) -> str | None:
        import json
        what = f"{step.action.object}: {step.action.describe()}"
        left = self._left.get((step.key, json.dumps([list(c.argv)
                                                     for c in step.action.commands()])))
        if not left:
            d = self._deferred.get(step.key)
            why = (f"the saved plan shows it only deferred in the replay ({d['detail']})"
                   if d is not None else
                   "the saved plan shows it run no more times than it ran already"
                   if step.key in self._shown else
                   "the saved plan never shows it run, with these commands")
            return f"{what}: not reviewed as runnable: {why}"
        ready = [p for p in left if p <= n]
        if not ready:
            return (f"{what}: not run in this pass: reviewed for pass {min(left)} of the "
                    f"forecast, this is its pass {n}")
        left.remove(min(ready))
        return None


def vetter(doc: dict) -> Vetter:
    return Vetter(doc)
