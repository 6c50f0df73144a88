"""Benchmark: what ``reconcile --once`` pays in imports before its first command.

Prints figures; asserts nothing. Goal (issue 22): the import time of ``reconciler.cli`` for
an LVM-only spec at most half of what it was, measured with ``python -X importtime`` side by
side with ``import json`` as the yardstick (absolute times swing with the machine's load; the
ratio to json, measured in the same run, much less).

    python3 bench/bench_startup.py [--runs 9] [--against REV]

* ``import reconciler.cli`` and ``import json``, each in a fresh interpreter, alternated,
  ``--runs`` times: the cumulative microseconds ``-X importtime`` prints for each, medians,
  and their ratio.
* What the CLI's import is made of, by part (median self time of every module imported under
  it): the subsystems an LVM-only spec does not use (md, DRBD, iSCSI: their spec tables,
  observed state, adapters, actions and planners), LVM and lockd, the shared core, and the
  third-party libraries (pydantic; the asyncio that pydantic_core imports through
  typing_extensions' ``deprecated``, which loguru imports too; loguru, which a pass logging
  nothing its level takes no longer imports; tenacity; the standard library's modules). The
  first part is what importing only the spec's subsystems could save at most.
* ``from pydantic import BaseModel`` alone, in the same rounds: the part of the import that
  is the one library every pass needs (loguru is imported by the first record a sink takes,
  ``reconciler/logs.py``).
* ``--against REV``: the same ``import reconciler.cli`` of the product as it was at git
  revision REV (its ``reconciler/`` exported to a temporary directory) in the same rounds,
  alternated with today's and json: before and after side by side under the same load.
* The CPU time (user + sys) of each of those interpreters, medians: what the import itself
  costs whatever the wall clock waited for a core the machine's other processes held; with
  ``--against``, the CLI's import beyond json's interpreter, now over then.
* What a real ``reconcile --once`` of an LVM-only spec on a settled host imports, which is
  more than ``import reconciler.cli`` (what the pass imports on its way: the spec's
  permissions, the instance lock, the observation's lazy imports…): the modules it loads
  are found by ``bench/startup_pass.py`` (the CLI's real host path, its runner answered by
  a simulated host, the simulator's own imports not counted), once per tree, then imported
  in that order in fresh interpreters in the same rounds: the sum of their ``-X
  importtime`` self times and the interpreter's CPU time, now and at ``--against REV``.
  Now twice: the first ``--once`` (it parses the spec and plans, as a pass whose inputs
  changed does, and keeps its no-op pass) and the next, whose inputs are all the same (it
  gives that pass's plan without parsing the spec: ``noop_memo``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")
OTHER_SUBSYSTEMS = ("md", "drbd", "iscsi")
# What every pass needs whatever we do: the spec's validation (the log lines' loguru only
# for a record a sink takes).
LIBRARIES = "from pydantic import BaseModel"


CPU: list[float] = []  # user + sys seconds of each interpreter importtime started, in order


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def importtime(statement: str, root: Path = ROOT) -> dict[str, tuple[int, int, int]]:
    """module -> (self us, cumulative us, depth), from one fresh interpreter (its CPU time
    appended to ``CPU``)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # run in ``root``: ``-c`` puts the working directory first on the path
    cpu = _children_cpu()
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], env=env,
                         cwd=root, capture_output=True, text=True, check=True).stderr
    CPU.append(_children_cpu() - cpu)
    found = {}
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            found[m.group(4)] = (int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2)
    return found


def part(module: str) -> str:
    if module.startswith("reconciler."):
        last = module.split(".")[-1]
        sub = module.split(".")
        if any(s in OTHER_SUBSYSTEMS or s.startswith(tuple(f"{o}_" for o in OTHER_SUBSYSTEMS))
               for s in sub[1:]) or last in OTHER_SUBSYSTEMS:
            return "md, DRBD, iSCSI (unused by an LVM-only spec)"
        if last in ("lvm", "lockd", "move", "vgplan", "lvm_report"):
            return "LVM and lockd"
        return "reconciler's shared core"
    if module.split(".")[0] in ("pydantic", "pydantic_core", "annotated_types",
                                "typing_extensions", "typing_inspection"):
        return "pydantic"
    if module.split(".")[0] in ("asyncio", "ssl", "_ssl", "concurrent"):
        return "asyncio (pydantic_core's, and loguru's)"
    if module.split(".")[0] == "loguru":
        return "loguru"
    if module.split(".")[0] == "tenacity":
        return "tenacity"
    return "standard library and others"


