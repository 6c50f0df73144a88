"""Command line: parse arguments → build objects → one controller call → exit code.

Exit codes (the same for every subcommand, like ``terraform plan -detailed-exitcode``):
  0  in sync (or: the spec is valid / the capture was written)
  1  error: bad spec, failed command, or a plan that refuses to proceed (with why)
  2  drift found (dry run) or changes still pending (long operations in flight)
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

from reconciler import controller, errors, logs

DEFAULT_SPEC = "/etc/reconciler/specs"

EPILOG = """\
exit codes:
  0  in sync with the spec (nothing to do, or everything done)
  1  error: invalid spec, a command failed, or the plan is blocked (reasons are printed)
  2  drift found (--dry-run) or changes still pending (a pvmove or sync in flight)

subcommands:
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
    from reconciler.spec import loading
    try:
        loaded = loading.load(args.spec)
    except errors.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR
    if not args.once:
        print("error: the continuous daemon mode is not available yet; use --once "
              "(optionally with --wait)", file=sys.stderr)
        return controller.EXIT_ERROR
    try:
        env = _environment(args)
    except errors.ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return controller.EXIT_ERROR

    if args.wait:
        def on_pass(r: controller.PassResult) -> None:
            if args.output == "text":
                for f in r.final.in_flight:
                    pct = "?" if f.percent is None else f"{f.percent:5.1f}%"
                    print(f"  … {f.object}: {f.what} {pct}", file=sys.stderr)
        result = controller.reconcile_until_settled(loaded, env, dry_run=args.dry_run,
                                                    on_pass=on_pass)
    else:
        result = controller.reconcile_once(loaded, env, dry_run=args.dry_run)
    _print_result(result, args.output)
    return result.exit_code


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
          f"spec {loaded.digest[:12]}")
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
               "run": _cmd_run}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    return _cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
