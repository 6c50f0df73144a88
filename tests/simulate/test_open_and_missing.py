"""An open LV and a failed disk on the simulated host, as lvm2 shows and obeys them (the
lab's recordings, replayed in test_recorded_scenarios.py, fix the exact words), and the
reconciler's rules built on them, run against the simulator instead of hand-built states."""

from __future__ import annotations

import textwrap

import pytest
from support import M
from support.simtools import open_device, run

from reconciler import controller, state
from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading


def observe(host: SimulatedHost):
    res = host.run(Command(argv=FULLREPORT_ARGV, mutates=False))
    assert res.rc == 0
    return lvm.parse_fullreport(res.stdout), res.stderr


@pytest.fixture
def lvhost(host):
    assert run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{64 * M}b", "vg").rc == 0
    return host


@pytest.mark.parametrize("how, message", [
    ("mount", "contains a filesystem in use."),
    ("holder", "is used by another device."),
    ("process", "in use."),
])
def test_an_open_lv_is_shown_open_and_lvremove_refuses_it(lvhost, how, message):
    node = "/dev/vg/data"
    if how == "mount":
        lvhost.mount("/dev/mapper/vg-data", "/srv")
        release = lambda: lvhost.umount("/srv")  # noqa: E731
    elif how == "holder":
        lvhost.hold(node, "dm-7")
        release = lambda: lvhost.unhold(node, "dm-7")  # noqa: E731
    else:
        release = open_device(lvhost, node, 4242, "qemu-system-x86")
    st, _ = observe(lvhost)
    assert st.vgs["vg"].lvs["data"].attr.is_open
    res = run(lvhost, "lvremove", "--yes", "vg/data")
    assert (res.rc, res.stderr) == (5, f"  Logical volume vg/data {message}\n")
    assert "data" in lvhost.vg("vg").lvs
    release()
    st, _ = observe(lvhost)
    assert not st.vgs["vg"].lvs["data"].attr.is_open
    assert run(lvhost, "lvremove", "--yes", "vg/data").rc == 0


def test_a_failed_disk_leaves_its_pv_missing_and_the_vg_partial(lvhost):
    run(lvhost, "lvcreate", "--yes", "--name", "onc", "--size", f"{8 * M}b", "vg", "/dev/vdc")
    lvhost.fail_device("/dev/vdc")
    st, stderr = observe(lvhost)
    vg = st.vgs["vg"]
    uuid = lvhost.pv("/dev/vdc").uuid
    # lvm reports it as "[unknown]"; the parser keys it by its uuid (issue 17)
    assert vg.missing_pv_count == 1 and st.pvs[state.missing_pv_key(uuid)].missing
    assert vg.lvs["onc"].attr.health_char == "p" and vg.lvs["data"].attr.is_healthy
    # the report (--foreign) names the VG's missing PV once; "Couldn't find device" is not
    # printed by it (lab, pv_missing), only by the commands below
    assert stderr.startswith(f"  WARNING: VG vg is missing PV {uuid} (last written to /dev/vdc).\n"
                             f"  WARNING: Couldn't find all devices for LV vg/onc ")
    assert "Couldn't find device with uuid" not in stderr
    res = run(lvhost, "lvcreate", "--yes", "--name", "x", "--size", f"{8 * M}b", "vg")
    assert res.rc == 5 and "Cannot change VG vg while PVs are missing." in res.stderr
    res = run(lvhost, "lvremove", "--yes", "vg/onc")  # lvm does remove it (recorded)
    assert res.rc == 0 and "onc" not in lvhost.vg("vg").lvs
    assert "(last written to [unknown])" in run(lvhost, "lvremove", "--yes", "vg/data").stderr


def test_a_raid1_image_on_a_failed_disk_is_out_of_sync_once_md_notices(host):
    run(host, "lvcreate", "--yes", "--name", "m", "--size", f"{32 * M}b", "vg", "/dev/vdb")
    run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg/m", "/dev/vdc")
    host.clock.advance(60)
    host.fail_device("/dev/vdc")
    lv = observe(host)[0].vgs["vg"].lvs["m"]
    assert lv.attr.health_char == "p" and lv.sync_percent == 100.0
    assert all(img.in_sync for img in lv.images)  # as lvm shows it right after the failure
    host.clock.advance(6)
    lv = observe(host)[0].vgs["vg"].lvs["m"]
    assert [img.in_sync for img in lv.images] == [True, False]


SPEC = """
[vg.vg]
nodes = ["node-1"]
pvs = ["/dev/vdb", "/dev/vdc"]

[vg.vg.lv.data]
state = "absent"
"""


def one_pass(tmp_path, host: SimulatedHost, text: str) -> controller.PassResult:
    (tmp_path / "spec.toml").write_text(textwrap.dedent(text))
    env = controller.Environment(runner=host, node="node-1", resolve=host.resolve_device,
                                 clock=host.clock)
    return controller.reconcile_once(loading.load(tmp_path / "spec.toml"), env,
                                     memory=controller.Memory())


def test_the_reconciler_never_removes_an_lv_a_process_holds_open(tmp_path, lvhost):
    open_device(lvhost, "/dev/vg/data", 4242, "postgres")
    r = one_pass(tmp_path, lvhost, SPEC)
    assert r.exit_code == controller.EXIT_ERROR
    assert any("open" in b.reason for b in r.plan.blocked)
    assert not [c for c in lvhost.calls if c.argv[0] == "lvremove"]
    assert "data" in lvhost.vg("vg").lvs