def pass_modules(tree: Path, directory: str, saved: bool = False) -> list[str] | None:
    """The modules a real ``--once`` on the settled host in ``directory`` loads, with the
    product at ``tree`` (None, with why, when that tree's CLI cannot be driven so);
    ``saved``: a second ``--once`` there, which gives the first's no-op pass."""
    out = Path(directory) / f"modules-{'saved' if saved else 'first'}.json"
    env = dict(os.environ, PYTHONPATH=str(tree))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "startup_pass.py"), "modules",
                          directory, str(out), *(["saved"] if saved else [])], env=env,
                         cwd=tree, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"  (the pass could not be driven with {tree}: "
              f"{(run.stderr.strip().splitlines() or ['?'])[-1]})")
        return None
    return json.loads(out.read_text())


def importing(mods: list[str]) -> str:
    """A statement importing ``mods`` in order (one the tree cannot import is left out)."""
    return ("import importlib\n"
            f"for m in {mods!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except ImportError:\n        pass\n")


def after_site(found: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
    """The modules the statement imported: those the interpreter's start-up (``site``, the
    last it imports) had not."""
    names = list(found)
    return {n: found[n] for n in names[names.index("site") + 1:]} if "site" in found else found


def total_self(found: dict[str, tuple[int, int, int]]) -> int:
    """Microseconds: the self times of every module the statement imported."""
    return sum(v[0] for v in after_site(found).values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--against", metavar="REV", default=None,
                    help="also the CLI as it was at this git revision, in the same rounds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        before = None
        if args.against:
            before = Path(tmp)
            tar = subprocess.run(["git", "-C", str(ROOT), "archive", args.against, "reconciler"],
                                 capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
        work = Path(tmp) / "pass"
        work.mkdir()
        subprocess.run([sys.executable, str(ROOT / "bench" / "startup_pass.py"), "settle",
                        str(work)], env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                       check=True, capture_output=True)
        mods: dict[str, list[str] | None] = {}
        if before is not None:
            shutil.copytree(work, Path(tmp) / "then")
            mods["then"] = pass_modules(before, str(Path(tmp) / "then"))
        mods["now"] = pass_modules(ROOT, str(work))  # parses, plans, keeps its no-op pass
        mods["saved"] = pass_modules(ROOT, str(work), saved=True)
        measure(args.runs, args.against, before, mods)


def measure(runs: int, rev: str | None, before: Path | None,
            mods: dict[str, list[str] | None]) -> None:
    importtime("import reconciler.cli")  # bytecode written, caches warm
    if before is not None:
        importtime("import reconciler.cli", before)
    trees = {"now": ROOT, "saved": ROOT, "then": before}
    passes = {k: importing(v) for k, v in mods.items() if v}
    for k, stmt in passes.items():
        importtime(stmt, trees[k])
    pass_us: dict[str, list[int]] = collections.defaultdict(list)
    pass_parts: dict[str, list[int]] = collections.defaultdict(list)
    then, then_ratios = [], []
    cli, yard, ratios = [], [], []
    parts: dict[str, list[int]] = collections.defaultdict(list)
    cpu: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(runs):
        j = importtime("import json")["json"][1]
        cpu["json"].append(CPU[-1])
        found = importtime(LIBRARIES)
        cpu["libraries"].append(CPU[-1])
        pass_us["libraries"].append(total_self(found))
        if before is not None:
            t = importtime("import reconciler.cli", before)["reconciler.cli"][1]
            cpu["then"].append(CPU[-1])
            then.append(t)
            then_ratios.append(t / j)
        found = importtime("import reconciler.cli")
        cpu["now"].append(CPU[-1])
        c = found["reconciler.cli"][1]
        cli.append(c)
        yard.append(j)
        ratios.append(c / j)
        # Modules imported under reconciler.cli: those listed before it, deeper than it.
        names = list(found)
        under = names[:names.index("reconciler.cli")]
        start = max((i for i, n in enumerate(under) if found[n][2] == 0), default=-1) + 1
        sums: dict[str, int] = collections.defaultdict(int)
        for n in under[start:]:
            sums[part(n)] += found[n][0]
        sums[part("reconciler.cli")] += found["reconciler.cli"][0]
        for k, v in sums.items():
            parts[k].append(v)
        for k, stmt in passes.items():
            found = importtime(stmt, trees[k])
            cpu[f"pass-{k}"].append(CPU[-1])
            pass_us[k].append(total_self(found))
            if k == "now":
                sums = collections.defaultdict(int)
                for n, v in after_site(found).items():
                    sums[part(n)] += v[0]
                for name, v in sums.items():
                    pass_parts[name].append(v)
    med = statistics.median
    print(f"python -X importtime, {runs} fresh interpreters each, alternated (medians):")
    print(f"  import json              {med(yard) / 1000:8.1f} ms   (the yardstick)")
    if then:
        print(f"  import reconciler.cli    {med(then) / 1000:8.1f} ms   = {med(then_ratios):.0f} x json "
              f"at {rev} (ratio of the medians {med(then) / med(yard):.0f})")
    print(f"  import reconciler.cli    {med(cli) / 1000:8.1f} ms   = {med(ratios):.0f} x json "
          f"(median of the runs' ratios; ratio of the medians {med(cli) / med(yard):.0f}; "
          f"json ranged {min(yard) / 1000:.1f} to {max(yard) / 1000:.1f} ms)")
    if then:
        print(f"  now / at {rev}: {med(ratios) / med(then_ratios):.2f} (the medians of the ratios "
              f"to json), {med(c / t for c, t in zip(cli, then)):.2f} (median of each round's "
              f"now / then)")
    # CPU time counts only what the interpreter itself did, not the time it waited for a
    # core the machine's other processes held: steadier than the wall clock under load.
    base = med(cpu["json"])
    print(f"  CPU (user + sys) of each interpreter, median: {base * 1000:.0f} ms with json, "
          f"{med(cpu['now']) * 1000:.0f} ms with the CLI"
          + (f", {med(cpu['then']) * 1000:.0f} ms with the CLI at {rev}; the CLI's import "
             f"beyond json's interpreter, now / then: "
             f"{(med(cpu['now']) - base) / (med(cpu['then']) - base):.2f}" if then else ""))
    print("  of which, by part (median self times; medians of parts need not add up):")
    total = med(cli)
    for name, values in sorted(parts.items(), key=lambda kv: -med(kv[1])):
        print(f"    {name:<48} {med(values) / 1000:7.1f} ms  {100 * med(values) / total:4.0f} %")
    print(f"  the library every pass needs, alone (`{LIBRARIES}`): "
          f"{med(pass_us['libraries']) / 1000:.1f} ms (self times summed); CPU "
          f"{med(cpu['libraries']) * 1000:.0f} ms, {(med(cpu['libraries']) - base) * 1000:.0f}"
          f" ms beyond json's interpreter")
    if len(pass_us) == 1:
        return
    print("a real `reconcile --once` of an LVM-only spec on a settled host: the modules it "
          "loads, imported in that order (self times summed, medians); the next `--once`, "
          "whose inputs are all the same, gives the first's no-op pass (the spec not parsed):")
    labels = (("then", f"at {rev}"), ("now", "now"), ("saved", "now, the next"))
    for k, label in labels:
        if k in pass_us:
            print(f"  {len(mods[k]):4} modules {label:<14} {med(pass_us[k]) / 1000:8.1f} ms   "
                  f"= {med(pass_us[k]) / med(yard):.0f} x json; CPU of the interpreter "
                  f"{med(cpu[f'pass-{k}']) * 1000:.0f} ms, "
                  f"{(med(cpu[f'pass-{k}']) - base) * 1000:.0f} ms beyond json's")
    for k, label in labels[1:]:
        if "then" in pass_us and k in pass_us:
            print(f"  {label} / at {rev}: {med(pass_us[k]) / med(pass_us['then']):.2f} by the "
                  f"import times, {med(n / t for n, t in zip(pass_us[k], pass_us['then'])):.2f}"
                  f" (median of each round's {k} / then); by CPU beyond json's interpreter "
                  f"{(med(cpu[f'pass-{k}']) - base) / (med(cpu['pass-then']) - base):.2f}")
    if "now" in pass_us:
        print(f"  pydantic's BaseModel alone: {(med(cpu['libraries']) - base) * 1000:.0f} ms of "
              f"CPU beyond json's interpreter"
              + (f"; half of {rev}'s pass is {(med(cpu['pass-then']) - base) * 500:.0f} ms"
                 if "then" in pass_us else ""))
    if "then" in mods and mods["then"] and mods["now"]:
        gone = [m for m in mods["then"] if m not in set(mods["now"])]
        came = [m for m in mods["now"] if m not in set(mods["then"])]
        print(f"  modules no longer loaded ({len(gone)}): "
              + ", ".join(m for m in gone if m.startswith("reconciler")) + " and "
              f"{sum(not m.startswith('reconciler') for m in gone)} others; newly loaded: "
              + (", ".join(came) or "none"))
    total = med(pass_us["now"])
    print("  now, by part (median self times):")
    for name, values in sorted(pass_parts.items(), key=lambda kv: -med(kv[1])):
        print(f"    {name:<48} {med(values) / 1000:7.1f} ms  {100 * med(values) / total:4.0f} %")


if __name__ == "__main__":
    main()
