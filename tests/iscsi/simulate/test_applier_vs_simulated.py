"""The project's LIO applier (``reconciler.adapters.iscsi.main``, over a fake rtslib_fb that
keeps LIO's objects in memory and refuses a claimed device as rtslib-fb 2.2 does) against the
simulator's applier: for the same LIO state and the same request, the same exit code, stdout
and stderr. The real rtslib's own outputs are recorded in tests/fixtures/outputs/claim and
compared in tests/simulate/test_claimed_recordings.py; what is compared here is the
applier's own logic around them (its storage objects reused by name)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from support import M

from reconciler.adapters import iscsi
from reconciler.runner import Command
from reconciler.simulate.cluster import Cluster

IQN = "iqn.2003-01.org.example.a:export0"


class _Fake:
    """LIO as rtslib_fb shows it, in memory: storage objects and targets of one TPG each."""

    class RTSLibError(Exception):
        pass

    def storage_object(self, name: str, dev: str) -> types.SimpleNamespace:
        so = types.SimpleNamespace(name=name, udev_path=dev, attached_luns=[])
        so.delete = lambda: self.sos.remove(so)
        self.sos.append(so)
        return so

    def __init__(self, dbroot: str, claimed: set[str]):
        self.sos: list[types.SimpleNamespace] = []
        self.tpgs: dict[str, types.SimpleNamespace] = {}
        self.claimed = claimed
        fake = self

        class RTSRoot:
            _preferred_dbroot = dbroot

            @property
            def storage_objects(self):
                return list(fake.sos)

            @property
            def targets(self):
                return [types.SimpleNamespace(wwn=w) for w in fake.tpgs]

        def BlockStorageObject(name, dev):  # noqa: N802 - rtslib's name
            if dev in fake.claimed:  # rtslib-fb's message, its {dev} unformatted (recorded)
                raise fake.RTSLibError("Cannot configure StorageObject because device {dev} "
                                       "is already in use")
            return fake.storage_object(name, dev)

        def TPG(target, tag, mode):  # noqa: N802
            return fake.tpgs.setdefault(target, types.SimpleNamespace(
                network_portals=[], luns=[], node_acls=[], attrs={}, enable=False,
                set_attribute=lambda k, v: None))

        def LUN(tpg, n, so):  # noqa: N802
            lun = types.SimpleNamespace(lun=n, storage_object=so)
            tpg.luns.append(lun)
            so.attached_luns.append(lun)
            return lun

        self.module = types.SimpleNamespace(
            RTSRoot=RTSRoot, FabricModule=lambda name: name,
            Target=lambda fabric, wwn, mode: wwn, TPG=TPG, LUN=LUN,
            BlockStorageObject=BlockStorageObject, RTSLibError=self.RTSLibError,
            NetworkPortal=lambda tpg, ip, port, mode: tpg.network_portals.append(
                types.SimpleNamespace(ip_address=ip, port=port)))


def _real(monkeypatch, capsys, tmp_path, request: dict, *, leftover=None, claimed=(),
          lun0=None, others=(), left=None):
    """``main(["lio-apply", JSON])`` over the fake: (rc, stdout, stderr), the LUNs made."""
    fake = _Fake(str(tmp_path / "dbroot"), set(claimed))
    left = [] if left is None else left
    if leftover is not None:
        fake.storage_object(*leftover)
    if lun0 is not None:  # the target made already, its LUN 0 over ``lun0``
        so = fake.module.BlockStorageObject("export0_lun0", dev=lun0)
        fake.module.LUN(fake.module.TPG(IQN, 1, "any"), 0, so)
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake.module)
    monkeypatch.setattr(iscsi, "_mount_configfs", lambda: None)
    for name, dev in others:
        fake.storage_object(name, dev)
    rc = iscsi.main(["lio-apply", json.dumps(request)])
    out = capsys.readouterr()
    left.extend(so.name for so in fake.sos)
    tpg = fake.tpgs.get(request["iqn"])
    luns = {lun.lun: lun.storage_object.udev_path for lun in tpg.luns} if tpg else {}
    return (rc, out.out, out.err), luns


def _simulated(request: dict, *, leftover=None, claimed=(), lun0=None, others=(), left=None):
    cluster = Cluster()
    host = cluster.add_host("a")
    side = cluster.join_iscsi("a")
    for d in ("/dev/vdb", "/dev/vdc"):
        host.add_device(d, 64 * M)
    side.lio_loaded = True
    if leftover is not None:
        side.backstores[f"iblock_7/{leftover[0]}"] = leftover[1]
    for d in claimed:
        host.open_device(d, 99, "someone", exclusive=True)
    if lun0 is not None:
        from reconciler.simulate.iscsi_model import Target
        side.backstores["iblock_0/export0_lun0"] = lun0
        side.targets[IQN] = Target(iqn=IQN, luns={0: "iblock_0/export0_lun0"})
    for i, (name, dev) in enumerate(others):
        side.backstores[f"iblock_{20 + i}/{name}"] = dev
    r = host.run(Command(argv=("python3", "-m", "reconciler.adapters.iscsi", "lio-apply",
                               json.dumps(request))))
    if left is not None:
        left.extend(k.split("/", 1)[1] for k in side.backstores)
    t = side.targets.get(request["iqn"])
    luns = {n: side.backstores[so] for n, so in t.luns.items()} if t else {}
    return (r.rc, r.stdout, r.stderr), luns


REQUEST = {"iqn": IQN, "name": "export0", "portals": [], "luns": {"0": "/dev/vdb"},
           "acls": [], "chap_file": None}


@pytest.mark.parametrize("leftover, claimed, lun0, luns", [
    (None, (), None, {0: "/dev/vdb"}),
    (None, ("/dev/vdb",), None, {}),  # claimed: rtslib's refusal
    (("export0_lun0", "/dev/vdb"), (), None, {0: "/dev/vdb"}),  # its own leftover: reused
    # a leftover of an earlier request over another device: never exported as LUN 0 instead;
    # unattached, it exports nothing: made again over the spec's device
    (("export0_lun0", "/dev/vdc"), (), None, {0: "/dev/vdb"}),
    # the same, the spec's device claimed: refused as for a new one, the leftover gone
    (("export0_lun0", "/dev/vdc"), ("/dev/vdb",), None, {}),
    (None, (), "/dev/vdc", {0: "/dev/vdc"}),  # LUN 0 exports another device: left, refused
], ids=["free", "claimed", "own-leftover", "leftover-of-another-device",
        "leftover-of-another-device-claimed", "lun-of-another"])
def test_the_simulated_applier_answers_as_the_applier(monkeypatch, capsys, tmp_path,
                                                       leftover, claimed, lun0, luns):
    real, real_luns = _real(monkeypatch, capsys, tmp_path, REQUEST, leftover=leftover,
                            claimed=claimed, lun0=lun0)
    sim, sim_luns = _simulated(REQUEST, leftover=leftover, claimed=claimed, lun0=lun0)
    assert real == sim
    assert real_luns == sim_luns == luns


def test_deleting_a_target_deletes_its_own_storage_objects_only(monkeypatch, capsys,
                                                                  tmp_path):
    """Target "export0" and another named "export0_lunA": the other's storage objects
    ("export0_lunA_lun0") start with this one's prefix but are not this target's; deleting
    export0 leaves them (rtslib deletes a storage object's LUNs with it: its initiators would
    lose their disk)."""
    request = {**REQUEST, "luns": {}, "delete": True}
    others = (("export0_lun0", "/dev/vdb"), ("export0_lunA_lun0", "/dev/vdc"))
    real_left, sim_left = [], []
    real, _ = _real(monkeypatch, capsys, tmp_path, request, others=others, left=real_left)
    sim, _ = _simulated(request, others=others, left=sim_left)
    assert real == sim and real[0] == 0
    assert real_left == sim_left == ["export0_lunA_lun0"]
