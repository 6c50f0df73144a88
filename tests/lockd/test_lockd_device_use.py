"""Issue 17: a deactivation takes the LV's device away, so it does not run while a process
holds the device open with a plain open() (which neither a mount nor lv_attr shows here):
refused naming the process; done once it has gone, and the other node then takes the LV."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from lockd_passes import cluster, converge, data, run_pass, spec  # noqa: E402

from reconciler import executing  # noqa: E402

QEMU = "pid 4242 (qemu-system-x86)"


def mode(c, node: str) -> str:
    return c.locks.holders(c.storage.vgs["vgs"].lvs["data"].uuid).get(node, "off")


def test_a_deactivation_is_refused_while_a_process_holds_the_lv_open():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")))
    assert mode(c, "node-a") == "ex"
    c.node("node-a").opened["/dev/vgs/data"] = [QEMU]
    moved = spec(data(node_b="exclusive", all="inactive"))
    a = run_pass(c, "node-a", moved)
    off = a.outcome("lv:vgs/data:deactivate")
    assert off.outcome is executing.Outcome.FAILED and not off.results
    assert f"the LV /dev/vgs/data is open by {QEMU}; stop it first" in off.detail
    assert a.mutating == [] and mode(c, "node-a") == "ex"
    del c.node("node-a").opened["/dev/vgs/data"]
    converge(c, moved)
    assert mode(c, "node-a") == "off" and mode(c, "node-b") == "ex"
