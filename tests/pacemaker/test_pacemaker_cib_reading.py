"""How Pacemaker's CIB is read (issue 20): resource templates (``<template>``, a primitive's
``template=``), ``id-ref`` in attribute sets and nvpairs (instance and meta), and the legacy
``ocf:heartbeat:LVM`` agent (``volgrpname``: the whole VG, so every LV of it); and the CIB
is read for a spec of md clones or iSCSI sessions only, whose devices a Filesystem or an
iSCSILogicalUnit primitive can own. Each CIB is the lab's ``cibadmin --query`` recording
(tests/fixtures/outputs/pacemaker, Pacemaker 2.1.5) with its ``<resources>`` replaced."""

from __future__ import annotations

import pytest
from support import pcmk as pcmk_xml
from support.mdfix import NEW, clone_host, clone_spec
from support.nodes import Nodes
from support.pcmk import blocked, clone, lv_host, lv_spec, lvchanges, recorded_cib, with_pacemaker

from reconciler import controller
from reconciler.adapters import pacemaker as pcmk
from reconciler.simulate.cluster import Cluster
from reconciler.simulate.pacemaker_tools import primitive

TEMPLATES = """\
      <template id="lvm-tmpl" class="ocf" provider="heartbeat" type="LVM-activate">
        <instance_attributes id="lvm-tmpl-params">
          <nvpair id="lvm-tmpl-params-vgname" name="vgname" value="vg0"/>
          <nvpair id="lvm-tmpl-params-vg_access_mode" name="vg_access_mode" value="system_id"/>
        </instance_attributes>
      </template>
      <primitive id="lvm-data" template="lvm-tmpl">
        <instance_attributes id="lvm-data-params">
          <nvpair id="lvm-data-params-lvname" name="lvname" value="data"/>
        </instance_attributes>
      </primitive>
      <primitive id="lvm-other" template="lvm-tmpl">
        <instance_attributes id="lvm-other-params">
          <nvpair id="lvm-other-params-vgname" name="vgname" value="vg1"/>
        </instance_attributes>
      </primitive>"""

ID_REFS = """\
      <primitive id="fs-a" class="ocf" provider="heartbeat" type="Filesystem">
        <instance_attributes id="fs-common">
          <nvpair id="fs-common-fstype" name="fstype" value="ext4"/>
          <nvpair id="fs-a-device" name="device" value="/dev/vg0/data"/>
        </instance_attributes>
        <instance_attributes id="fs-a-params">
          <nvpair id="fs-a-params-directory" name="directory" value="/srv/a"/>
        </instance_attributes>
        <meta_attributes id="unmanaged">
          <nvpair id="unmanaged-is-managed" name="is-managed" value="false"/>
        </meta_attributes>
      </primitive>
      <primitive id="fs-b" class="ocf" provider="heartbeat" type="Filesystem">
        <instance_attributes id-ref="fs-common"/>
        <instance_attributes id="fs-b-params">
          <nvpair id="fs-b-params-directory" name="directory" value="/srv/b"/>
          <nvpair id="fs-b-params-options" id-ref="fs-common-fstype" name="options"/>
        </instance_attributes>
        <meta_attributes id-ref="unmanaged"/>
      </primitive>
      <primitive id="fs-c" class="ocf" provider="heartbeat" type="Filesystem">
        <instance_attributes id="fs-c-params">
          <nvpair id-ref="fs-a-device"/>
          <nvpair id="fs-c-params-directory" name="directory" value="/srv/c"/>
          <nvpair id="fs-c-params-fstype" name="fstype" value="xfs"/>
        </instance_attributes>
      </primitive>"""

LEGACY_LVM = primitive("lvm-legacy", "ocf:heartbeat:LVM", volgrpname="vg0", exclusive="true")


def by_id(text: str) -> dict:
    return {r.id: r for r in pcmk.parse_cib(text)}


