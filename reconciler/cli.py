"""Command line: parse arguments → build objects → one controller call → exit code.

Exit codes (the same for every subcommand, like ``terraform plan -detailed-exitcode``):
  0  in sync (or: the spec is valid / the capture was written)
  1  error: bad spec, failed command, or a plan that refuses to proceed (with why)
  2  drift found (dry run) or changes still pending (long operations in flight)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

from reconciler import controller, errors, logs

DEFAULT_SPEC = "/etc/reconciler/specs"

EPILOG = """\
exit codes:
  0  in sync with the spec (nothing to do, or everything done)
  1  error: invalid spec, a command failed, or the plan is blocked (reasons are printed)
  2  drift found (--dry-run) or changes still pending (a pvmove or sync in flight)

without --once, reconcile runs as a daemon (see `systemd/reconciler.service`): a pass at
start, on every spec change (debounced), on SIGHUP, every --resync-interval seconds, sooner
while an operation is in flight; SIGTERM finishes the current step and exits 0.

subcommands:
  reconcile status [--status-dir DIR] the daemon's last pass: 0 in sync, 2 pending, 1 otherwise
  reconcile validate [--spec PATH]   check spec files (for GitOps CI); exit 0 or 1
  reconcile schema                   print the JSON Schema of spec files
  reconcile capture DIR              save the raw output of every observation command
