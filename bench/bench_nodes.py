"""Benchmark: one shared VG under lvmlockd seen by 2, 200 and 2,000 nodes (the lockd
simulator, each node running the real pass through the tests' one harness).

Prints figures; asserts nothing (tests/lockd/scenarios/test_many_nodes.py asserts the counts
at 2 and 200 nodes). Goal (issue 22): each node's no-op pass runs the same processes
(``lvm fullreport`` and ``lvmlockctl``) and no lock operation whatever the node count; its
time grows at most with the VG's size, never with the node count; moving one LV between two
nodes touches those two only.

    python3 bench/bench_nodes.py [--counts 2,200,2000] [--sample 20]

Per node count: the cluster is built (host_id 1..N, sanlock's range), the spec converged
(the creator creates the VG and its LV, every other node starts its lockspace), then
``--sample`` nodes spread over the cluster each run one no-op pass: its wall time (median),
the processes it started and the lock operations (lock table takes and drops) it caused.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

M = 1024**2


def build(count: int):
    from support.nodes import Nodes

    from reconciler.simulate.lockd_tools import LockdCluster
    names = [f"node-{i:04d}" for i in range(1, count + 1)]
    c = LockdCluster({n: i for i, n in enumerate(names, 1)})
    c.add_disk("/dev/vda", 1024 * M)
    c.add_disk("/dev/vdb", 256 * M)
    ops = {"n": 0}
    for meth in ("take", "drop"):
        real = getattr(c.locks, meth)

        def counted(*a, _real=real, **k):
            ops["n"] += 1
            return _real(*a, **k)
        setattr(c.locks, meth, counted)
    return c, names, ops, Nodes.of_lockd


def spec(names: list[str], owner: str) -> dict:
    return {"vg": {"vgs": {"nodes": ["*"], "scope": "shared", "create_on": names[0],
                           "pvs": ["/dev/vda", "/dev/vdb"],
                           "lv": {"data": {"size": "32M",
                                           "activation": {owner: "exclusive",
                                                          "*": "inactive"}}}}}}


def measure(count: int, sample: int) -> dict:
    c, names, ops, of_lockd = build(count)
    with tempfile.TemporaryDirectory() as tmp:
        n = of_lockd(Path(tmp), c)
        loaded = n.spec(spec(names, names[0]))
        t0 = time.perf_counter()
        n.one_pass(names[0], loaded)
        for name in names:
            n.one_pass(name, loaded)
        setup = time.perf_counter() - t0
        picked = names[:: max(1, count // sample)][:sample]
        times, procs, lockops = [], set(), set()
        for name in picked * 3:  # each sampled node three times (the first ones warm up)
            before = ops["n"]
            t = time.perf_counter()
            p = n.one_pass(name, loaded)
            times.append(time.perf_counter() - t)
            assert p.exit_code == 0 and not p.changes, (name, p.exit_code, p.changes)
            procs.add(tuple(sorted(cmd.argv[0] + (" " + cmd.argv[1] if cmd.argv[0] == "lvm" else "")
                                   for cmd in p.commands)))
            lockops.add(ops["n"] - before)
    times = times[len(picked):]  # the first round warmed the caches up
    return {"count": count, "median_s": statistics.median(times), "max_s": max(times),
            "procs": procs, "lockops": lockops, "setup_s": setup}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="2,200,2000")
    ap.add_argument("--sample", type=int, default=20)
    args = ap.parse_args()
    from reconciler import logs
    logs.setup("ERROR")
    rows = [measure(int(k), args.sample) for k in args.counts.split(",")]
    print("one shared VG (2 PVs, 1 LV exclusive on one node), no-op pass per node "
          "(lockd simulator):")
    base = rows[0]["median_s"]
    for r in rows:
        print(f"  {r['count']:>5} nodes: {r['median_s'] * 1000:7.2f} ms median "
              f"({r['median_s'] / base:4.2f} x {rows[0]['count']} nodes; max "
              f"{r['max_s'] * 1000:.2f} ms), processes {sorted(r['procs'])}, lock operations "
              f"{sorted(r['lockops'])}   (cluster converged in {r['setup_s']:.1f} s)")


if __name__ == "__main__":
    main()
