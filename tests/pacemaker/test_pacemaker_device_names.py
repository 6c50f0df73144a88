"""Pacemaker's device names are devices, not strings (issue 20, review F3, F4): a Filesystem
primitive's ``device`` and an iSCSILogicalUnit's ``path`` are resolved on this node like the
spec's paths (stat, symlinks followed), so another spelling of the same device is still
Pacemaker's; a name this node cannot resolve (UUID=, LABEL=, -U, a missing link) blocks every
step that takes a device here, saying so; an iSCSI session's disks are compared by device
number. And an attribute set with a ``<rule>`` or a ``score`` makes a primitive own every
value any of its sets gives. Node-1 is the md clone's host (``support.mdfix``: the clone's
target ``NEW`` is /dev/vdb) or an iSCSI initiator."""

from __future__ import annotations

import pytest
from support import M
from support.mdfix import NEW, clone_host, clone_spec
from support import pcmk as pcmk_xml
from support.nodes import Nodes
from support.pcmk import (blocked, lv_host, lv_spec, lvchanges, recorded_cib, with_cib,
                          with_pacemaker)

from reconciler import controller
from reconciler.adapters import pacemaker as pcmk
from reconciler.simulate.cluster import Cluster
from reconciler.simulate.pacemaker_tools import cib, primitive

ADD_NEW = ("mdadm", "/dev/md100", "--add", NEW)


def filesystem(device: str) -> str:
    return primitive("fs-new", "ocf:heartbeat:Filesystem", device=device, directory="/srv/new",
                     fstype="ext4")


def test_a_filesystem_naming_the_clone_target_by_its_kernel_name_owns_it(scenario):
    h = with_pacemaker(clone_host(), filesystem("/dev/vdb"))  # NEW is /dev/vdb
    sc = scenario(h)
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert ADD_NEW not in sc.mutations()
    assert "managed by Pacemaker (ocf:heartbeat:Filesystem primitive fs-new" in blocked(r)
    assert "the device it mounts at /srv/new" in blocked(r)
    assert ("device /dev/vdb (Pacemaker's: ocf:heartbeat:Filesystem primitive fs-new, mounted "
            "at /srv/new)") in r.final.unmanaged


def test_an_iscsi_logical_unit_naming_the_clone_target_by_its_kernel_name_owns_it(scenario):
    h = with_pacemaker(clone_host(), primitive(
        "lu-new", "ocf:heartbeat:iSCSILogicalUnit", target_iqn="iqn.2003-01.org.example:t",
        lun="3", path="/dev/vdb"))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert ADD_NEW not in sc.mutations()
    assert "the device it exports as LUN 3 of iqn.2003-01.org.example:t" in blocked(r)


@pytest.mark.parametrize("device", ["UUID=0b5f6a7e-2f0c-4c1e-9a55-3d1c3b1f7e42",
                                    "LABEL=data", "-U 0b5f6a7e-2f0c-4c1e-9a55-3d1c3b1f7e42",
                                    "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"])
def test_a_device_name_this_node_cannot_resolve_blocks_every_step_that_takes_a_device(
        scenario, device):
    h = with_pacemaker(clone_host(), filesystem(device))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert ADD_NEW not in sc.mutations() and r.exit_code == controller.EXIT_ERROR
    why = blocked(r)
    assert (f"clone db: Pacemaker names a device this node cannot resolve: {device!r} "
            "(ocf:heartbeat:Filesystem primitive fs-new)") in why
    assert f"so it may be {NEW}" in why and "not owned" not in why
    assert "name it in the CIB by a path that exists on every node" in why
    # once the CIB names it so, the clone goes on
    with_pacemaker(h, filesystem("/dev/vdc"))
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert ADD_NEW in sc.mutations(), blocked(r)


def test_a_step_that_takes_no_device_still_runs_beside_an_unresolved_name(scenario):
    h = lv_host(filesystem("LABEL=data"))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(lv_spec_with_new()))
    assert h.lv("vg0", "new") is not None  # lvcreate takes no device
    assert lvchanges(h) == []  # a deactivation does
    assert "lv vg0/logs: Pacemaker names a device this node cannot resolve: 'LABEL=data'" \
        in blocked(r)


def lv_spec_with_new() -> dict:
    from support.specs import local_vg
    return local_vg("vg0", ("/dev/vdb", "/dev/vdc"), lv={
        "data": {"size": "32M", "activation": {"node-1": "active"}},
        "logs": {"size": "16M", "activation": {"node-1": "inactive"}},
        "new": {"size": "8M"}})


