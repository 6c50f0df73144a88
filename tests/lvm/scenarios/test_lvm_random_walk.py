"""Issue 17: random walks of spec edits and faults over LVM moves, on the simulator, with
fixed seeds (the same walks every run). Each walk edits placement, move strategy, size and
the VG's PVs between passes of the controller's real pass, with disks that fail and come
back and crashes (reboots) between commands. Throughout: no LV ever has fewer complete
copies than the one it started with, and no data is lost (the simulator's content). At the
end, faults cleared: the host converges on the last spec, with none of the reconciler's
own intermediate states left (no reconciler_split tag, no extra leg), or is blocked with a
reason that stays the same from pass to pass (an operator's to act on).
"""

from __future__ import annotations

import random
import re

import pytest
from support import M

from reconciler import controller
from reconciler.simulate import SimulatedHost
from reconciler.simulate.host import SimulatedCrash

DISKS = ("/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde")
LVS = {"a": ("/dev/vdb", 48), "b": ("/dev/vdc", 32)}


def _spec_text(spec: dict) -> str:
    pvs = ", ".join(f'"{p}"' for p in spec["pvs"])
    out = [f'[vg.vg0]\nnodes = ["*"]\nscope = "local"\npvs = [{pvs}]\n']
    for lv, want in sorted(spec["lv"].items()):
        out.append(f'[vg.vg0.lv.{lv}]\nsize = "{want["size"]}M"\nmove = "{want["move"]}"\n')
        if want["placement"]:
            out.append(f'placement = ["{want["placement"]}"]\n')
    return "".join(out)


def _complete_copies(host: SimulatedHost, lv_name: str, data: str) -> int:
    """Copies of the LV that hold all its data: the LV itself when linear, else each raid1
    image whose own content is all of it (whatever the kernel's flags say of it: a leg
    that failed and came back still holds what it held; a disk away still holds it too)."""
    lv = host.lv("vg0", lv_name)
    parts = lv.images or [lv]
    n = 0
    for part in parts:
        saved = lv.content
        lv.content = part.content  # read that copy alone
        try:
            n += host.fingerprint(f"/dev/vg0/{lv_name}") == data
        finally:
            lv.content = saved
    return n