def test_a_primitive_takes_its_agent_and_attributes_from_its_template_under_its_own():
    rs = by_id(recorded_cib(TEMPLATES))
    assert set(rs) == {"lvm-data", "lvm-other"}  # a template is no resource
    assert rs["lvm-data"].agent == rs["lvm-other"].agent == "ocf:heartbeat:LVM-activate"
    assert rs["lvm-data"].params == {"lvname": "data", "vgname": "vg0",
                                     "vg_access_mode": "system_id"}
    assert rs["lvm-other"].params == {"vgname": "vg1", "vg_access_mode": "system_id"}
    st = pcmk.pacemaker_state(list(rs.values()), "cibadmin --query", ({}, {}, ""))
    assert st.lv_owner("vg0", "data").id == "lvm-data" and st.lv_owner("vg0", "x") is None
    assert st.lv_owner("vg1", "x").id == "lvm-other"


def test_id_refs_of_attribute_sets_and_nvpairs_are_followed():
    rs = by_id(recorded_cib(ID_REFS))
    assert rs["fs-b"].params == {"fstype": "ext4", "device": "/dev/vg0/data",
                                 "directory": "/srv/b", "options": "ext4"}
    assert rs["fs-c"].params == {"device": "/dev/vg0/data", "directory": "/srv/c",
                                 "fstype": "xfs"}  # an nvpair id-ref without a name: its own
    assert rs["fs-b"].meta == rs["fs-a"].meta == {"is-managed": "false"} and rs["fs-c"].meta == {}
    # crm_mon did not answer: the CIB's is-managed says it
    st = pcmk.pacemaker_state(list(rs.values()), "cib.xml", ({}, {}, "crm_mon: exit 102"))
    assert {r.id: r.managed for r in st.resources} == {"fs-a": False, "fs-b": False, "fs-c": True}


def test_a_clones_meta_attributes_are_its_primitives_under_their_own():
    rs = by_id(recorded_cib(clone(
        "c", pcmk_xml.primitive("p", "ocf:linbit:drbd", {"drbd_resource": "r0"},
                                meta={"target-role": "Stopped"}),
        {"is-managed": "false", "target-role": "Started"})))
    assert rs["p"].meta == {"is-managed": "false", "target-role": "Stopped"}
    assert rs["p"].parent == "c"


@pytest.mark.parametrize("bad", [
    '<primitive id="p" template="nothing"/>',
    '<primitive id="p" class="ocf" provider="heartbeat" type="LVM"><instance_attributes '
    'id-ref="nothing"/></primitive>',
    '<primitive id="p" class="ocf" provider="heartbeat" type="LVM"><instance_attributes '
    'id="p-ia"><nvpair id-ref="p-ia"/></instance_attributes></primitive>',
])
def test_a_reference_to_nothing_is_an_error_not_a_guess(bad):
    with pytest.raises(ValueError, match="names no"):
        pcmk.parse_cib(recorded_cib(bad))


def test_the_legacy_lvm_agent_owns_every_lv_of_its_vg():
    st = pcmk.pacemaker_state(pcmk.parse_cib(recorded_cib(LEGACY_LVM)), "cibadmin --query",
                              ({}, {}, ""))
    assert st.lv_owner("vg0", "data").id == st.lv_owner("vg0", "any").id == "lvm-legacy"
    assert st.vg_owner("vg0").id == "lvm-legacy" and st.vg_owner("vg1") is None


# -- end to end, on a simulated host (node-1) ---------------------------------------------


def test_no_lv_of_a_vg_the_legacy_lvm_agent_activates_is_deactivated(scenario):
    h = lv_host(LEGACY_LVM)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(lv_spec("inactive")))
    assert r.exit_code == controller.EXIT_ERROR and lvchanges(h) == []
    assert h.lv("vg0", "data").active and h.lv("vg0", "logs").active
    why = blocked(r)
    for lv in ("data", "logs"):
        assert f"lv vg0/{lv}: managed by Pacemaker (ocf:heartbeat:LVM primitive lvm-legacy" in why
    assert "Pacemaker runs it Started on node-1" in why
    assert "vg vg0 (Pacemaker's: ocf:heartbeat:LVM primitive lvm-legacy)" in r.final.unmanaged