# -- an iSCSI session's disk: by device number, not /dev/sdX ------------------------------

IQN = "iqn.2003-01.org.example.a:export0"
PORTAL = "192.0.2.1:3260"
DISK0 = f"/dev/disk/by-path/ip-{PORTAL}-iscsi-{IQN}-lun-0"


def session_spec(state: str) -> dict:
    """a exports /dev/vdb as LUN 0 of export0 to b; b's session to it is ``state``."""
    return {"iscsi_target": {"export0": {"nodes": ["a"], "iqn": IQN, "portals": [PORTAL],
                                         "acls": ["iqn.2004-10.com.example:b"],
                                         "lun": {"0": {"device": "/dev/vdb"}}}},
            "iscsi_session": {"from_a": {"nodes": ["b"], "portal": PORTAL, "target": IQN,
                                         "luns": [0], "state": state}}}


@pytest.fixture
def pair(tmp_path):
    cluster = Cluster()
    a = cluster.add_host("a", seed="a")
    b = cluster.add_host("b", seed="b")
    cluster.join_iscsi("a")
    cluster.join_iscsi("b", initiator="iqn.2004-10.com.example:b")
    a.add_device("/dev/vdb", 64 * M)
    n = Nodes(tmp_path, cluster)
    n.b = b
    spec = n.spec(session_spec("logged-in"))
    assert n.converge_node("a", spec).exit_code == controller.EXIT_IN_SYNC
    assert n.converge_node("b", spec).exit_code == controller.EXIT_IN_SYNC
    return n


def pacemaker_on(host, *primitives: str) -> None:
    with_cib(host, cib(*primitives), node="b")


def kernel_name(host, link: str) -> str:
    devno = host.resolve_device(link)
    assert devno is not None
    dev = host.device_by_number(devno)
    return dev.path


def test_a_filesystem_on_a_session_disks_kernel_name_keeps_the_session_logged_in(pair):
    sd = kernel_name(pair.b, DISK0)
    assert sd.startswith("/dev/sd")
    pacemaker_on(pair.b, filesystem(sd))
    r = pair.one_pass("b", pair.spec(session_spec("absent")))
    assert r.exit_code == controller.EXIT_ERROR
    assert not any(c.argv[:1] == ("iscsiadm",) and "--logout" in c.argv for c in pair.b.calls)
    assert "iscsi session from_a: managed by Pacemaker (ocf:heartbeat:Filesystem primitive " \
        "fs-new" in blocked(r)


def test_a_filesystem_on_a_session_disks_by_path_name_is_listed_as_pacemakers(pair):
    pacemaker_on(pair.b, filesystem(DISK0))
    r = pair.one_pass("b", pair.spec(session_spec("logged-in")))
    assert (f"device {DISK0} (Pacemaker's: ocf:heartbeat:Filesystem primitive fs-new, mounted "
            "at /srv/new)") in r.final.unmanaged


# -- attribute sets with rules or scores: every value any set gives ---------------------

RULES = """\
      <primitive id="fs-r" class="ocf" provider="heartbeat" type="Filesystem">
        <instance_attributes id="fs-r-n2" score="2">
          <rule id="fs-r-n2-rule" score="0"><expression id="e1" attribute="#uname" operation="eq" value="node-2"/></rule>
          <nvpair id="fs-r-n2-device" name="device" value="/dev/vg0/other"/>
        </instance_attributes>
        <instance_attributes id="fs-r-n1" score="1">
          <rule id="fs-r-n1-rule" score="0"><expression id="e2" attribute="#uname" operation="eq" value="node-1"/></rule>
          <nvpair id="fs-r-n1-device" name="device" value="/dev/vdb"/>
        </instance_attributes>
        <instance_attributes id="fs-r-common">
          <nvpair id="fs-r-directory" name="directory" value="/srv/r"/>
          <nvpair id="fs-r-fstype" name="fstype" value="ext4"/>
        </instance_attributes>
      </primitive>"""


def test_a_primitive_with_ruled_attribute_sets_owns_every_value_they_give():
    r, = pcmk.parse_cib(recorded_cib(RULES))
    assert r.values("device") == ("/dev/vg0/other", "/dev/vdb")
    assert r.values("directory") == ("/srv/r",)
    assert r.may_lack("device") and not r.may_lack("directory")


def test_the_device_a_ruled_set_gives_node_1_is_not_overwritten_there(scenario):
    h = with_pacemaker(clone_host(), RULES)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert ADD_NEW not in sc.mutations()
    assert "managed by Pacemaker (ocf:heartbeat:Filesystem primitive fs-r" in blocked(r)
    assert ("device /dev/vdb (Pacemaker's: ocf:heartbeat:Filesystem primitive fs-r, mounted "
            "at /srv/r)") in r.final.unmanaged


