"""The executor's rule for a lock another node holds: the step is deferred, as waiting on
another node, run once (no retry storm) and never a failure."""

from __future__ import annotations

from reconciler import actions, executing, state
from reconciler.runner import Command, CommandResult


class Runner:
    def __init__(self) -> None:
        self.calls: list[Command] = []

    def run(self, cmd: Command) -> CommandResult:
        self.calls.append(cmd)
        return CommandResult(command=cmd, rc=5, stdout="",
                             stderr="  LV locked by other host: vgs/data\n"
                                    "  Failed to lock logical volume vgs/data.\n")

    def read(self, path: str, *, host: str = "local") -> str | None:
        return None


def test_a_lock_held_by_another_node_defers_the_step_after_one_try():
    st = state.HostState(host="local", vgs={"vgs": state.Vg(
        name="vgs", uuid="u", extent_size=4 << 20, extent_count=10, free_count=2,
        lock_type="sanlock", missing_pv_count=0, pvs=(), lvs={"data": state.Lv(
            vg="vgs", name="data", uuid="U", size=32 << 20, attr=state.LvAttr("-wi-------"),
            layout=("linear",), segtypes=("linear",), pv_extents={})})},
        lockd=state.Lockd(running=True, lockspaces={"vgs": "sanlock"}))
    step = actions.Step(actions.SetActivation(vg="vgs", lv="data", mode="ex"), "spec")
    runner = Runner()
    slept: list[float] = []
    report = executing.apply(actions.Plan(node="node-b", steps=(step,)), runner, lambda: st, st,
                             sleep=slept.append)
    (res,) = report.results
    assert res.outcome is executing.Outcome.DEFERRED
    assert res.detail == "waiting on another node: LV locked by other host: vgs/data"
    assert len(runner.calls) == 1 and slept == [] and not report.failed