def test_a_primitive_made_from_a_template_owns_its_lv(scenario):
    h = lv_host(TEMPLATES)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(lv_spec("inactive")))
    assert lvchanges(h) == [("lvchange", "-an", "vg0/logs")]  # not Pacemaker's: it goes
    assert h.lv("vg0", "data").active and not h.lv("vg0", "logs").active
    assert "lv vg0/data: managed by Pacemaker (ocf:heartbeat:LVM-activate primitive lvm-data" \
        in blocked(r)
    assert "lv vg0/data (Pacemaker's: ocf:heartbeat:LVM-activate primitive lvm-data)" \
        in r.final.unmanaged


def test_a_filesystem_whose_device_is_an_id_ref_owns_that_device(scenario):
    h = lv_host(ID_REFS)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(lv_spec("inactive")))
    assert ("lvchange", "-an", "vg0/data") not in lvchanges(h) and h.lv("vg0", "data").active
    assert "lv vg0/data: managed by Pacemaker (ocf:heartbeat:Filesystem primitive fs-" \
        in blocked(r)
    for fs, where in (("fs-a", "/srv/a"), ("fs-b", "/srv/b"), ("fs-c", "/srv/c")):
        assert (f"device /dev/vg0/data (Pacemaker's: ocf:heartbeat:Filesystem primitive {fs}, "
                f"mounted at {where})") in r.final.unmanaged


FS_ON_TARGET = primitive("fs-new", "ocf:heartbeat:Filesystem", device=NEW, directory="/srv/new",
                         fstype="ext4")
LU_ON_TARGET = primitive("lu-new", "ocf:heartbeat:iSCSILogicalUnit",
                         target_iqn="iqn.2003-01.org.example:t", lun="3", path=NEW)


@pytest.mark.parametrize("resources, owner, what, listed", [
    (FS_ON_TARGET, "ocf:heartbeat:Filesystem primitive fs-new", "the device it mounts at /srv/new",
     "mounted at /srv/new"),
    (LU_ON_TARGET, "ocf:heartbeat:iSCSILogicalUnit primitive lu-new",
     "the device it exports as LUN 3 of iqn.2003-01.org.example:t",
     "exported as LUN 3 of iqn.2003-01.org.example:t"),
], ids=["filesystem", "iscsi-logical-unit"])
def test_a_spec_of_md_clones_reads_the_cib_and_leaves_a_device_pacemaker_uses_alone(
        scenario, resources, owner, what, listed):
    """The clone's target is a Filesystem primitive's device (mounted where Pacemaker
    decides) or an iSCSILogicalUnit's (exported): never overwritten by the clone."""
    h = with_pacemaker(clone_host(), resources)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(clone_spec("mirrored")))
    assert pcmk.CIB_QUERY_ARGV in [c.argv for c in h.calls]
    assert ("mdadm", "/dev/md100", "--add", NEW) not in sc.mutations()
    why = blocked(r)
    assert f"managed by Pacemaker ({owner}" in why
    assert what in why
    assert f"device {NEW} (Pacemaker's: {owner}, {listed})" in r.final.unmanaged


def test_a_spec_of_iscsi_sessions_only_reads_the_cib(tmp_path):
    cluster = Cluster()
    h = cluster.add_host("node-1", seed="n1")
    cluster.join_iscsi("node-1", initiator="iqn.2004-10.com.example:n1")
    with_pacemaker(h, FS_ON_TARGET)
    n = Nodes(tmp_path, cluster)
    r = n.one_pass("node-1", n.spec("""
[iscsi_session.s]
nodes = ["node-1"]
portal = "192.0.2.1:3260"
target = "iqn.2003-01.org.example:t"
state = "absent"
"""))
    assert r.exit_code == controller.EXIT_IN_SYNC, str(r.final)
    assert pcmk.CIB_QUERY_ARGV in [c.argv for c in h.calls]
    assert pcmk.CRM_MON_ARGV in [c.argv for c in h.calls]
