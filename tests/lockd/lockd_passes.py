"""Passes of the real observe -> plan -> apply code against the lockd simulator's nodes."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler import actions, executing, observing, planning
from reconciler.simulate.lockd_tools import LockdCluster
from reconciler.spec import models

MiB = 1024**2


def cluster() -> LockdCluster:
    c = LockdCluster({"node-a": 1, "node-b": 2})
    c.add_disk("/dev/vda", 1024 * MiB)
    c.add_disk("/dev/vdb", 256 * MiB)
    return c


def spec(lv: dict | None = None, *, create_on: str = "node-a", scope: str = "shared",
         pvs: tuple[str, ...] = ("/dev/vda", "/dev/vdb")) -> models.Spec:
    vg: dict = {"nodes": ["node-a", "node-b"], "scope": scope, "pvs": list(pvs),
                "lv": lv if lv is not None else {}}
    if scope == "shared":
        vg["create_on"] = create_on
    return models.Spec.model_validate({"vg": {"vgs": vg}})


def data(size: str = "32M", **activation: str) -> dict:
    return {"data": {"size": size, "activation": {k.replace("_", "-") if k != "all" else "*": v
                                                  for k, v in activation.items()}}}


@dataclass
class PassOut:
    plan: actions.Plan
    results: list[executing.StepResult]
    final: actions.Plan
    commands: list[tuple[str, ...]]

    def outcome(self, key: str) -> executing.StepResult:
        return next(r for r in self.results if r.step.key == key)

    @property
    def mutating(self) -> list[tuple[str, ...]]:
        return [c for c in self.commands if c[0] not in ("lvm", "lvmlockctl")]


def run_pass(c: LockdCluster, node: str, sp: models.Spec) -> PassOut:
    runner = c.node(node)
    devices = observing.spec_devices(sp)

    def resolve(path: str):
        d = c.storage.devices.get(path)
        return d.devno if d else None

    def observe():
        return observing.observe(runner, host="local", devices=devices, resolve=resolve,
                                 lockd=True)

    st = observe()
    plan = planning.plan(sp, st, node=node)
    report = executing.apply(plan, runner, observe, st, sleep=lambda s: None)
    final = planning.plan(sp, report.state, node=node)
    return PassOut(plan, report.results, final, [cmd.argv for cmd in runner.calls])


def converge(c: LockdCluster, sp: models.Spec, nodes=("node-a", "node-b"), passes: int = 4):
    outs = []
    for _ in range(passes):
        for n in nodes:
            outs.append(run_pass(c, n, sp))
    return outs
