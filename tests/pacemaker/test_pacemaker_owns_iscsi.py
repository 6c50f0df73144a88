"""Pacemaker owns what it owns (issue 20): an iSCSI target an ``ocf:heartbeat:iSCSITarget``
primitive exports (``iqn``) gets no change from the reconciler, a LUN an
``ocf:heartbeat:iSCSILogicalUnit`` exports (``target_iqn``, ``lun``, ``path``) neither;
changes that leave them as they are still run. Node a alone, the simulated LIO."""

from __future__ import annotations

import pytest
from support import M
from support.nodes import Nodes

from reconciler import controller
from reconciler.adapters import pacemaker as pcmk
from reconciler.simulate.cluster import Cluster
from reconciler.simulate.pacemaker_tools import PacemakerSim, cib, primitive

IQN = "iqn.2003-01.org.example.a:export0"
INIT_B = "iqn.2004-10.com.example:b"
TARGET = primitive("iscsi-export0", "ocf:heartbeat:iSCSITarget", iqn=IQN, implementation="lio-t")
LUN0 = primitive("iscsi-export0-lun0", "ocf:heartbeat:iSCSILogicalUnit", target_iqn=IQN,
                 lun="0", path="/dev/vdb")


def spec_text(luns: dict[int, str], lun0_state: str = "present") -> str:
    text = f"""
[iscsi_target.export0]
nodes = ["a"]
iqn = "{IQN}"
portals = ["192.0.2.1:3260"]
acls = ["{INIT_B}"]
"""
    for n, dev in luns.items():
        text += f'[iscsi_target.export0.lun.{n}]\ndevice = "{dev}"\n'
        if n == 0:
            text += f'state = "{lun0_state}"\n'
    return text


class One(Nodes):
    def __init__(self, tmp_path):
        cluster = Cluster()
        self.a = cluster.add_host("a", seed="a")
        cluster.join_iscsi("a")
        self.a.add_device("/dev/vdb", 64 * M)
        self.a.add_device("/dev/vdc", 64 * M)
        super().__init__(tmp_path, cluster)

    def pacemaker(self, *primitives):
        text = cib(*primitives)
        self.a.pacemaker = PacemakerSim(text, node="a")
        self.a.md.files[pcmk.CIB_FILE] = text

    def applies(self) -> int:
        return sum(1 for c in self.a.calls if "lio-apply" in c.argv)


@pytest.fixture
def one(tmp_path):
    o = One(tmp_path)
    assert o.converge_node("a", o.spec(spec_text({0: "/dev/vdb"}))).exit_code == 0
    return o


def blocked(r) -> str:
    return "\n".join(f"{b.object}: {b.reason}" for b in r.final.blocked)


def test_a_target_pacemaker_exports_gets_no_change_and_the_plan_says_so(one):
    one.pacemaker(TARGET, LUN0)
    before = one.applies()
    r = one.one_pass("a", one.spec(spec_text({0: "/dev/vdb", 1: "/dev/vdc"})))
    assert r.exit_code == controller.EXIT_ERROR and one.applies() == before
    assert sorted(one.a.iscsi.targets[IQN].luns) == [0]
    why = blocked(r)
    assert ("iscsi target export0: managed by Pacemaker (ocf:heartbeat:iSCSITarget primitive "
            "iscsi-export0, from cibadmin --query; Pacemaker runs it Started on a)") in why
    assert "move it with Pacemaker" in why
    assert "iscsi target export0 (Pacemaker's: ocf:heartbeat:iSCSITarget primitive iscsi-export0)" in r.final.unmanaged
    assert ("iscsi target export0 LUN 0 (Pacemaker's: ocf:heartbeat:iSCSILogicalUnit primitive "
            "iscsi-export0-lun0)") in r.final.unmanaged


def test_a_lun_pacemaker_exports_is_never_removed(one):
    one.pacemaker(LUN0)
    before = one.applies()
    r = one.one_pass("a", one.spec(spec_text({0: "/dev/vdb", 1: "/dev/vdc"}, lun0_state="absent")))
    assert r.exit_code == controller.EXIT_ERROR and one.applies() == before
    assert 0 in one.a.iscsi.targets[IQN].luns
    assert "ocf:heartbeat:iSCSILogicalUnit primitive iscsi-export0-lun0" in blocked(r)


def test_a_change_that_leaves_pacemakers_lun_as_it_is_still_runs(one):
    one.pacemaker(LUN0)
    r = one.converge_node("a", one.spec(spec_text({0: "/dev/vdb", 1: "/dev/vdc"})))
    assert r.exit_code == controller.EXIT_IN_SYNC, str(r.final)
    assert sorted(one.a.iscsi.targets[IQN].luns) == [0, 1]
    assert ("iscsi target export0 LUN 0 (Pacemaker's: ocf:heartbeat:iSCSILogicalUnit primitive "
            "iscsi-export0-lun0)") in r.final.unmanaged