SCORED_LVM = """\
      <primitive id="lvm-s" class="ocf" provider="heartbeat" type="LVM-activate">
        <instance_attributes id="lvm-s-a" score="10">
          <nvpair id="lvm-s-a-vgname" name="vgname" value="vg9"/>
          <nvpair id="lvm-s-a-lvname" name="lvname" value="x"/>
          <nvpair id="lvm-s-a-mode" name="vg_access_mode" value="system_id"/>
        </instance_attributes>
        <instance_attributes id="lvm-s-b">
          <rule id="lvm-s-b-rule" score="INFINITY"><expression id="e3" attribute="#uname" operation="eq" value="node-1"/></rule>
          <nvpair id="lvm-s-b-vgname" name="vgname" value="vg0"/>
          <nvpair id="lvm-s-b-lvname" name="lvname" value="data"/>
        </instance_attributes>
      </primitive>"""

DRBD_RULED = """\
      <primitive id="drbd-x" class="ocf" provider="linbit" type="drbd">
        <instance_attributes id="drbd-x-a" score="5">
          <nvpair id="drbd-x-a-res" name="drbd_resource" value="r9"/>
        </instance_attributes>
        <instance_attributes id="drbd-x-b" score="1">
          <nvpair id="drbd-x-b-res" name="drbd_resource" value="r0"/>
        </instance_attributes>
      </primitive>"""


def test_lvm_and_drbd_primitives_with_scored_or_ruled_sets_own_every_value():
    st = pcmk.pacemaker_state(pcmk.parse_cib(recorded_cib(SCORED_LVM + "\n" + DRBD_RULED)),
                              "cibadmin --query", ({}, {}, ""))
    assert st.lv_owner("vg0", "data").id == st.lv_owner("vg9", "x").id == "lvm-s"
    assert st.lv_owner("vg0", "logs") is None  # lvname is given by every set
    assert st.vg_owner("vg0").id == "lvm-s"
    assert st.drbd_owner("r0").id == st.drbd_owner("r9").id == "drbd-x"


def test_an_lvname_only_a_ruled_set_gives_may_be_unset_so_the_whole_vg_is_owned():
    text = SCORED_LVM.replace('<nvpair id="lvm-s-a-lvname" name="lvname" value="x"/>', "")
    st = pcmk.pacemaker_state(pcmk.parse_cib(recorded_cib(text)), "cibadmin --query",
                              ({}, {}, ""))
    assert st.lv_owner("vg0", "logs").id == st.lv_owner("vg9", "any").id == "lvm-s"


def test_sets_without_rules_or_scores_keep_the_first_sets_values():
    text = pcmk_xml.primitive("fs-p", "ocf:heartbeat:Filesystem", {"device": "/dev/vdb"},
                              {"device": "/dev/vdc"})
    r, = pcmk.parse_cib(recorded_cib(text))
    assert r.values("device") == ("/dev/vdb",) and not r.may_lack("device")


def test_a_filesystem_on_an_active_lvs_mapper_name_owns_the_lv(scenario):
    """/dev/mapper/vg0-data resolves to the LV's device number while it is active; the
    spec's /dev/vg0/data is the same LV by name."""
    h = lv_host(filesystem("/dev/mapper/vg0-data"))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(lv_spec("inactive")))
    assert ("lvchange", "-an", "vg0/data") not in lvchanges(h) and h.lv("vg0", "data").active
    assert "lv vg0/data: managed by Pacemaker (ocf:heartbeat:Filesystem primitive fs-new" \
        in blocked(r)
    assert ("device /dev/mapper/vg0-data (Pacemaker's: ocf:heartbeat:Filesystem primitive "
            "fs-new, mounted at /srv/new)") in r.final.unmanaged


@pytest.mark.parametrize("device, fstype, options", [
    ("nfs-server:/export/home", "nfs4", ""), ("//fileserver/share", "cifs", ""),
    ("tmpfs", "tmpfs", ""), ("/srv/data", "none", "bind")])
def test_a_filesystem_of_no_block_device_blocks_nothing(scenario, device, fstype, options):
    params = {"device": device, "directory": "/srv/new", "fstype": fstype}
    if options:
        params["options"] = options
    h = with_pacemaker(clone_host(), primitive("fs-net", "ocf:heartbeat:Filesystem", **params))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert ADD_NEW in sc.mutations(), blocked(r)