class Walk:
    def __init__(self, scenario, seed: int):
        self.rng = random.Random(seed)
        self.host = SimulatedHost(rate_bytes_per_s=2 * M, seed=f"walk{seed}")
        for d in DISKS:
            self.host.add_device(d, 256 * M)
        self.host.add_vg("vg0", ["/dev/vdb", "/dev/vdc", "/dev/vdd"])
        self.data = {}
        for lv, (pv, size) in LVS.items():
            self.host.add_lv("vg0", lv, size * M, pvs=[pv])
            self.host.fill(f"/dev/vg0/{lv}", lv)
            self.data[lv] = self.host.fingerprint(f"/dev/vg0/{lv}")
        self.sc = scenario(self.host)
        self.spec = {"pvs": ["/dev/vdb", "/dev/vdc", "/dev/vdd"],
                     "lv": {lv: {"size": size, "placement": pv,
                                 "move": self.rng.choice(["pvmove", "mirror-then-split"])}
                            for lv, (pv, size) in LVS.items()}}
        self.failed: list[str] = []
        self.log: list[str] = []

    def check(self) -> None:
        for lv, data in self.data.items():
            assert _complete_copies(self.host, lv, data) >= 1, (lv, self.log)

    def edit(self) -> None:
        rng, spec = self.rng, self.spec
        kind = rng.choice(["placement", "placement", "placement", "move", "grow", "pvs"])
        lv = rng.choice(sorted(spec["lv"]))
        want = spec["lv"][lv]
        if kind == "placement":
            want["placement"] = rng.choice([None, *spec["pvs"]])
        elif kind == "move":
            want["move"] = rng.choice(["pvmove", "mirror-then-split"])
        elif kind == "grow" and want["size"] < 64:
            want["size"] += 8
        elif kind == "pvs":
            pvs = sorted(set(spec["pvs"]) ^ {rng.choice(DISKS)})
            if set(pvs) - set(spec["pvs"]) & set(self.failed):
                # pvcreate/vgextend of a failed disk is not recorded, so the simulator
                # refuses it (UnsupportedCommand ends the test): the walk does not ask it
                self.log.append("edit pvs skipped: it adds a failed disk")
                return
            if len(pvs) >= 2:
                spec["pvs"] = pvs
                for w in spec["lv"].values():
                    if w["placement"] not in pvs:
                        w["placement"] = rng.choice(pvs)
        self.log.append(f"edit {kind}: {_spec_text(spec)!r}")

    def fault(self) -> None:
        rng = self.rng
        kind = rng.choice(["none", "none", "fail", "crash"])
        if kind == "fail" and not self.failed:
            disk = rng.choice(DISKS[:4])
            pv = self.host.model.pv(disk)
            if disk in self.spec["pvs"] and (pv is None or pv.vg is None):
                # not in the VG yet: the next pass would pvcreate or vgextend it, which the
                # simulator does not model on a failed disk (not recorded)
                self.log.append(f"fail {disk} skipped: the spec has it and it is not in vg0 yet")
                return
            self.host.fail_device(disk)
            self.failed.append(disk)
            self.log.append(f"fail {disk}")
        elif kind == "crash":
            self.host.crash_after(rng.randint(1, 3))
            self.log.append("crash armed")

    def restore(self) -> None:
        for disk in self.failed:
            self.host.restore_device(disk)
            self.log.append(f"restore {disk}")
        self.failed = []

    def one_pass(self) -> controller.PassResult | None:
        loaded = self.sc.spec(_spec_text(self.spec))
        try:
            r = self.sc.one_pass(loaded)
        except SimulatedCrash:
            self.host.recover()
            self.sc.memory = controller.Memory()
            self.log.append("crashed, rebooted")
            return None
        self.host.clock.advance(r.requeue_after or 5.0)
        self.log.append(f"pass: exit {r.exit_code} "
                        f"{[a.describe() for a in (s.action for s in r.plan.steps)]} "
                        f"{[b.reason[:60] for b in r.final.blocked]}")
        return r

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.edit()
            self.fault()
            for _ in range(self.rng.randint(1, 3)):
                self.one_pass()
                self.check()
            if self.failed and self.rng.random() < 0.6:
                self.host.clock.advance(10)
                self.restore()
        self.host.clock.advance(10)
        self.restore()
        if self.host.crashed:
            self.host.recover()
        self.host.crash_after(10**9)  # a crash still armed: never, from here

    def settle(self) -> controller.PassResult:
        loaded = self.sc.spec(_spec_text(self.spec))
        for _ in range(300):
            r = self.sc.one_pass(loaded)
            self.check()
            if r.exit_code != controller.EXIT_PENDING:
                return r
            self.host.clock.advance(r.requeue_after or 5.0)
        raise AssertionError(f"no end: {r.final}\n" + "\n".join(self.log[-30:]))


# A blocked end is accepted only for a reason the operator must act on. Every final spec of
# these walks fits the disks and every fault is cleared before the end, so none should occur.
ACTIONABLE = (re.compile(r"needs \d+ free extents on .*, which have \d+"),)


@pytest.mark.parametrize("seed", range(48))
def test_random_walk_of_edits_and_faults_over_lvm_moves(scenario, seed):
    walk = Walk(scenario, seed)
    walk.run(8)
    r = walk.settle()
    for lv, data in walk.data.items():
        assert walk.host.fingerprint(f"/dev/vg0/{lv}") == data, (lv, walk.log)
    if r.exit_code == controller.EXIT_IN_SYNC:
        for lv in walk.data:
            got = walk.host.lv("vg0", lv)
            assert got.kind == "linear" and got.tags == [], (lv, got.kind, got.tags, walk.log)
            want = walk.spec["lv"][lv]
            assert got.extents * 4 * M == want["size"] * M
        return
    # blocked: for a reason an operator acts on, the same pass after pass
    assert r.exit_code == controller.EXIT_ERROR and r.final.blocked, (r, walk.log)
    for b in r.final.blocked:
        assert any(p.search(b.reason) for p in ACTIONABLE), (b, walk.log[-20:])
    again = walk.settle()
    assert [(b.object, b.reason) for b in again.final.blocked] == [
        (b.object, b.reason) for b in r.final.blocked], walk.log
