"""Planning on real recordings: a recorded fullreport of a node plus that node's recorded
``lvmlockctl --info`` and dm sysfs listing (tests/fixtures/outputs/lvmlockd)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from support import FIXTURES
from support.specs import spec

from reconciler import planning, state
from reconciler.adapters import lockd as lockd_adapter
from reconciler.adapters import lvm

LOCKD = FIXTURES / "outputs" / "lvmlockd"
DM_ARGV = ("sh -c grep -H . /sys/block/dm-*/dm/name /sys/block/dm-*/dm/uuid /sys/block/dm-*/size "
           "/sys/block/dm-*/dm/suspended /sys/block/dm-*/ro 2>&1; ls /sys/block/dm-*/holders "
           "/sys/block/dm-*/slaves 2>&1")


def section(name: str, argv: str) -> str:
    text = (LOCKD / "state" / f"{name}.txt").read_text()
    return text.split(f"=== argv: {argv}\n", 1)[1].split("--- stdout\n", 1)[1].split(
        "--- stderr\n", 1)[0]


def host(report: str, st_name: str, mounted: tuple[str, ...] = ()) -> state.HostState:
    text = (LOCKD / report).read_text()
    st = lvm.parse_fullreport(text[text.index("\n") + 1:])
    spaces, locks = lockd_adapter.parse_info(section(st_name, "lvmlockctl --info"))
    listing = section(st_name, DM_ARGV)
    fields: dict[str, dict[str, str]] = {}
    for kernel, key, value in re.findall(r"^/sys/block/(dm-\d+)/(dm/name|dm/uuid|size):(.*)$",
                                         listing, re.M):
        fields.setdefault(kernel, {})[key] = value
    dm = {f["dm/name"]: state.DmDevice(kernel=k, name=f["dm/name"], uuid=f["dm/uuid"],
                                       size=int(f["size"]) * 512,
                                       mounts=("/mnt/x",) if f["dm/name"] in mounted else ())
          for k, f in fields.items()}
    return dataclasses.replace(st, lockd=state.Lockd(running=True, lockspaces=spaces,
                                                     locks=locks, dm=dm))


def shared_vg(lv: dict) -> dict:
    """The recorded shared VG ``vgs`` (node-a and node-b) with the LVs ``lv``, for ``spec``."""
    return {"vg": {"vgs": {
        "nodes": ["node-a", "node-b"], "scope": "shared", "create_on": "node-a",
        "pvs": ["/dev/vda", "/dev/vdb"], "lv": lv}}}


def keys(plan) -> list[str]:
    return [s.action.describe() for s in plan.steps]


def test_node_b_before_its_lock_start_starts_it_first():
    st = host("vg_not_started_b.json", "vg_not_started_b")
    plan = planning.plan(spec(shared_vg({})), st, node="node-b")
    assert [s.key for s in plan.steps] == ["vg:vgs:lock-start"]


def test_node_b_takes_lv1_exclusively_after_the_lock_start():
    st = host("lv_ex_a_b.json", "lockspace_started_b")
    plan = planning.plan(spec(shared_vg({"lv1": {"size": "32M", "activation": {"node-b": "exclusive"}}})),
                         st, node="node-b")
    assert keys(plan) == ["lvchange -aey (exclusive on this node)"]


def test_node_b_refreshes_its_shorter_table_after_node_a_grew_lv1():
    st = host("lv_sh_extended_elsewhere_b.json", "before_refresh_b")
    lv1 = st.vgs["vgs"].lvs["lv1"]
    assert (lv1.size, st.lockd.dm["vgs-lv1"].size) == (90112 * 512, 81920 * 512)
    plan = planning.plan(spec(shared_vg({"lv1": {"size": f"{90112 * 512}", "activation": {"*": "shared"}}})),
                         st, node="node-b")
    assert [s.key for s in plan.steps] == ["lv:vgs/lv1:refresh"]


def test_the_stale_lv3_device_on_node_b_is_reported_while_mounted_and_removed_after():
    mounted = host("lv_removed_elsewhere_b.json", "stale_dm_open_b", mounted=("vgs-lv3",))
    plan = planning.plan(spec(shared_vg({})), mounted, node="node-b")
    assert plan.steps == ()
    assert any(b.object == "dm vgs-lv3" and "never removed while open" in b.reason
               for b in plan.blocked)
    closed = host("lv_removed_elsewhere_b.json", "stale_dm_open_b")
    plan = planning.plan(spec(shared_vg({})), closed, node="node-b")
    assert [s.key for s in plan.steps] == ["dm:vgs-lv3:remove"]


def test_an_lv_whose_attr_says_X_is_deactivated_only_when_sysfs_shows_it_unused():
    """lv_attr '-wi-XX--X-' (the table differs from the metadata): lvm cannot tell whether
    it is open, so sysfs decides; mounted = never deactivated."""
    want = spec(shared_vg({"lv1": {"size": f"{90112 * 512}", "activation": {"*": "inactive"}}}))
    st = host("lv_sh_extended_elsewhere_b.json", "before_refresh_b", mounted=("vgs-lv1",))
    assert st.vgs["vgs"].lvs["lv1"].attr.raw == "-wi-XX--X-"
    plan = planning.plan(want, st, node="node-b")
    assert not any(s.key == "lv:vgs/lv1:deactivate" for s in plan.steps)
    assert any("lv_attr's open bit is 'X'" in b.reason and "mounted on /mnt/x" in b.reason
               for b in plan.blocked)
    free = host("lv_sh_extended_elsewhere_b.json", "before_refresh_b")
    assert "lv:vgs/lv1:deactivate" in [s.key for s in planning.plan(want, free, node="node-b").steps]


def test_only_the_exclusive_node_resumes_an_interrupted_pvmove_in_a_shared_vg():
    st = host("lv_ex_a_b.json", "lockspace_started_b")
    vg = st.vgs["vgs"]
    mv = state.PvMove(vg="vgs", name="pvmove0", source="/dev/vda", copy_percent=40.0,
                      lvs=("lv1",), destinations=("/dev/vdb",))
    st = dataclasses.replace(st, vgs={"vgs": dataclasses.replace(vg, pvmoves=(mv,))})
    for node, holder, resumes in (("node-b", "node-a", False), ("node-a", "node-a", True)):
        want = spec(shared_vg({"lv1": {"size": "32M", "activation": {holder: "exclusive"}}}))
        plan = planning.plan(want, st, node=node, stalled=frozenset({"vgs/pvmove0"}))
        assert any(s.key.startswith("host:") or "resume" in s.key for s in plan.steps) is resumes, \
            (node, [s.key for s in plan.steps])