def test_the_reconciler_never_reduces_a_vg_by_a_missing_pv(tmp_path, host):
    host.fail_device("/dev/vdc")
    r = one_pass(tmp_path, host, """
        [vg.vg]
        nodes = ["node-1"]
        pvs = ["/dev/vdb"]
        """)
    assert r.exit_code == controller.EXIT_ERROR
    uuid = host.pv("/dev/vdc").uuid  # lvm calls the PV "[unknown]": the uuid names it
    assert any("missing" in b.reason and uuid in b.reason for b in r.plan.blocked)
    assert [c.argv[:2] for c in host.calls] == [("lvm", "fullreport")]
    assert len(host.vg("vg").pvs) == 2


def test_openers_of_a_disk_include_its_partitions_and_the_reverse():
    """As the real scan reads sysfs: a partition held open is its disk in use (md or dd onto
    the disk overwrites it), and a disk held open is each partition in use."""
    host = SimulatedHost(name="local")
    host.add_device("/dev/vdc", 64 * M)
    part = host.add_partition("/dev/vdc", 1, 32 * M)
    host.open_device(part, 4242, "postgres")
    assert host.openers(["/dev/vdc", part]) == {"/dev/vdc": ("pid 4242 (postgres)",),
                                                part: ("pid 4242 (postgres)",)}
    host.close_device(part, 4242)
    host.open_device("/dev/vdc", 77, "qemu-system-x86")
    assert host.openers([part]) == {part: ("pid 77 (qemu-system-x86)",)}


def test_the_exclusive_open_probe_answers_from_what_the_kernel_claims():
    """``claimed`` (Runner.claimed): EBUSY for a device the kernel holds exclusively, by
    any of its names, with bd_may_claim's disk/partition rule; a plain open is no claim."""
    from reconciler.simulate.cluster import Cluster
    cluster = Cluster()
    host = cluster.add_host("h")
    cluster.join_iscsi("h")
    for d in ("/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde", "/dev/vdf"):
        host.add_device(d, 64 * M)
    part = host.add_partition("/dev/vdc", 1, 32 * M)
    paths = ["/dev/vdb", "/dev/vdc", part, "/dev/vdd", "/dev/vde", "/dev/vdf", "/dev/nope"]
    assert host.claimed(paths) == {p: False for p in paths}
    host.open_device("/dev/vdb", 7, "qemu-system-x86")  # a plain open: no claim
    host.mount(part, "/srv")  # a partition mounted: its disk is refused too
    host.add_vg("vg", ["/dev/vdd"])  # a PV with an active LV: its dm map claims it
    host.add_lv("vg", "data", 16 * M)
    host.iscsi.backstores["iblock_0/x"] = "/dev/vde"  # LIO's iblock: no holder link
    host.open_device("/dev/vdf", 9, "mkfs.ext4", exclusive=True)
    assert host.claimed(paths) == {
        "/dev/vdb": False, "/dev/vdc": True, part: True, "/dev/vdd": True, "/dev/vde": True,
        "/dev/vdf": True, "/dev/nope": False}
    assert host.openers(["/dev/vdf"])["/dev/vdf"] == ("pid 9 (mkfs.ext4)",)
    with pytest.raises(ValueError, match="exclusive open is refused"):
        host.open_device("/dev/vde", 10, "pvcreate", exclusive=True)
    with pytest.raises(ValueError, match="busy"):
        host.mount("/dev/vde", "/mnt")  # mount claims the device too: refused like the kernel
    host.close_device("/dev/vdf", 9)
    host.umount("/srv")
    assert host.claimed(["/dev/vdc", part, "/dev/vdf"]) == {
        "/dev/vdc": False, part: False, "/dev/vdf": False}
    with pytest.raises(UnsupportedCommand):
        host.claimed(["/dev/drbd0"])  # no DRBD on this host: not guessed
    with pytest.raises(UnsupportedCommand):
        host.claimed(["/dev/vdb"], host="other")


def test_the_exclusive_open_probe_sees_drbd_s_attached_backing_disk():
    """DRBD 8.4 claims its attached backing disk (attach: an exclusive open of it)."""
    from reconciler.simulate.cluster import Cluster
    from reconciler.simulate.drbd_model import Meta
    cluster = Cluster()
    host = cluster.add_host("h")
    node = cluster.join_drbd("h")
    host.add_device("/dev/vdb", 64 * M)
    node.metadata["/dev/vdb"] = Meta("Inconsistent", "")
    assert host.claimed(["/dev/vdb", "/dev/drbd0"]) == {"/dev/vdb": False,
                                                                   "/dev/drbd0": False}
    node.loaded = True
    node.res[0] = _drbd_res("/dev/vdb")
    assert host.claimed(["/dev/vdb", "/dev/drbd0"]) == {
        "/dev/vdb": True, "/dev/drbd0": "EMEDIUMTYPE: Wrong medium type"}  # a Secondary
    node.res[0].role = "Primary"
    assert host.claimed(["/dev/drbd0"]) == {"/dev/drbd0": False}
    # and links its holder, as the lab's 6.1 kernel shows (tests/lab/test_lab_drbd.py)
    assert host.read("/sys/dev/block/254:16/holders/") == "drbd0\n"
    node.mounts[0] = ["/mnt/d"]
    assert host.claimed(["/dev/drbd0"]) == {"/dev/drbd0": True}


def _drbd_res(disk):
    from reconciler.simulate.drbd_model import NodeConf, Res, ResConf
    conf = ResConf("r0", nodes={"h": NodeConf("h", 0, disk, "10.0.0.1:7789"),
                                "p": NodeConf("p", 0, disk, "10.0.0.2:7789")})
    return Res(conf=conf, minor=0, disk_path=disk)
