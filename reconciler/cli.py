"""Command line: parse arguments → build objects → one controller call → exit code.

Exit codes (the same for every subcommand, like ``terraform plan -detailed-exitcode``):
  0  in sync (or: the spec is valid / the capture was written)
  1  error: bad spec, failed command, or a plan that refuses to proceed (with why)
  2  drift found (dry run) or changes still pending (long operations in flight, or
     waiting on another node)
  3  reconcile apply PLAN.json: the saved plan no longer matches (spec or observed state
     changed, or a pass would run a step it does not hold); nothing more was run
  4  --wait --wait-timeout: the deadline passed with changes still pending or still
     waiting on another node (the last line says what it waited for)
  5  only with --detailed-exitcodes: changes applied, now in sync (0: nothing to do)

A usage error (an unknown option, a bad value, a misspelt subcommand, no --spec for the
daemon) is an error too: exit 1, never argparse's 2, which would read as "drift found".
Output to a pipe whose reader went away (``reconcile ... | head -1``) is dropped quietly: the
run goes on and ends with the exit code it earned.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import socket
import sys
from pathlib import Path

from reconciler import actions, controller, errors, executing, logs, paths
from reconciler.logs import logger

DEFAULT_SPEC = "/etc/reconciler/specs"
# A command abandoned after its timeout, remembered for the next reconciler process.
STUCK_FILE = paths.STUCK_FILE

EPILOG = """\
exit codes:
  0  in sync with the spec (nothing to do, or everything done); also when nothing in the
     spec applies to this host (a warning names the nodes it does name)
  1  error: invalid spec, a command failed, the plan is blocked (reasons are printed), an
     explicit --node the spec never names, or a usage error (unknown option, bad value,
     unknown subcommand, the daemon started without --spec)
  2  drift found (--dry-run) or changes still pending (a pvmove or sync in flight, or
     "waiting on another node: NODE: what it must do")
  3  reconcile apply PLAN.json: the saved plan no longer matches (the spec or the
     relevant observed state changed: the diff is printed; or a pass would run a step the
     plan does not hold); nothing more was run
  4  --wait --wait-timeout DURATION: the deadline passed and changes are still pending
     or another node is still waited for (named on the last line)
  5  only with --detailed-exitcodes (like Puppet's): changes were applied and the host is
     now in sync; 0 then means nothing needed doing

simulated hosts (--simulate NAME), each made for an example spec:
{hosts}

without --once, reconcile runs as a daemon (see `systemd/reconciler.service`; it needs an
explicit --spec, so a bare `reconcile` only prints this usage): a pass at
start, on every spec change (debounced), on SIGHUP, every --resync-interval seconds, sooner
while an operation is in flight; SIGTERM finishes the current step and exits 0.

subcommands:
  reconcile status [--status-dir DIR] the daemon's last pass: 0 in sync, 2 pending, 1 otherwise
  reconcile validate [--spec PATH]   check spec files (for GitOps CI); exit 0 or 1
  reconcile schema                   print the JSON Schema of spec files
  reconcile capture DIR [--simulate SOURCE]
                                     save everything a pass observes, for --simulate DIR
  reconcile [--simulate HOST] adopt --out DIR [--vg NAME ...]
                                     write the spec of what the host has now
  reconcile [--simulate SOURCE] apply PLAN.json
                                     run a plan saved by --once --dry-run --out PLAN.json,
                                     or nothing (exit 3 with what changed)
"""


SUBCOMMAND_NAMES = ("status", "validate", "schema", "capture", "adopt", "apply")


def version() -> str:
    """The installed distribution's version; from a source checkout, the source's."""
    from importlib import metadata

    from reconciler import __version__
    try:
        return metadata.version("reconciler")
    except metadata.PackageNotFoundError:
        return __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1 (2 means "drift found" here)."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(controller.EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _hosts_help() -> str:
    from reconciler.simulate import demo
    return "\n".join(f"  {e.name:<9} {e.spec:<38} {e.about}" for e in demo.HOSTS.values())


class _RunParser(_Parser):
    """The parser of a run (``--once`` or the daemon). Its epilog lists the simulated hosts,
    which are made by the simulator: that is imported when the help is shown, not by every
    pass that parses its arguments (issue 22: start-up)."""

    def format_help(self) -> str:
        self.epilog = EPILOG.format(hosts=_hosts_help())
        return super().format_help()


class _Version(argparse.Action):
    """``--version``, as argparse's own, the version looked up (the package's metadata) only
    when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser._print_message(f"{parser.prog} {version()}\n", sys.stdout)
        parser.exit()


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h30m``, ``2d``: seconds (a bare number is seconds)."""
    import re
    t = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd]?)", t)
    if not t or "".join(n + u for n, u in parts) != t or (len(parts) > 1 and not all(
            u for _, u in parts)):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 10m, 1h30m)")
    value = sum(float(n) * _UNITS[u or "s"] for n, u in parts)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive duration, not {text!r}")
    return value


def _run_parser() -> argparse.ArgumentParser:
    """The options of a run: one pass (``--once``, with ``--dry-run``, ``--wait``,
    ``--fresh``...) or the daemon (its own group)."""
    p = _RunParser(
        prog="reconcile", description="Converge this host's storage to the TOML spec.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_Version)
    p.add_argument("--spec", default=None, metavar="PATH",
                   help=f"spec file or directory of *.toml (with --once, default {DEFAULT_SPEC}; "
                   "the daemon needs it given)")
    p.add_argument("--node", default=None, metavar="NAME",
                   help="the node whose slice of the spec to reconcile (default: host name); "
                   "one the spec never names is an error")
    p.add_argument("--once", action="store_true", help="one pass, then exit with a status")
    p.add_argument("--dry-run", action="store_true",
                   help="observe for real, change nothing, print drift, plan and the "
                   "forecast (every step of every pass, replayed on a simulated copy)")
    p.add_argument("--wait", action="store_true",
                   help="repeat passes until in sync or blocked, showing progress (and, at "
                   "least once a minute, what it waits for)")
    p.add_argument("--wait-timeout", type=_duration, default=None, metavar="DURATION",
                   help="with --wait: give up at this deadline (90s, 10m, 1h30m) with exit 4 "
                   "and what it still waited for; default: no deadline")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--detailed-exitcodes", action="store_true",
                   help="with --once: exit 5 when changes were applied and the host is now in "
                   "sync, 0 only when nothing needed doing (as Puppet's --detailed-exitcodes)")
    p.add_argument("--out", default=None, metavar="PLAN.json",
                   help="with --once --dry-run: save the forecast, with the spec's digest and "
                   "the relevant observed state's, for 'reconcile apply PLAN.json'")
    p.add_argument("--simulate", metavar="SOURCE", default=None,
                   help="run against a simulated host: an embedded one (default, seed000, "
                   "seed001, seed002, seed004, cluster, ...; listed below) or a directory written by "
                   "'reconcile capture'. --node defaults to the node the host plays")
    p.add_argument("--fresh", action="store_true",
                   help="with --once: observe and plan from scratch even when every answer "
                   "the last no-op pass read is the same (see 'The no-op pass' in the README)")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    d = p.add_argument_group("daemon (without --once)")
    d.add_argument("--resync-interval", type=_positive, default=300.0, metavar="SECONDS",
                   help="pass at least this often, to catch changes made by hand (default 300)")
    d.add_argument("--status-dir", default=None, metavar="DIR",
                   help="where status.json is written (default /run/reconciler)")
    d.add_argument("--metrics-file", default=None, metavar="FILE",
                   help="Prometheus text file (node_exporter textfile collector); default "
                   "STATUS_DIR/reconciler.prom, 'none' to disable")
    d.add_argument("--lock-file", default=None, metavar="FILE",
                   help="single-instance lock, also taken by a --once pass that may change "
                   "the host (default /run/reconciler/lock)")
    # The subcommands in the usage line too (argparse knows only this parser's options).
    own = p.format_usage().removeprefix("usage: ").rstrip().replace("%", "%%")
    p.usage = (f"{own}\n       reconcile {{{','.join(SUBCOMMAND_NAMES)}}} ...   "
               f"(reconcile SUBCOMMAND --help)")
    return p


def _environment(args: argparse.Namespace, *, iscsi_targets: bool = True
                 ) -> tuple[controller.Environment, list[str]]:
    """The host to act on, and notes on what a simulated one leaves out. ``iscsi_targets``:
    whether the spec could declare an iSCSI target (the daemon's, which it may read again
    with one, always could): only then is the LIO applier looked up, with iSCSI's adapter
    (a pass reads it only for a spec with iSCSI tables, issue 22)."""
    if args.simulate:
        from reconciler import offline
        sim = offline.simulated_host(args.simulate, node=args.node)
        host = sim.host
        node = args.node or sim.node or socket.gethostname()
        return controller.Environment(runner=host, node=node, resolve=host.resolve_device,
                                      clock=host.clock), sim.notes
    from reconciler.runner import SubprocessRunner
    lio_applier = ""
    if iscsi_targets:
        from reconciler.adapters import iscsi
        lio_applier = iscsi.applier_problem()
    return controller.Environment(runner=SubprocessRunner(stuck_file=STUCK_FILE),
                                  node=args.node or socket.gethostname(),
                                  lio_applier=lio_applier), []


def _check_spec_path(spec: str) -> str | None:
    """A clear message when the spec location itself is missing (not "invalid spec")."""
    path = Path(spec)
    if not path.exists():
        kind = "file" if path.suffix == ".toml" else "directory"
        return f"spec {kind} {spec} does not exist (--spec PATH: a *.toml file or a directory of them)"
    return None


def _logging(level: str | None) -> bool:
    """Logging set up at ``level``; False (the error printed) for a level loguru refuses."""
    try:
        logs.setup(level)
    except logs.LogLevelError as exc:
        print(f"reconcile: error: {exc}", file=sys.stderr)
        return False
    if logs.writes_every_pass():  # loguru and its sink now, not in the first pass
        logs.attach()
    return True


def _load_spec(spec: str, *, trusted_only: bool = False):
    """The spec at ``spec`` loaded (``trusted_only``: its files' permissions checked first),
    or the exit code of the refusal, printed: what `validate` and one pass start with."""
    from reconciler.spec import loading, permissions
    missing = _check_spec_path(spec)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return controller.EXIT_ERROR
    try:
        if trusted_only:
            permissions.check_permissions(spec)
        return loading.load(spec)
    except errors.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR


def _nodes_named(loaded) -> list[str]:
    spec = loaded.spec
    return sorted({n for obj in (*spec.vg.values(), *spec.clone.values(),
                                 *spec.iscsi_target.values(), *spec.iscsi_session.values(),
                                 *spec.drbd.values())
                   for n in obj.nodes})


def _nothing_for_node(loaded, node: str) -> str | None:
    """Nothing in a non-empty spec applies to ``node``: say which nodes it names."""
    mine = loaded.for_node(node)
    if (mine.vg or mine.clone or mine.iscsi_target or mine.iscsi_session or mine.drbd
            or not (loaded.spec.vg or loaded.spec.clone or loaded.spec.iscsi_target
                    or loaded.spec.iscsi_session or loaded.spec.drbd)):
        return None
    return (f"nothing in the spec applies to node {node}: it names node(s) "
            f"{', '.join(_nodes_named(loaded))} (choose one with --node NAME); "
            f"this node is in sync with it (exit 0)")


def _unknown_node(loaded, node: str) -> str | None:
    """An explicit ``--node`` that a non-empty spec never names: a typo must not read as
    "in sync" (exit 0) and keep a CI job green."""
    if _nothing_for_node(loaded, node) is None:
        return None
    return (f"--node {node}: the spec never names node {node} (no VG, clone, DRBD resource, "
            f"iSCSI target or session for it); it names node(s) "
            f"{', '.join(_nodes_named(loaded))}")


_COLOURS = {"+": "32", "~": "33", ">": "36", "-": "31", "…": "34", "!": "1;31"}


def _coloured() -> bool:
    """Colour on a terminal only, and never with NO_COLOR set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _paint(text: str) -> str:
    """A plan or forecast with its signs (and what gives up data) in colour, on a terminal."""
    if not _coloured():
        return text
    import re
    out = []
    for line in text.splitlines():
        if actions.GIVES_UP_MARK in line:
            line = f"\033[1;31m{line}\033[0m"
        else:
            m = re.match(r"^(\s+)(\S+)( .*)$", line)
            if m and m.group(2) in _COLOURS:
                line = f"{m.group(1)}\033[{_COLOURS[m.group(2)]}m{m.group(2)}\033[0m{m.group(3)}"
        out.append(line)
    return "\n".join(out)


def _show_plan(*texts: str) -> None:
    """The plan (and the forecast), then the legend of the signs they use."""
    for text in texts:
        print(_paint(text))
    signs = actions.legend("\n".join(texts))
    if signs:
        print(signs)


def _print_result(result: controller.PassResult, output: str,
                  warnings: list[str] = (), forecast=None) -> None:
    if output == "json":
        doc = result.as_dict()
        doc["warnings"] = list(warnings)
        if forecast is not None:
            doc["forecast"] = forecast.as_dict()
        print(json.dumps(doc, indent=2))
        return
    for w in warnings:
        print(f"warning: {w}")
    _show_plan(str(result.plan), *([forecast.render()] if forecast is not None else []))
    if result.report:
        print("Applied:")
        for r in result.report.results:
            print(f"  {r.outcome:>12}  {r.step.action.object}: {r.step.action.describe()}"
                  + (f"  ({r.detail})" if r.detail else ""))
        if result.final is not result.plan:
            print("After this pass:")
            print("\n".join("  " + line for line in str(result.final).splitlines()[1:]))
    if result.error:
        print(f"error: {result.error}")


def _print_settled(result: controller.SettledResult, *, dry_run: bool,
                   simulated: bool = False) -> None:
    """The end of a ``--wait`` run: every step applied over all passes, what is left, and
    what the exit code means (the plan was printed before the run)."""
    from reconciler import status
    shown = [a for a in result.applied if a.result.outcome is not executing.Outcome.DEFERRED]
    print(f"\nApplied over {result.passes} pass(es) in {status.duration(result.duration)}"
          + (" of simulated time" if simulated else "") + ":")
    if not shown:
        print("  nothing")
    for a in shown:
        r = a.result
        when = f"pass {a.pass_no}"
        if r.outcome is executing.Outcome.STARTED:
            when += (f", finished by pass {a.finished_pass}" if a.finished_pass
                     else ", still in flight")
        print(f"  {r.outcome:>12}  {r.step.action.object}: {r.step.action.describe()}  "
              f"({when}{'; ' + r.detail if r.detail else ''})")
    print("Left:")
    print("\n".join(str(result.final).splitlines()[1:]))
    print(f"Processes: {result.processes} ({result.changes} that change the host, "
          f"{result.observations} observations)")
    print("  (the processes the reconciler started; their own children, such as fsadm's "
          "helpers or a pvmove's poller, are not seen and not counted)")
    if result.error:
        print(f"error: {result.error}")
    print(f"Exit {result.exit_code}: "
          f"{controller.exit_meaning(result.exit_code, result.final, dry_run=dry_run)}.")


class _Progress:
    """``--wait``'s progress: bars redrawn in place on a TTY; otherwise one line when an
    operation appears, at each quarter of its progress, and when it ends; never a line per
    pass. A wait on another node is said when it starts, when it changes, and at least
    once a minute (``WAIT_REMINDER`` seconds of the run's clock) while it lasts: a wait
    that may never end is never silent."""

    WAIT_REMINDER = 60.0

    def __init__(self, clock) -> None:
        from reconciler import status
        self.clock = clock
        self.etas = status.EtaTracker()
        self.seen: dict[str, tuple[str, int]] = {}  # key -> (label, quarter last printed)
        # key -> (what it waits for, when first seen, when last printed)
        self.waits: dict[str, tuple[str, float, float]] = {}

    def __call__(self, r: controller.PassResult) -> None:
        from reconciler import status
        flying = [f for f in r.final.in_flight if not f.waiting_on]
        eta = self.etas.update(flying, self.clock.now())
        bars = ["  " + status.progress_line(f.object, f.what, f.percent, eta.get(f.key),
                                            fancy=True) for f in flying]
        bars += [f"  … {f.object}: {actions.describe_in_flight(f)}" for f in r.final.waits]
        if logs.progress(bars):  # a TTY: bars redrawn in place under the log lines
            return
        self._waits(r.final.waits, self.clock.now(), r.requeue_after or 0.0)
        now = {f.key for f in flying}
        for key, (label, _q) in list(self.seen.items()):
            if key not in now:
                print(f"  … {label}: finished", file=sys.stderr)
                del self.seen[key]
        for f in flying:
            quarter = -1 if f.percent is None else int(min(100.0, f.percent) // 25)
            label = f"{f.object}: {f.what}"
            prev = self.seen.get(f.key)
            if prev is None or quarter > prev[1]:
                pct = "?" if f.percent is None else f"{f.percent:5.1f}%"
                left = eta.get(f.key)
                print(f"  … {label} {pct}" + (f", ETA {status.duration(left)}"
                                             if left is not None else "")
                      + ("" if prev else " (started)"), file=sys.stderr)
                self.seen[f.key] = (label, quarter)

    def _waits(self, waits, now: float, next_pass: float) -> None:
        """Say each wait when it starts or changes, and again whenever the next pass (in
        ``next_pass`` seconds) would come more than ``WAIT_REMINDER`` after the last time
        it was said: never a minute without a word."""
        from reconciler import status
        keys = {f.key for f in waits}
        for key, (label, _t0, _t) in list(self.waits.items()):
            if key not in keys:
                print(f"  … {label}: no longer waited for", file=sys.stderr)
                del self.waits[key]
        for f in waits:
            label = f"{f.object}: {actions.describe_in_flight(f)}"
            prev = self.waits.get(f.key)
            if (prev is not None and prev[0] == label
                    and now - prev[2] + next_pass <= self.WAIT_REMINDER):
                continue
            since = prev[1] if prev is not None and prev[0] == label else now
            print(f"  … {label}" + (f" (for {status.duration(now - since)})"
                                    if now > since else ""), file=sys.stderr)
            self.waits[f.key] = (label, since, now)

    def close(self) -> None:
        logs.progress([])


def _in_flight_line(record: dict) -> bool:
    # The per-pass "in flight: ..." and "waiting on another node: ..." lines: --wait's
    # progress says the same once per change (and a wait at least once a minute).
    return record["message"].startswith(("in flight: ", actions.WAITING + ": "))


def _preview_pass(record: dict) -> bool:
    # The plan-only pass before --wait applies: its plan is printed on stdout instead.
    return record["extra"].get("pass_no") == 0


def _cmd_run(argv: list[str]) -> int:
    """`reconcile [--once] ...`: the daemon, or one pass (``--wait``: until settled)."""
    args = _run_parser().parse_args(argv)
    if not _logging(args.log_level):
        return controller.EXIT_ERROR
    if not args.once:
        if args.spec is None:
            # A bare `reconcile` must not start managing this host: the daemon is started on
            # purpose, with its spec named (as the unit does).
            _run_parser().print_usage(sys.stderr)
            print("reconcile: error: no --spec: the daemon needs the spec named (the unit "
                  f"runs `reconcile --spec {DEFAULT_SPEC}`); one pass: reconcile --once "
                  "[--dry-run]; see reconcile --help", file=sys.stderr)
            return controller.EXIT_ERROR
        return _run_daemon(args)
    if args.spec is None:
        args.spec = DEFAULT_SPEC
    if args.wait_timeout is not None and not args.wait:
        print("error: --wait-timeout goes with --wait", file=sys.stderr)
        return controller.EXIT_ERROR
    if args.out and not args.dry_run:
        print("error: --out goes with --once --dry-run (it saves the forecast)", file=sys.stderr)
        return controller.EXIT_ERROR
    ready = _prepare_once(args)
    if isinstance(ready, int):
        return ready
    if isinstance(ready[0], controller.PassResult):  # the last no-op pass's, inputs the same
        result, warnings = ready
        if args.detailed_exitcodes:
            result.exit_code = controller.detailed(result.exit_code, False)
        _print_result(result, args.output, warnings)
        return result.exit_code
    loaded, env, warnings, asked = ready
    if not args.wait or args.dry_run:
        result = controller.reconcile_once(loaded, env, dry_run=args.dry_run,
                                           memo=_memo_path(args), fresh=args.fresh,
                                           asked=asked, memo_tag=_memo_tag(args),
                                           memo_notes=tuple(warnings))
        if args.detailed_exitcodes:
            result.exit_code = controller.detailed(
                result.exit_code, result.report is not None and result.report.changed)
        forecast = None
        if args.dry_run and not result.error:
            from reconciler import forecasting
            forecast = forecasting.forecast(loaded, env, simulated=bool(args.simulate),
                                            first=result.plan)
        _print_result(result, args.output, warnings, forecast)
        if args.out and forecast is not None:
            return _save_plan(args, loaded, env, result, forecast)
        return result.exit_code
    return _wait(args, loaded, env, warnings)


def _memo_path(args: argparse.Namespace) -> str | None:
    """Where a plain ``--once`` keeps its last no-op pass (``noop_memo``), beside the lock
    (``--fresh`` removes it and saves its own): not on a simulated host, nor for ``--out``
    (it saves the observed state, which the saved pass does not keep), nor with ``--wait``."""
    if args.simulate or getattr(args, "out", None) or args.wait:
        return None
    from reconciler import noop_memo
    return str((Path(args.lock_file).parent if args.lock_file else Path(paths.RUN_DIR))
               / noop_memo.FILE_NAME)


def _save_plan(args: argparse.Namespace, loaded, env, result, forecast) -> int:
    """``--out PLAN.json``: the forecast, the spec and the relevant observed state."""
    from reconciler import forecasting
    if forecast.unavailable:
        print(f"error: no plan written to {args.out}: {forecast.unavailable}", file=sys.stderr)
        return controller.EXIT_ERROR
    doc = forecasting.saved_plan(loaded, args.spec, result, forecast, node=env.node,
                                 simulate=args.simulate)
    try:
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    except OSError as exc:
        print(f"error: cannot write the plan {args.out}: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    print(f"Plan saved to {args.out} (spec {loaded.digest[:12]}, observed state "
          f"{doc['observed']['digest'][:12]}); run it with: reconcile "
          + (f"--simulate {args.simulate} " if args.simulate else "") + f"apply {args.out}",
          file=sys.stderr)
    return result.exit_code


def _take_lock(args: argparse.Namespace) -> int | None:
    """The instance lock, for a pass that may change the host (not a dry run nor a
    simulated host): it must not run beside the daemon (or another --once). None when
    taken (or not needed), else the exit code, the refusal printed. Held until exit."""
    from reconciler import instance_lock
    if args.simulate or args.dry_run:
        return None
    lock = instance_lock.InstanceLock(Path(args.lock_file) if args.lock_file
                                      else Path(paths.RUN_DIR) / "lock")
    try:
        lock.acquire()
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    except OSError as exc:
        print(f"error: cannot take the lock {lock.path}: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    return None


def _memo_tag(args: argparse.Namespace) -> tuple:
    """What the CLI decides from its arguments beside the spec and node, in the saved pass's
    key: ``--node`` as given (None: not given). An explicit ``--node`` the spec never names
    is an error, the same node found as the host's name only a warning; and ``--node ""``
    (a variable that expanded to nothing) is an error, though the pass's node is then the
    host's name."""
    return ("cli", args.node)


def _saved_once(args: argparse.Namespace):
    """A plain ``--once`` whose spec (its bytes, not parsed), node, code and every answer
    the host gives are those of its last no-op pass (``noop_memo``): that pass's result
    and its warnings, the spec's models never imported; or, when it is not, the
    environment and the lock already made and what was already read (``Primed``, for the
    pass, which asks none of it again); or None when there was no such pass to try (the
    lock not taken), or the exit code of a refusal."""
    from reconciler.spec import files
    memo = _memo_path(args)
    if memo is None or getattr(args, "fresh", False) or args.dry_run:
        return None
    digest = files.digest(args.spec)
    if digest is None:  # the loader says what it cannot read
        return None
    try:
        # (the LIO applier is not in the key: no saved pass observed an iSCSI target)
        env, _ = _environment(args, iscsi_targets=False)
    except errors.ReconcilerError:
        return None
    saved = controller.saved_candidate(digest, env, memo, tag=_memo_tag(args))
    if saved is None:
        return None
    refused = _take_lock(args)
    if refused is not None:
        return refused
    outcome = controller.saved_pass(saved, env, memo)
    if isinstance(outcome, controller.PassResult):
        for w in saved.notes:
            logger.warning(w)
        return outcome, list(saved.notes)
    return env, outcome


def _prepare_once(args: argparse.Namespace):
    """What one pass needs: the spec loaded (its files' permissions checked on a real host),
    the instance lock taken (a pass that changes the host never runs beside the daemon or
    another --once), the environment, the warnings to show and what the try of the last
    no-op pass already read (``_saved_once``); or that pass's result and warnings; or the
    exit code of the first refusal, already printed."""
    from reconciler.spec import permissions
    missing = _check_spec_path(args.spec)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return controller.EXIT_ERROR
    if not args.simulate:
        # Root acts on what the spec says: on a real host, refuse one others could have written.
        try:
            permissions.check_permissions(args.spec)
        except errors.SpecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return controller.EXIT_ERROR
    tried = _saved_once(args)
    if isinstance(tried, int):
        return tried
    if tried is not None and isinstance(tried[0], controller.PassResult):
        return tried
    loaded = _load_spec(args.spec)
    if isinstance(loaded, int):
        return loaded
    asked = None
    if tried is None:
        refused = _take_lock(args)
        if refused is not None:
            return refused
    else:
        env, asked = tried
    try:
        if tried is None:
            # the LIO applier matters only to a spec with iSCSI targets (observed with them)
            env, notes = _environment(args, iscsi_targets=bool(loaded.spec.iscsi_target))
        else:
            notes = []
            if loaded.spec.iscsi_target:  # (another node's, or one added since the try)
                from reconciler.adapters import iscsi
                env = dataclasses.replace(env, lio_applier=iscsi.applier_problem())
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    warnings = [f"simulated host: {n}" for n in notes]
    unknown = _unknown_node(loaded, args.node) if args.node is not None else None
    if unknown:
        print(f"error: {unknown}", file=sys.stderr)
        return controller.EXIT_ERROR
    nothing = _nothing_for_node(loaded, env.node)
    if nothing:
        warnings.append(nothing)
    for w in warnings:
        logger.warning(w)
    return loaded, env, warnings, asked


def _wait(args: argparse.Namespace, loaded, env, warnings: list[str]) -> int:
    """``--once --wait``: passes until settled (or ``--wait-timeout``), with the plan first,
    then progress, then what was done (text), or one JSON document."""
    if args.output == "json":
        # the same passes as the text run (the plan observed first included), so the
        # figures agree whichever output is asked for
        with logs.muted(_preview_pass):
            preview = controller.reconcile_once(loaded, env, dry_run=True, pass_no=0)
        settled = controller.reconcile_until_settled(loaded, env, timeout=args.wait_timeout)
        settled.processes += preview.processes
        _detail(args, settled)
        doc = settled.as_dict()
        doc["warnings"] = warnings
        print(json.dumps(doc, indent=2))
        return settled.exit_code
    # Like `terraform apply`: the plan first, then progress, then what was done.
    with logs.muted(_preview_pass):
        preview = controller.reconcile_once(loaded, env, dry_run=True, pass_no=0)
    for w in warnings:
        print(f"warning: {w}")
    _show_plan(str(preview.plan))
    sys.stdout.flush()
    if preview.error or not (preview.plan.steps or preview.plan.in_flight):
        if preview.error:
            print(f"error: {preview.error}")
        print(f"Exit {preview.exit_code}: "
              f"{controller.exit_meaning(preview.exit_code, preview.plan)}.")
        return preview.exit_code
    progress = _Progress(env.clock)
    try:
        with logs.muted(_in_flight_line):
            settled = controller.reconcile_until_settled(loaded, env, on_pass=progress,
                                                         timeout=args.wait_timeout)
    finally:
        progress.close()
    settled.processes += preview.processes  # the plan shown first was observed too
    _detail(args, settled)
    _print_settled(settled, dry_run=False, simulated=bool(args.simulate))
    return settled.exit_code


def _detail(args: argparse.Namespace, settled: controller.SettledResult) -> None:
    """``--detailed-exitcodes``: exit 5 for changes applied and now in sync."""
    if getattr(args, "detailed_exitcodes", False):
        settled.exit_code = controller.detailed(settled.exit_code, settled.changes > 0)


def _same_source(planned: str | None, given: str | None) -> bool:
    """The ``--simulate`` source a plan was made on, given again (a capture directory however
    its path is spelled)."""
    if planned is None or given is None:
        return planned == given
    if Path(planned).is_dir() and Path(given).is_dir():
        return Path(planned).resolve() == Path(given).resolve()
    return planned == given


def _cmd_apply(argv: list[str]) -> int:
    """``reconcile [--simulate SOURCE] apply PLAN.json``: run exactly the saved plan, pass
    after pass, or nothing (exit 3 with what changed)."""
    from reconciler import forecasting
    p = _Parser(prog="reconcile apply",
                description="Run a plan saved by 'reconcile --once --dry-run --out PLAN.json', "
                "pass after pass as --wait does, on the node and spec it was made for. Refused "
                "(exit 3, with a diff) when the spec or the relevant observed state changed "
                "since, and stopped (exit 3) before a pass that would run a step the plan does "
                "not hold.")
    p.add_argument("plan", metavar="PLAN.json")
    p.add_argument("--simulate", default=None, metavar="SOURCE",
                   help="the simulated host the plan was made on (as when it was made)")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--log-level", default=None)
    p.add_argument("--lock-file", default=None, metavar="FILE")
    p.add_argument("--detailed-exitcodes", action="store_true",
                   help="exit 5 when changes were applied and the host is now in sync")
    args = p.parse_args(argv)
    if not _logging(args.log_level):
        return controller.EXIT_ERROR
    try:
        doc = forecasting.read_saved_plan(args.plan)
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    if not _same_source(doc["simulate"], args.simulate):
        made = f"--simulate {doc['simulate']}" if doc["simulate"] else "this host (no --simulate)"
        now = f"--simulate {args.simulate}" if args.simulate else "no --simulate"
        print(f"error: {args.plan} was made on {made}; applied with {now} it would not be the "
              f"reviewed plan: nothing was run", file=sys.stderr)
        return controller.EXIT_STALE_PLAN
    args.spec, args.node, args.dry_run, args.wait = doc["spec"]["path"], doc["node"], False, True
    ready = _prepare_once(args)
    if isinstance(ready, int):
        return ready
    loaded, env, warnings, _ = ready  # (--wait: no saved pass is tried)
    with logs.muted(_preview_pass):
        preview = controller.reconcile_once(loaded, env, dry_run=True, pass_no=0)
    if preview.error:
        print(f"error: {preview.error}", file=sys.stderr)
        return controller.EXIT_ERROR
    changed = (forecasting.spec_changes(doc, loaded)
               or forecasting.state_changes(doc, loaded, preview.observed, env.node))
    if changed:
        if args.output == "json":
            print(json.dumps({"exit_code": controller.EXIT_STALE_PLAN, "changed": changed,
                              "meaning": controller.exit_meaning(controller.EXIT_STALE_PLAN,
                                                                 preview.plan)}, indent=2))
        else:
            print("\n".join(changed))
            print(f"Exit {controller.EXIT_STALE_PLAN}: "
                  f"{controller.exit_meaning(controller.EXIT_STALE_PLAN, preview.plan)}.")
        return controller.EXIT_STALE_PLAN
    vet = forecasting.vetter(doc)
    if args.output == "json":
        settled = controller.reconcile_until_settled(loaded, env, vet=vet, vet_step=vet.step,
                                                     go_on=forecasting.apply_go_on)
        settled.processes += preview.processes
        _detail(args, settled)
        out = settled.as_dict()
        out["warnings"] = warnings
        out["saved_plan"] = {"spec_digest": doc["spec"]["digest"],
                             "observed_digest": doc["observed"]["digest"]}
        print(json.dumps(out, indent=2))
        return settled.exit_code
    for w in warnings:
        print(f"warning: {w}")
    print(f"Applying {args.plan}: spec {loaded.digest[:12]} and observed state "
          f"{doc['observed']['digest'][:12]} as planned; "
          f"{len(doc['forecast']['steps'])} step(s) over {doc['forecast']['passes']} pass(es)",
          flush=True)
    progress = _Progress(env.clock)
    try:
        with logs.muted(_in_flight_line):
            settled = controller.reconcile_until_settled(
                loaded, env, on_pass=progress, vet=vet, vet_step=vet.step,
                go_on=forecasting.apply_go_on)
    finally:
        progress.close()
    settled.processes += preview.processes
    _detail(args, settled)
    _print_settled(settled, dry_run=False, simulated=bool(args.simulate))
    return settled.exit_code


def _run_daemon(args: argparse.Namespace) -> int:
    """No --once: the continuous loop, until SIGTERM (exit 0) or a startup refusal (1)."""
    if args.wait:
        print("error: --wait goes with --once (the daemon always keeps going)", file=sys.stderr)
        return controller.EXIT_ERROR
    from reconciler import daemon, status
    try:
        env, notes = _environment(args)
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    for n in notes:
        logger.warning("simulated host: {}", n)
    # A simulated daemon never touches /run/reconciler: it must not block or mask the real one.
    base = status.simulated_dir() if args.simulate else daemon.RUN_DIR
    status_dir = Path(args.status_dir) if args.status_dir else base
    if args.simulate:
        logger.info("simulated daemon: status in {} (reconcile status --status-dir {})",
                    status_dir, status_dir)
    metrics = (None if args.metrics_file == "none" else
               Path(args.metrics_file) if args.metrics_file else status_dir / status.METRICS_FILE)
    settings = daemon.Settings(
        spec=Path(args.spec).absolute(), resync_seconds=args.resync_interval, status_dir=status_dir,
        metrics_file=metrics, lock_file=Path(args.lock_file) if args.lock_file else base / "lock",
        dry_run=args.dry_run)
    # The simulated host's clock follows real time, so its pvmoves progress as the loop waits.
    on_wait = getattr(env.clock, "advance", None) if args.simulate else None
    try:
        return daemon.Daemon(env, settings, on_wait=on_wait).run()
    except daemon.AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    except OSError as exc:
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR


def _cmd_status(argv: list[str]) -> int:
    from reconciler import status
    p = _Parser(
        prog="reconcile status",
        description="Show the daemon's last pass: spec in force, result, drift, blocked steps, "
                    "in-flight operations with progress and ETA. Exit 0 in sync, 2 pending, "
                    "1 otherwise (error, blocked, no valid spec, daemon not running).",
        epilog=f"A simulated daemon (reconcile --simulate ...) writes its status in\n"
               f"  {status.simulated_dir()}\npass it with --status-dir.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--status-dir", default=None,
                   help=f"default {status.DEFAULT_DIR}")
    p.add_argument("--output", choices=("text", "json"), default="text")
    args = p.parse_args(argv)
    where = args.status_dir or str(status.DEFAULT_DIR)
    try:
        doc = status.read(where)
    except FileNotFoundError:
        sim = status.simulated_dir()
        hint = ""
        if args.status_dir is None and (sim / status.STATUS_FILE).exists():
            hint = (f"; a simulated daemon wrote its status in {sim}: "
                    f"reconcile status --status-dir {sim}")
        print(f"error: no status in {where}: the daemon has not run on this host "
              f"(systemctl status reconciler){hint}", file=sys.stderr)
        return controller.EXIT_ERROR
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the status in {where}: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    print(json.dumps(doc, indent=2, sort_keys=True) if args.output == "json"
          else status.render(doc))
    return status.exit_code(doc)


def _cmd_validate(argv: list[str]) -> int:
    p = _Parser(prog="reconcile validate",
                description="Check spec files (for GitOps CI). Exit 0 valid, 1 otherwise.")
    p.add_argument("--spec", default=DEFAULT_SPEC)
    args = p.parse_args(argv)
    loaded = _load_spec(args.spec)
    if isinstance(loaded, int):
        return loaded
    print(f"ok: {len(loaded.files)} file(s), {len(loaded.spec.vg)} VG(s), "
          f"{len(loaded.spec.clone)} clone(s), spec {loaded.digest[:12]}"
          + (f", node(s) {', '.join(_nodes_named(loaded))}" if _nodes_named(loaded) else ""))
    return 0


def _cmd_schema(argv: list[str]) -> int:
    _Parser(prog="reconcile schema",
            description="Print the JSON Schema of spec files.").parse_args(argv)
    from reconciler.spec import models
    print(json.dumps(models.json_schema(), indent=2))
    return 0


def _cmd_capture(argv: list[str]) -> int:
    p = _Parser(
        prog="reconcile capture",
        description="Observe this host as a pass does and save everything it saw: the raw "
                    "lvm fullreport, every block device with its aliases (by-id, by-path, "
                    "/dev/mapper) and size, md's kernel files, the clone ledger, and the "
                    "operations in flight, with a manifest (argv, exit codes, tool "
                    "versions). Plan or run from it anywhere with "
                    "'reconcile --simulate DIR --spec ... --once --dry-run'.",
        epilog="exit codes: 0 written, 1 error (usage errors included)")
    p.add_argument("dir", help="where to write the capture (created if needed)")
    p.add_argument("--simulate", default=None, metavar="SOURCE",
                   help="capture a simulated host instead of this one: an embedded host "
                   "(default, seed002, seed004, cluster) or a capture directory")
    args = p.parse_args(argv)
    from reconciler import offline
    try:
        manifest = offline.capture(args.dir, simulate=args.simulate)
    except (errors.ReconcilerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    flying = manifest.get("in_flight", [])
    print(f"captured {len(manifest['commands'])} command(s), "
          f"{len(json.loads((Path(args.dir) / offline.BLOCK_DEVICES).read_text())['devices'])} "
          f"block device(s) and {len(flying)} operation(s) in flight into {args.dir}")
    return 0


def _cmd_adopt(argv: list[str]) -> int:
    p = _Parser(prog="reconcile adopt",
                description="Write the spec of what this host has now (VGs, PVs, LVs with "
                "exact sizes and placement, md clones, DRBD resources, iSCSI targets and "
                "sessions), so that "
                "its first pass plans nothing; then edit what must change.",
                epilog="exit codes: 0 written, and a dry pass with it plans nothing; 2 written, "
                "and a pass would still do what is listed (a shared VG's lockspace to start); "
                "1 error")
    p.add_argument("--out", required=True, metavar="DIR", help="an empty or new directory")
    p.add_argument("--vg", action="append", default=[], metavar="NAME",
                   help="adopt only this VG (repeat for several); nothing else is adopted")
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    p.add_argument("--simulate", default=None, metavar="HOST|CAPTURE_DIR",
                   help="adopt a simulated host: an embedded one or a capture directory")
    p.add_argument("--node", default=None, help="the node the spec names (default: this host)")
    args = p.parse_args(argv)
    from reconciler.offline import adopting
    logs.setup("WARNING")  # the dry pass that checks the spec logs only what goes wrong
    try:
        adopting.check_directory(args.out, args.force)
        src = adopting.source(args.simulate, args.node)
        adopted = adopting.adopt(src, args.vg)
        if not adopted.files:
            print("nothing to adopt: no VG, md clone, DRBD resource, iSCSI target or session "
                  f"on {src.node}", file=sys.stderr)
        for note in adopted.notes:
            print(f"note: {note}", file=sys.stderr)
        if not adopted.files:
            return 0
        for path in adopting.write(args.out, adopted):
            print(f"wrote {path}")
        left, _ = adopting.first_pass(src, args.out)
    except (errors.ReconcilerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    print("adopted " + ", ".join(f"{n} {k}" for k, n in adopted.counts.items()) + f" of {src.node}")
    if left:
        print("a pass with this spec would still do:\n  " + "\n  ".join(left), file=sys.stderr)
        return controller.EXIT_PENDING
    print(f"a dry pass with this spec plans nothing on {src.node}")
    return 0


SUBCOMMANDS = {"validate": _cmd_validate, "schema": _cmd_schema, "capture": _cmd_capture,
               "status": _cmd_status, "run": _cmd_run, "adopt": _cmd_adopt,
               "apply": _cmd_apply}
# Options given before a subcommand that takes them too (``reconcile --simulate default
# apply PLAN.json``, as every command takes --simulate first).
_LEADING = {"apply": ("--simulate", "--log-level", "--output", "--lock-file",
                      "--detailed-exitcodes"),
            "adopt": ("--simulate", "--node")}


def _unknown_subcommand(word: str) -> int:
    """``reconcile valdiate``: say which subcommand was probably meant (exit 1, a usage
    error; never 2, which means drift)."""
    import difflib  # only for a misspelt subcommand
    close = difflib.get_close_matches(word, SUBCOMMAND_NAMES, n=1, cutoff=0.6)
    _run_parser().print_usage(sys.stderr)
    hint = (f"did you mean '{close[0]}'?" if close
            else f"subcommands: {', '.join(SUBCOMMAND_NAMES)}")
    print(f"reconcile: error: unknown subcommand '{word}'; {hint}", file=sys.stderr)
    return controller.EXIT_ERROR


class _PipeSafe:
    """A text stream whose reader may go away (``reconcile ... | head -1``): once the pipe
    is closed, further output is dropped and the run goes on to the exit code it earns,
    without a BrokenPipeError traceback (nor one from Python's own flush at exit)."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        try:  # what is still buffered goes nowhere when Python flushes at exit
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe(out), _PipeSafe(err)
    try:
        return _dispatch(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err


_FLAGS = frozenset({"--detailed-exitcodes"})  # leading options that take no value


def _leading_options(argv: list[str]) -> list[str] | None:
    """``--simulate X apply PLAN``: the subcommand's argv with the options before it moved
    after it, when only options it takes come before it; else None."""
    known = {o for opts in _LEADING.values() for o in opts}
    i = 0
    while i < len(argv) and argv[i].split("=")[0] in known:
        i += 1 if ("=" in argv[i] or argv[i] in _FLAGS) else 2
    if 0 < i < len(argv) and argv[i] in _LEADING and all(
            a.split("=")[0] in _LEADING[argv[i]] for a in argv[:i] if a.startswith("--")):
        return [argv[i], *argv[i + 1:], *argv[:i]]
    return None


def _dispatch(argv: list[str]) -> int:
    moved = _leading_options(argv)
    if moved is not None:
        argv = moved
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if argv and not argv[0].startswith("-"):
        return _unknown_subcommand(argv[0])
    return _cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