"""


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reconcile", description="Converge this host's storage to the TOML spec.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default=DEFAULT_SPEC,
                   help=f"spec file or directory of *.toml (default {DEFAULT_SPEC})")
    p.add_argument("--node", default=None,
                   help="the node whose slice of the spec to reconcile (default: host name)")
    p.add_argument("--once", action="store_true", help="one pass, then exit with a status")
    p.add_argument("--dry-run", action="store_true",
                   help="observe for real, change nothing, print drift and plan")
    p.add_argument("--wait", action="store_true",
                   help="repeat passes until in sync or blocked, showing progress")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--simulate", metavar="SOURCE", default=None,
                   help="run against a simulated host: 'default' (embedded demo host) or a "
                   "directory written by 'reconcile capture'")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    d = p.add_argument_group("daemon (without --once)")
    d.add_argument("--resync-interval", type=float, default=300.0, metavar="SECONDS",
                   help="pass at least this often, to catch changes made by hand (default 300)")
    d.add_argument("--status-dir", default=None, metavar="DIR",
                   help="where status.json is written (default /run/reconciler)")
    d.add_argument("--metrics-file", default=None, metavar="FILE",
                   help="Prometheus text file (node_exporter textfile collector); default "
                   "STATUS_DIR/reconciler.prom, 'none' to disable")
    d.add_argument("--lock-file", default=None, metavar="FILE",
                   help="single-instance lock, also taken by a --once pass that may change "
                   "the host (default /run/reconciler/lock)")
    return p


def _environment(args: argparse.Namespace) -> controller.Environment:
    node = args.node or socket.gethostname()
    if args.simulate:
        from reconciler import offline
        host = offline.simulated_host(args.simulate)
        return controller.Environment(runner=host, node=node, resolve=host.resolve_device,
                                      clock=host.clock)
    from reconciler.runner import SubprocessRunner
    return controller.Environment(runner=SubprocessRunner(), node=node)


def _print_result(result: controller.PassResult, output: str) -> None:
    if output == "json":
        print(json.dumps(result.as_dict(), indent=2))
        return
    print(result.plan)
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


def _cmd_run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    logs.setup(args.log_level)
    if not args.once:
        return _run_daemon(args)
    from reconciler import daemon
    from reconciler.spec import loading
    try:
        if not args.simulate:
            # Root acts on what the spec says: refuse one that others could have written.
            daemon.check_permissions(args.spec)
        loaded = loading.load(args.spec)
    except errors.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    if not args.simulate and not args.dry_run:
        # A pass that changes the host must not run beside the daemon (or another --once).
        lock = daemon.InstanceLock(Path(args.lock_file) if args.lock_file
                                   else daemon.RUN_DIR / "lock")
        try:
            lock.acquire()
        except errors.ReconcilerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return controller.EXIT_ERROR
    try:
        env = _environment(args)
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR

    if args.wait:
        from reconciler import status
        etas = status.EtaTracker()

        def on_pass(r: controller.PassResult) -> None:
            if args.output != "text":
                return
            eta = etas.update(r.final.in_flight, env.clock.now())
            bars = ["  " + status.progress_line(f.object, f.what, f.percent, eta.get(f.key),
                                                fancy=True) for f in r.final.in_flight]
            if logs.progress(bars):  # a TTY: bars redrawn in place under the log lines
                return
            for f in r.final.in_flight:
                pct = "?" if f.percent is None else f"{f.percent:5.1f}%"
                print(f"  … {f.object}: {f.what} {pct}", file=sys.stderr)
        try:
            result = controller.reconcile_until_settled(loaded, env, dry_run=args.dry_run,
                                                        on_pass=on_pass)
        finally:
            logs.progress([])
    else:
        result = controller.reconcile_once(loaded, env, dry_run=args.dry_run)
    _print_result(result, args.output)
    return result.exit_code


def _run_daemon(args: argparse.Namespace) -> int:
    """No --once: the continuous loop, until SIGTERM (exit 0) or a startup refusal (1)."""
    if args.wait:
        print("error: --wait goes with --once (the daemon always keeps going)", file=sys.stderr)
        return controller.EXIT_ERROR
    from reconciler import daemon, status
    try:
        env = _environment(args)
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    # A simulated daemon never touches /run/reconciler: it must not block or mask the real one.
    base = (Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
            / f"reconciler-sim-{os.geteuid()}") if args.simulate else daemon.RUN_DIR
    status_dir = Path(args.status_dir) if args.status_dir else base
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
    p = argparse.ArgumentParser(
        prog="reconcile status",
        description="Show the daemon's last pass: spec in force, result, drift, blocked steps, "
                    "in-flight operations with progress and ETA. Exit 0 in sync, 2 pending, "
                    "1 otherwise (error, blocked, no valid spec, daemon not running).")
    p.add_argument("--status-dir", default=str(status.DEFAULT_DIR))
    p.add_argument("--output", choices=("text", "json"), default="text")
    args = p.parse_args(argv)
    try:
        doc = status.read(args.status_dir)
    except FileNotFoundError:
        print(f"error: no status in {args.status_dir}: the daemon has not run on this host "
              f"(systemctl status reconciler)", file=sys.stderr)
        return controller.EXIT_ERROR
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the status in {args.status_dir}: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    print(json.dumps(doc, indent=2, sort_keys=True) if args.output == "json"
          else status.render(doc))
    return status.exit_code(doc)


def _cmd_validate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="reconcile validate", description="Check spec files.")
    p.add_argument("--spec", default=DEFAULT_SPEC)
    args = p.parse_args(argv)
    from reconciler.spec import loading
    try:
        loaded = loading.load(args.spec)
    except errors.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    print(f"ok: {len(loaded.files)} file(s), {len(loaded.spec.vg)} VG(s), "
          f"{len(loaded.spec.clone)} clone(s), spec {loaded.digest[:12]}")
    return 0


def _cmd_schema(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="reconcile schema",
                            description="Print the JSON Schema of spec files.").parse_args(argv)
    from reconciler.spec import models
    print(json.dumps(models.json_schema(), indent=2))
    return 0


def _cmd_capture(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="reconcile capture",
        description="Run every observation command and save its raw output, with a manifest "
                    "(argv, exit codes, tool versions), for offline planning with --simulate.")
    p.add_argument("dir")
    p.add_argument("--simulate", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from reconciler import offline
    try:
        manifest = offline.capture(args.dir, simulate=args.simulate)
    except (errors.ReconcilerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    print(f"captured {len(manifest['commands'])} command(s) into {args.dir}")
    return 0


SUBCOMMANDS = {"validate": _cmd_validate, "schema": _cmd_schema, "capture": _cmd_capture,
               "status": _cmd_status, "run": _cmd_run}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    return _cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
