"""Devices link subsystems (interfaces #6): a step that needs a device another step of the
same plan makes appear is planned, not blocked as missing, and runs after it. Built once in
``planning/__init__.py``; checked here with LVM alone (a PV on an LV of another VG) and with
an LV that a clone copies onto."""

from __future__ import annotations

from support import M

from reconciler import actions, planning, state
from reconciler.spec import models
from reconciler.units import Size

EXT = 4 * M


def _pv(name, vg, pe=100):
    return state.Pv(name=name, uuid=f"u-{name}", vg=vg, devno=(8, 0), dev_size=Size(pe * EXT),
                    size=Size(pe * EXT), free=Size(pe * EXT), pe_count=pe, pe_alloc_count=0,
                    missing=False, allocatable=True)


def _one_vg_host(devices) -> state.HostState:
    vg = state.Vg(name="vg0", uuid="vgu", extent_size=Size(EXT), extent_count=100,
                  free_count=100, lock_type="none", missing_pv_count=0, pvs=("/dev/sda",), lvs={})
    return state.HostState(host="local", vgs={"vg0": vg}, pvs={"/dev/sda": _pv("/dev/sda", "vg0")},
                           devices=devices)


def _plan(spec: dict, st: state.HostState) -> actions.Plan:
    return planning.plan(models.Spec.model_validate(spec), st, node="n1")


def _step(p: actions.Plan, key: str) -> actions.Step:
    return next(s for s in p.steps if s.key == key)


STACKED = {"vg": {
    "vg0": {"nodes": ["n1"], "pvs": ["/dev/sda"], "lv": {"inner": {"size": "64M"}}},
    "vg1": {"nodes": ["n1"], "pvs": ["/dev/vg0/inner"], "lv": {"data": {"size": "32M"}}},
}}


def test_a_pv_on_an_lv_the_plan_creates_is_planned_after_lvcreate():
    # /dev/vg0/inner does not exist yet (observed missing); lvcreate makes it appear.
    st = _one_vg_host({"/dev/sda": (8, 0), "/dev/vg0/inner": None})
    p = _plan(STACKED, st)
    assert not p.blocked, p.blocked
    keys = [s.key for s in p.steps]
    assert keys.index("lv:vg0/inner:create") < keys.index("pv:/dev/vg0/inner:create") \
        < keys.index("vg:vg1:create") < keys.index("lv:vg1/data:create")
    assert "lv:vg0/inner:create" in _step(p, "pv:/dev/vg0/inner:create").after


def test_a_device_nothing_provides_is_still_blocked_with_the_reason():
    st = _one_vg_host({"/dev/sda": (8, 0), "/dev/vg0/other": None})
    spec = {"vg": {"vg0": {"nodes": ["n1"], "pvs": ["/dev/sda"], "lv": {}},
                   "vg1": {"nodes": ["n1"], "pvs": ["/dev/vg0/other"], "lv": {}}}}
    p = _plan(spec, st)
    assert [b.object for b in p.blocked] == ["vg vg1"]
    assert "does not exist" in p.blocked[0].reason
    assert "no step of this plan makes it appear" in p.blocked[0].reason
    assert not [s for s in p.steps if "vg1" in s.key]


def test_a_clone_onto_an_lv_the_plan_creates_waits_for_lvcreate():
    st = state.HostState(
        host="local", vgs=_one_vg_host({}).vgs, pvs=_one_vg_host({}).pvs,
        devices={"/dev/sda": (8, 0)},
        blockdevs={"/dev/vdz": state.BlockDevice(path="/dev/vdz", devno=(254, 0), name="vdz",
                                                 size=32 * M, identity="serial:z"),
                   "/dev/vg0/copy": state.BlockDevice(path="/dev/vg0/copy", devno=None)},
        ledger=state.Ledger(path="/var/lib/reconciler/clones.json", records={}))
    spec = {"vg": {"vg0": {"nodes": ["n1"], "pvs": ["/dev/sda"], "lv": {"copy": {"size": "32M"}}}},
            "clone": {"c": {"nodes": ["n1"], "source": "/dev/vdz", "target": "/dev/vg0/copy",
                            "md": "/dev/md100", "state": "split"}}}
    p = _plan(spec, st)
    assert not p.blocked, p.blocked
    keys = [s.key for s in p.steps]
    assert keys.index("lv:vg0/copy:create") < keys.index("clone:c:add")
    assert "lv:vg0/copy:create" in _step(p, "clone:c:add").after


def test_provides_and_needs_of_the_lvm_and_md_steps():
    assert actions.CreateLv(vg="my-vg", lv="a-b", size=M).provides() == (
        "/dev/my-vg/a-b", "/dev/mapper/my--vg-a--b")
    assert actions.CreatePv(device="/dev/x").needs() == ("/dev/x",)
    assert actions.ExtendVg(vg="v", device="/dev/x").needs() == ("/dev/x",)
    assert actions.BuildMdClone(clone="c", md="/dev/md1", source="/dev/s").provides() == ("/dev/md1",)
    assert actions.AddMdMember(clone="c", md="/dev/md1", target="/dev/t").needs() == ("/dev/md1", "/dev/t")
