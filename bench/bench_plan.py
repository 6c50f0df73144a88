"""Benchmark: load + observe + plan for 10,000 LVs on 1,000 PVs (simulated host).

Prints figures; asserts nothing. Goals (issue 22): load + observe + plan at most 1.2 x the
floor of merely reading the same inputs (``tomllib.loads`` of the spec text + ``json.loads``
of the fullreport text), both measured side by side in each round of one process (in wall-clock
time, and in the thread's CPU time, which what other processes take of the cores does not
count); 100,000 LVs at most 11 x the 10,000 figure (linear); peak RSS growth at most 40 MB at
10,000; exactly 1 process for a no-op pass whatever the LV count.

    python3 bench/bench_plan.py [--pvs 1000] [--lvs 10000] [--no-scale] [--runs N] [--against REV]

``--runs N`` runs the measurement N times, each in a fresh child process, and prints each
run's figures and their medians. ``--against REV`` also measures the product as it was at git
revision REV (its ``reconciler/`` exported to a temporary directory), by this same script
(the same fixture, rounds, window and floor), each of its runs alternated with one of today's:
before and after side by side under the same load.

The observation replays what the simulated host answered (recorded once, before the rounds):
what is measured is our work on the tools' output, not the simulator's rendering of it (lvm
renders it on a real host). The floor and our work run with the cyclic garbage collector
paused alike (our parsers pause it, ``gc_pause``).

Peak memory is the process's peak RSS (ru_maxrss) measured in a fresh child process that
only builds the fixture and then runs the measured work, minus the RSS before the work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A child measuring another revision (``--against``) is given that revision's tree first.
sys.path.insert(0, str(ROOT))
if "--tree" in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1])

M = 1024**2
ROUNDS = 5


def build(pvs: int, lvs: int, workdir: Path):
    from reconciler.simulate import SimulatedHost
    host = SimulatedHost()
    per_vg = 10  # PVs per VG
    lines = []
    per_pv = lvs // pvs
    for v in range(pvs // per_vg):
        devs = [f"/dev/disk/by-id/lun{v * per_vg + i:05d}" for i in range(per_vg)]
        for d in devs:
            host.add_device(d, 1024 * M)
        host.add_vg(f"vg{v:04d}", devs)
        lines.append(f'[vg.vg{v:04d}]\nnodes = ["*"]\nscope = "local"\npvs = {json.dumps(devs)}\n')
        for i, d in enumerate(devs):
            for j in range(per_pv):
                name = f"lv{i:02d}_{j:02d}"
                host.add_lv(f"vg{v:04d}", name, 64 * M, pvs=[d])
                lines.append(f'[vg.vg{v:04d}.lv.{name}]\nsize = "64M"\nplacement = ["{d}"]\n')
    (workdir / "spec.toml").write_text("\n".join(lines))
    return host


class Replay:
    """The simulated host's answers, recorded at their first asking and replayed after."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.answers: dict = {}

    def run(self, cmd):
        key = tuple(cmd.argv)
        if key not in self.answers:
            self.answers[key] = self.inner.run(cmd)
        return self.answers[key]

    def __getattr__(self, name):
        return getattr(self.inner, name)


def floor(spec_text: str, report_text: str) -> tuple[float, float]:
    """Merely reading the inputs: the spec's TOML and the report's JSON, nothing built.
    (wall-clock seconds, this thread's CPU seconds)."""
    import gc
    import tomllib
    gc.disable()
    try:
        t0, c0 = time.perf_counter(), time.thread_time()
        tomllib.loads(spec_text)
        json.loads(report_text)
        return time.perf_counter() - t0, time.thread_time() - c0
    finally:
        gc.enable()


