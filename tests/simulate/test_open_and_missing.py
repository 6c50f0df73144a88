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
