"""Issue 17: ``create-md`` writes over its backing disk, so it does not run while a process
holds that disk open (a VM's raw disk, a dd): refused naming the process; done once it has
gone."""

from __future__ import annotations

from support.drbdsim import pair  # noqa: F401 - fixture

from reconciler import actions, controller

QEMU = "pid 4242 (qemu-system-x86)"


def create_md_calls(pair, node):
    return [c for c in pair.drbdadm_calls(node) if "create-md" in c]


def test_create_md_is_refused_while_a_process_holds_the_backing_disk_open(pair):
    pair.hosts["node-b"].open_device("/dev/vdb", 4242, "qemu-system-x86")
    loaded = pair.spec()
    out = pair.rounds(loaded, 3)
    rb = out["node-b"]
    assert rb.exit_code == controller.EXIT_ERROR and QEMU in rb.error
    results = [r for res in pair.results["node-b"] if res.report for r in res.report.results
               if isinstance(r.step.action, actions.CreateDrbdMetadata)]
    assert results and all(str(r.outcome) == "failed" and not r.results for r in results)
    assert f"the backing disk /dev/vdb is open by {QEMU}; stop it first" in results[0].detail
    assert create_md_calls(pair, "node-b") == []
    pair.hosts["node-b"].close_device("/dev/vdb", 4242)
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), \
        [str(r.final) for r in out.values()]
    assert len(create_md_calls(pair, "node-b")) == 1
    assert pair.res("node-a").disk == pair.res("node-b").disk == "UpToDate"


def test_up_is_refused_while_a_process_holds_the_backing_disk_open(pair):
    # after a reboot, recorded metadata is brought up as it is: DRBD then writes the disk
    # (a resync from the peer), so not under a process writing it directly (a VM started
    # on the raw disk while DRBD was down); refused naming it, done once it has gone
    loaded = pair.spec()
    pair.converge(loaded)
    pair.reboot("node-b")
    pair.hosts["node-b"].open_device("/dev/vdb", 4242, "qemu-system-x86")
    ups = pair.drbdadm_calls("node-b").count(("drbdadm", "up", "r0"))
    out = pair.rounds(loaded, 2)
    assert out["node-b"].exit_code == controller.EXIT_ERROR and QEMU in out["node-b"].error
    assert pair.drbdadm_calls("node-b").count(("drbdadm", "up", "r0")) == ups
    assert not pair.node("node-b").res
    pair.hosts["node-b"].close_device("/dev/vdb", 4242)
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    assert pair.res("node-b").disk == "UpToDate"
