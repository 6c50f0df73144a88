"""pvmove resume with lvmpolld and udev running, as on production hosts (issue 8, items 6
and 14).

The guest runs systemd-udevd (``udev=True``: lvm waits for udev, ``udev_sync = 1``) and
lvmpolld with ``use_lvmpolld = 1``, so every pvmove is polled by lvmpolld's child
``lvm lvpoll --polloperation pvmove VG/pvmoveN``. An ext4 file system on the moved LV is
written to all along, and every md5 sum is checked at the end.

1. A reconciler starts the move and is SIGKILLed; lvmpolld polls the move.
2. A fresh ``--once`` sees the move in flight, polled by lvmpolld's lvpoll: it must not run
   a bare ``pvmove`` (no second poller).
3. lvmpolld's poll is killed: a fresh ``--once`` resumes the move, once; lvmpolld polls it
   again (one lvpoll).
4. lvmpolld and its poll are killed (a reboot-like loss), lvmpolld comes back (systemd's
   socket activation would start it): ``--wait`` resumes the move, finishes it and removes
   the old PV.
"""

from __future__ import annotations

import pytest
from reconciler_lab import (
    Data,
    MiB,
    assert_settled,
    commands,
    dm_names,
    install_shims,
    kill9,
    mark,
    observe,
    put_spec,
    reconcile,
    spawn_reconcile,
    wait_for,
)

from reconciler.adapters import lvm

pytestmark = pytest.mark.lab

VG = "vgglobal"
BARE = ["pvmove", "--background"]


def lvpolls(g) -> list[tuple[int, str]]:
    """lvmpolld's pollers of a pvmove: (pid, command line)."""
    out = g.run("ps -eo pid=,args= | grep '[l]vpoll --' || true").out
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1].strip())
            for line in out.splitlines() if line.strip()]


def pvmove_processes(g) -> list[str]:
    return g.run("pgrep -x pvmove || true").out.split()


def lvmpolld_pid(g) -> str:
    return g.run("pgrep -x lvmpolld || true").out.strip()


def start_lvmpolld(g) -> None:
    g.run(["lvmpolld"])  # forks into the background; its socket is /run/lvm/lvmpolld.socket
    wait_for(lambda: g.run(["test", "-S", "/run/lvm/lvmpolld.socket"], check=False).ok
             and lvmpolld_pid(g), 30, "lvmpolld to listen")


def argvs(g, section):
    return [argv for sec, argv in commands(g) if sec == section]


def test_resume_only_when_nobody_polls_with_lvmpolld_and_udev(make_guest):
    g = make_guest("g", disks=["140M", "808M"], udev=True,
                   lvm={"use_lvmpolld": 1, "polling_interval": 1})
    assert g.run("lvmconfig global/use_lvmpolld").out.strip() == "use_lvmpolld=1"
    assert g.run("pgrep -x systemd-udevd").ok
    start_lvmpolld(g)
    small, big = g.disk(0), g.disk(1)
    g.sh(f"""
        pvcreate --yes {small} {big}
        vgcreate {VG} {small} {big}
        lvcreate --yes --name lvrepnb --size 64M {VG} {small}
        lvcreate --yes --name mygfs --size 324M {VG} {big}
    """)
    install_shims(g)
    data = Data(g, f"/dev/{VG}/lvrepnb", "/mnt/lvrepnb").make()
    put_spec(g, f"""
        [vg.{VG}]
        nodes = ["node-1"]
        pvs = ["{big}"]
        [vg.{VG}.lv.lvrepnb]
        size = "64M"
        [vg.{VG}.lv.mygfs]
        size = "324M"
    """)
    # 64 MiB at 256 KiB/s: about four minutes of copying, so that on a loaded machine (each
    # `--once` costs 5-15 s of Python start-up under TCG) the move is still going at step 4,
    # which lifts the throttle.
    g.throttle(1, write_bps=256 * 1024)
    data.start_writer()

    # 1. the reconciler starts the move and dies; lvmpolld polls it
    mark(g, "run 1")
    first = spawn_reconcile(g, "--wait", log="/tmp/run1.log")
    try:
        wait_for(lambda: f"{VG}-pvmove0" in dm_names(g) or first.done(), 180,
                 "the pvmove to start")
    finally:
        print(g.run("cat /tmp/run1.log; ps -eo pid,args", check=False).out[-4000:])
    assert not first.done(), g.wait(first)
    kill9(g, first)
    wait_for(lambda: lvpolls(g), 30, "lvmpolld's poll of the move")
    (poll,) = lvpolls(g)
    assert f"--polloperation pvmove {VG}/pvmove0" in poll[1], poll
    assert not pvmove_processes(g)  # with lvmpolld, the pvmove command does not poll itself

    # 2. a fresh --once: polled by lvmpolld, so no bare pvmove and no second poller
    mark(g, "run 2")
    run = reconcile(g)
    assert run.rc == 2, run
    assert argvs(g, "run 2") == [], run
    assert lvpolls(g) == [poll]
    notes = [f["note"] for f in run.doc["final"]["in_flight"]]
    assert notes and f"polled by pid {poll[0]}" in notes[0], notes

    # 3. lvmpolld's poll dies: the next --once resumes the move, once
    g.run(["kill", "-9", str(poll[0])])
    wait_for(lambda: not lvpolls(g), 30, "the poll to die")
    assert observe(g).vgs[VG].pvmoves, "the move must still be in the metadata"
    mark(g, "run 3")
    run = reconcile(g)
    assert run.rc == 2, run
    assert argvs(g, "run 3") == [BARE], run
    wait_for(lambda: lvpolls(g), 30, "lvmpolld to poll the resumed move")
    assert len(lvpolls(g)) == 1

    # 4. lvmpolld and its poll are lost (reboot-like); lvmpolld comes back; --wait resumes
    polld = lvmpolld_pid(g)
    g.run(["kill", "-9", polld, *(str(p) for p, _ in lvpolls(g))])
    wait_for(lambda: not lvpolls(g) and lvmpolld_pid(g) != polld, 30, "lvmpolld to die")
    g.run(["rm", "-f", "/run/lvm/lvmpolld.socket", "/run/lvmpolld.pid"])
    start_lvmpolld(g)
    mark(g, "run 4")
    g.throttle(1)
    run = reconcile(g, "--wait")
    data.stop_writer()
    assert run.rc == 0, run
    assert argvs(g, "run 4") == [BARE, list(lvm.vgreduce(VG, small).argv)], run

    # the move was issued once, resumed once per lost poller, never while polled
    assert argvs(g, "run 1") == [list(lvm.pvmove(VG, "lvrepnb", small, (big,)).argv)]
    st = observe(g)
    assert st.vgs[VG].pvs == (big,) and not st.vgs[VG].pvmoves
    assert st.vgs[VG].lvs["lvrepnb"].pv_extents == {big: 16}
    assert data.written_during, "the writer should have written during the move"
    data.verify()
    assert_settled(g)