def measure(pvs: int, lvs: int, rounds_n: int = ROUNDS) -> dict:
    from reconciler import controller, observing, planning
    from reconciler.adapters import lvm
    from reconciler.spec import loading
    with tempfile.TemporaryDirectory() as tmp:
        host = build(pvs, lvs, Path(tmp))
        replay = Replay(host)
        spec_text = (Path(tmp) / "spec.toml").read_text()
        report_text = host.run(lvm.fullreport()).stdout
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        spec = loading.load(Path(tmp) / "spec.toml").for_node("bench")
        observing.observe(replay, host="local", devices=observing.spec_devices(spec),
                          resolve=host.resolve_device)  # records the answers
        del spec
        rounds = []
        floors = []
        # In this thread's CPU time: what other processes on the cores take (preemption) is
        # not counted in it.
        cpu_totals, cpu_ratios, cpu_floors = [], [], []
        for _ in range(rounds_n):
            wall, cpu_floor = floor(spec_text, report_text)
            floors.append(wall)
            c0 = time.thread_time()
            t0 = time.perf_counter()
            loaded = loading.load(Path(tmp) / "spec.toml")
            t1 = time.perf_counter()
            spec = loaded.for_node("bench")
            st = observing.observe(replay, host="local", devices=observing.spec_devices(spec),
                                   resolve=host.resolve_device)
            t2 = time.perf_counter()
            p = planning.plan(spec, st, node="bench")
            t3 = time.perf_counter()
            cpu_totals.append(time.thread_time() - c0)
            cpu_ratios.append(cpu_totals[-1] / cpu_floor)
            cpu_floors.append(cpu_floor)
            rounds.append((t3 - t0, t0, t1, t2, t3, (t3 - t0) / floors[-1]))
            del spec, st
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ratios = sorted(r[5] for r in rounds)
        rounds.sort()
        floors.sort()
        _, t0, t1, t2, t3, _ = rounds[len(rounds) // 2]  # the median round
        best = rounds[0][0]
        # Split the observation into the simulator's rendering and our parsing.
        from reconciler.adapters import lvm
        r0 = time.perf_counter()
        out = host.run(lvm.fullreport()).stdout
        r1 = time.perf_counter()
        lvm.parse_fullreport(out)
        r2 = time.perf_counter()
        before = host.started
        env = controller.Environment(runner=host, node="bench", resolve=host.resolve_device,
                                     clock=host.clock)
        res = controller.reconcile_once(loaded, env)
        procs = host.started - before
    return {
        "pvs": pvs, "lvs": lvs, "steps_planned": len(p.steps),
        "load_s": round(t1 - t0, 3), "observe_s": round(t2 - t1, 3),
        "plan_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3), "best_total_s": round(best, 3),
        "of_observe_sim_render_s": round(r1 - r0, 3), "of_observe_parse_s": round(r2 - r1, 3),
        "report_bytes": len(out),
        "floor_s": round(floors[len(floors) // 2], 3),
        "ratio": round(ratios[len(ratios) // 2], 2), "ratio_best": round(ratios[0], 2),
        "cpu_ratio": round(sorted(cpu_ratios)[len(cpu_ratios) // 2], 2),
        "cpu_total_s": round(sorted(cpu_totals)[len(cpu_totals) // 2], 3),
        "cpu_floor_s": round(sorted(cpu_floors)[len(cpu_floors) // 2], 3),
        "peak_rss_growth_mb": round((rss1 - rss0) / 1024, 1),
        "peak_rss_mb": round(rss1 / 1024, 1),
        "noop_pass_processes": procs, "noop_pass_exit": res.exit_code,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pvs", type=int, default=1000)
    ap.add_argument("--lvs", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--runs", type=int, default=1,
                    help="fresh child processes measuring the same (their figures' medians)")
    ap.add_argument("--against", metavar="REV", default=None,
                    help="also the product as it was at this git revision, runs alternated")
    ap.add_argument("--no-scale", action="store_true",
                    help="skip the run at ten times the size (the linearity check)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", default=None, help=argparse.SUPPRESS)  # read above
    args = ap.parse_args()
    if args.child:
        from reconciler import logs
        logs.setup("WARNING")
        print(json.dumps(measure(args.pvs, args.lvs, args.rounds)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        then_tree = None
        if args.against:
            then_tree = tmp
            tar = subprocess.run(["git", "-C", str(ROOT), "archive", args.against, "reconciler"],
                                 capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
        now, then = [], []
        for _ in range(args.runs):
            now.append(child(args.pvs, args.lvs, args.rounds))
            if then_tree is not None:
                then.append(child(args.pvs, args.lvs, args.rounds, then_tree))
    fig = _median_run(now)
    report(fig, args.rounds)
    if len(now) > 1 or then:
        runs_report(now, then, args.against)
    if not args.no_scale:
        big = child(args.pvs * 10, args.lvs * 10, 3)
        print(f"ten times the size, {big['lvs']} LVs on {big['pvs']} PVs (median of 3 rounds):")
        print(f"  total            {big['total_s']:.3f} s = {big['total_s'] / fig['total_s']:.1f} x "
              f"the {fig['lvs']}-LV figure (goal <= 11); floor {big['floor_s']:.3f} s, "
              f"ratio {big['ratio']:.2f} (in CPU time {big['cpu_ratio']:.2f})")
        print(f"  in CPU time      {big['cpu_total_s']:.3f} s = {big['cpu_total_s'] / fig['cpu_total_s']:.1f} x "
              f"the {fig['lvs']}-LV figure ({fig['cpu_total_s']:.3f} s)")
        print(f"  (load spec {big['load_s']:.3f} s, observe {big['observe_s']:.3f} s, plan {big['plan_s']:.3f} s)")
        print(f"  peak RSS growth  {big['peak_rss_growth_mb']:.1f} MB")
    print(f"  (load average {', '.join(f'{x:.2f}' for x in os.getloadavg())})")


def _median_run(runs: list[dict]) -> dict:
    """The run whose CPU-time ratio is the median of the runs'."""
    return sorted(runs, key=lambda f: f["cpu_ratio"])[len(runs) // 2]


def runs_report(now: list[dict], then: list[dict], rev: str | None) -> None:
    med = statistics.median

    def each(runs: list[dict], key: str, fmt: str = ".2f") -> str:
        return f"{med(f[key] for f in runs):{fmt}} ({', '.join(format(f[key], fmt) for f in runs)})"

    print(f"{len(now)} runs, each a fresh process of its own rounds"
          + (f", alternated with the product at {rev}:" if then else ":"))
    for name, runs in (("now", now), (f"at {rev}", then)):
        if not runs:
            continue
        print(f"  {name:<16} in CPU time {each(runs, 'cpu_ratio')} x the floor; wall-clock "
              f"{each(runs, 'ratio')}; CPU time {each(runs, 'cpu_total_s', '.3f')} s, floor's "
              f"{each(runs, 'cpu_floor_s', '.3f')} s; peak RSS growth "
              f"{each(runs, 'peak_rss_growth_mb', '.1f')} MB")
    if then:
        ratio = med(f["cpu_total_s"] for f in now) / med(f["cpu_total_s"] for f in then)
        print(f"  now / then       {ratio:.2f} in CPU time (the runs' medians)")


def child(pvs: int, lvs: int, rounds: int, tree: str | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", "--pvs", str(pvs),
                          "--lvs", str(lvs), "--rounds", str(rounds),
                          *(("--tree", tree) if tree else ())],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"benchmark failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(fig: dict, rounds: int) -> None:
    print(f"load + observe + plan, {fig['lvs']} LVs on {fig['pvs']} PVs (simulated host; median round):")
    print(f"  load spec        {fig['load_s']:.3f} s")
    print(f"  observe          {fig['observe_s']:.3f} s  (simulator renders {fig['of_observe_sim_render_s']:.3f} s, "
          f"parser {fig['of_observe_parse_s']:.3f} s, report {fig['report_bytes'] / M:.1f} MiB)")
    print(f"  plan             {fig['plan_s']:.3f} s  ({fig['steps_planned']} steps)")
    print(f"  total            {fig['total_s']:.3f} s median of {rounds} rounds, best {fig['best_total_s']:.3f} s")
    print(f"  floor            {fig['floor_s']:.3f} s  (tomllib.loads of the spec + json.loads of the report, "
          f"side by side in each round)")
    print(f"  total / floor    {fig['ratio']:.2f} median of the rounds' ratios, best {fig['ratio_best']:.2f}   (goal <= 1.2)")
    print(f"  in CPU time      {fig['cpu_ratio']:.2f} median of the rounds' ratios of this thread's CPU time "
          f"(the same rounds; preemption by other processes not counted)")
    print(f"  peak RSS growth  {fig['peak_rss_growth_mb']:.1f} MB (process peak {fig['peak_rss_mb']:.1f} MB; goal <= 40 MB)")
    print(f"  no-op pass       {fig['noop_pass_processes']} process(es), exit {fig['noop_pass_exit']} (goal: 1)")


if __name__ == "__main__":
    main()
