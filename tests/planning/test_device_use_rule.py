"""Issue 17: one rule for every step that takes a device away, overwrites or exports it
(``state.taking``): declared once per action, judged by planning on the observed state
(blocked, with the steps after it, so a dry run says it) and by the executor right before
the step runs (with the processes, tests/scenarios, iscsi, drbd, lockd)."""

from __future__ import annotations

import dataclasses
import re

from support import FIXTURES, M

from reconciler import actions, planning, state
from reconciler.state.taking import Effect, Take, Use, blocking, lv_map_vg, observed_uses
from reconciler.spec import models
from reconciler.units import Size

EXT = 4 * M


def _pv(name, vg, devno):
    return state.Pv(name=name, uuid=f"u-{name}", vg=vg, devno=devno, dev_size=Size(100 * EXT),
                    size=Size(100 * EXT), free=Size(100 * EXT), pe_count=100, pe_alloc_count=0,
                    missing=False, allocatable=True)


def _host(attr="-wi-a-----", exported=False, **kw) -> state.HostState:
    lv = state.Lv(vg="vg0", name="data", uuid="lvu", size=Size(8 * M), attr=state.LvAttr(attr),
                  layout=("linear",), segtypes=("linear",), pv_extents={"/dev/sda": 2})
    vg = state.Vg(name="vg0", uuid="vgu", extent_size=Size(EXT), extent_count=100,
                  free_count=98, lock_type="none", missing_pv_count=0, pvs=("/dev/sda",),
                  lvs={"data": lv}, exported=exported)
    return state.HostState(host="local", vgs={"vg0": vg},
                           pvs={"/dev/sda": _pv("/dev/sda", "vg0", (8, 0))}, **kw)


def test_a_pv_counts_as_used_only_while_its_vg_is_active_here_and_not_exported():
    alias = "/dev/disk/by-id/wwn-1"
    active = _host(devices={alias: (8, 0)})
    assert observed_uses(active, alias) == (Use("pv", "vg0"),)  # by device number
    assert observed_uses(_host(attr="-wi-------", devices={alias: (8, 0)}), alias) == ()
    assert observed_uses(_host(exported=True, devices={alias: (8, 0)}), alias) == ()


def test_an_lvs_open_bit_and_mounts_and_holders_are_uses():
    st = _host(attr="-wi-ao----", devices={"/dev/vdb": (8, 16)},
               blockdevs={"/dev/vdb": state.BlockDevice(path="/dev/vdb", devno=(8, 16),
                                                        holders=("md100",), mounts=("/mnt/x",))})
    assert [str(u) for u in observed_uses(st, "/dev/vdb")] == ["mounted at /mnt/x",
                                                               "held by md100"]
    assert observed_uses(st, "/dev/vg0/data") == (Use("open", "vg0/data"),)


def test_a_step_tolerates_its_own_uses_and_a_copy_source_only_processes():
    st = _host(devices={"/dev/sda": (8, 0)})
    assert blocking(Take("/dev/sda", Effect.TAKES_AWAY), st) == [Use("pv", "vg0")]
    assert blocking(Take("/dev/sda", Effect.TAKES_AWAY, allow=("pv:vg0",)), st) == []
    assert blocking(Take("/dev/sda", Effect.COPIES), st) == []
    assert Take("/dev/sda", Effect.COPIES).counts(Use("process", "pid 1 (dd)"))
    assert not Take("/dev/sda", allow=("holder:",)).counts(Use("holder", "dm-3"))


def test_every_step_that_takes_a_device_declares_it():
    def takes(action):
        return [(t.device, str(t.effect)) for t in action.takes_devices()]

    assert takes(actions.CreatePv(device="/dev/x")) == [("/dev/x", "overwrites")]
    assert takes(actions.CreateDrbdMetadata(resource="r0", disk="/dev/x", disk_id="serial:x",
                                            node="a")) == [
        ("/dev/x", "overwrites")]
    assert takes(actions.LogoutSession(name="s", portal="p", target="t", disks=("/dev/a",))) == [
        ("/dev/a", "takes away")]
    assert takes(actions.ApplyTarget(name="e", iqn="i", luns=((0, "/dev/a"), (1, "/dev/b")),
                                     exports=("/dev/b",), released=("/dev/c",))) == [
        ("/dev/b", "exports"), ("/dev/c", "takes away")]
    assert takes(actions.ApplyTarget(name="e", iqn="i", delete=True, released=("/dev/c",))) == [
        ("/dev/c", "takes away")]
    assert takes(actions.SetActivation(vg="v", lv="l", mode="off")) == [("/dev/v/l", "takes away")]
    assert takes(actions.SetActivation(vg="v", lv="l", mode="ex")) == []
    assert takes(actions.StopMd(clone="c", md="/dev/md1", target="/dev/t", source="/dev/s")) == [
        ("/dev/md1", "takes away"), ("/dev/s", "copies")]
    assert takes(actions.ExportVg(vg="v", devices=("/dev/a",))) == [("/dev/a", "takes away")]
    assert takes(actions.SplitVg(vg="v", new_vg="w", pvs=("/dev/a",), lvs=("l_handover",))) == [
        ("/dev/v/l_handover", "takes away")]
    assert takes(actions.RemoveStaleDm(name="v-l", vg="v")) == [("/dev/mapper/v-l", "takes away")]
    assert takes(actions.AddMdMember(clone="c", md="/dev/md1", target="/dev/t", source="/dev/s")) \
        == [("/dev/t", "overwrites"), ("/dev/s", "copies")]
    assert takes(actions.SetDrbdRole(resource="r0", minor=3, role="Secondary")) == [
        ("/dev/drbd3", "takes away")]


def test_pvcreate_on_a_mounted_device_is_blocked_at_planning_with_the_steps_after_it():
    st = state.HostState(host="local", devices={"/dev/vdb": (8, 16)}, blockdevs={
        "/dev/vdb": state.BlockDevice(path="/dev/vdb", devno=(8, 16), mounts=("/mnt/x",))})
    spec = models.Spec.model_validate({"vg": {"vg1": {"nodes": ["n1"], "pvs": ["/dev/vdb"],
                                                      "lv": {"data": {"size": "8M"}}}}})
    p = planning.plan(spec, st, node="n1")
    assert p.steps == (), p.steps
    reasons = {b.reason for b in p.blocked}
    assert "pvcreate is refused: the device /dev/vdb is mounted at /mnt/x. Take it out of " \
           "use here first; the next pass goes on" in reasons, reasons
    assert any("waits for pv:/dev/vdb:create, which is refused" in r for r in reasons), reasons
    assert not any("wipe" in r for r in reasons)


class _Runner:
    def __init__(self, opened=None, claims=None):
        self.calls, self.asked = [], []
        self.opened = opened or {}
        self.claims = claims or {}

    def run(self, cmd):
        self.calls.append(cmd)
        raise AssertionError(f"must not run: {cmd.argv}")

    def read(self, path, *, host="local"):
        return None

    def openers(self, paths, *, host="local"):
        self.asked.append(tuple(paths))
        return {p: tuple(self.opened.get(p, ())) for p in paths}

    def claimed(self, paths, *, host="local"):
        return {p: self.claims.get(p, False) for p in paths}


def test_the_executor_refuses_a_step_naming_every_device_and_every_user():
    from reconciler import executing
    from reconciler.state import iscsi as state_iscsi

    session = state_iscsi.IscsiSession(sid="session1", target="t", portal="p", state="LOGGED_IN")
    st = _host(devices={"/dev/sda": (8, 0), "/dev/vdb": (8, 16)}, blockdevs={
        "/dev/vdb": state.BlockDevice(path="/dev/vdb", devno=(8, 16), mounts=("/mnt/x",))},
        iscsi=state_iscsi.IscsiState(sessions=(session,)))
    logout = actions.LogoutSession(name="s", portal="p", target="t",
                                   disks=("/dev/sda", "/dev/vdb"))
    runner = _Runner({"/dev/vdb": ("pid 7 (dd)", "pid 9 (qemu-system-x86)")})
    report = executing.apply(actions.Plan(node="n1", steps=(actions.Step(logout, "spec"),)),
                             runner, lambda: st, st, sleep=lambda s: None)
    (res,) = report.results
    assert res.outcome is executing.Outcome.FAILED and not res.results and runner.calls == []
    assert runner.asked == [("/dev/sda", "/dev/vdb")]
    assert res.detail.startswith(
        "not run: the disk /dev/sda is a PV of VG vg0 (active here); the disk /dev/vdb is "
        "mounted at /mnt/x, open by pid 7 (dd), pid 9 (qemu-system-x86); take it out of use "
        "here first"), res.detail
    assert res.error.openers == ("pid 7 (dd)", "pid 9 (qemu-system-x86)")


def _drbd_host(mounts=(), holders=()) -> state.HostState:
    """r0 up on minor 0, primary (dual-primary with a cluster file system, seed 003 §6)."""
    m = state.DrbdMinor(minor=0, cstate="Connected", role="Primary", peer_role="Primary",
                        disk="UpToDate", peer_disk="UpToDate", protocol="C")
    rs = state.DrbdResourceState(name="r0", config_path="/etc/drbd.d/r0.res", config="x",
                                 managed=True, device="/dev/drbd0", devno=(147, 0),
                                 mounts=tuple(mounts), holders=tuple(holders))
    return state.HostState(host="local", drbd=state.DrbdHost(loaded=True, minors={0: m},
                                                             resources={"r0": rs}))


def test_a_drbd_devices_mounts_and_holders_are_uses_of_it():
    # the demotion takes /dev/drbd0 away: the one rule sees what the DRBD observation saw
    st = _drbd_host(mounts=("/mnt/gfs2",), holders=("dm-4",))
    assert observed_uses(st, "/dev/drbd0") == (Use("mount", "/mnt/gfs2"), Use("holder", "dm-4"))
    (take,) = actions.SetDrbdRole(resource="r0", minor=0, role="Secondary").takes_devices()
    assert blocking(take, st) == [Use("mount", "/mnt/gfs2"), Use("holder", "dm-4")]
    assert observed_uses(_drbd_host(), "/dev/drbd1") == ()


def test_the_executor_refuses_a_drbd_demotion_mounted_since_the_plan_was_made():
    from reconciler import executing

    st = _drbd_host()  # not mounted when observed; GFS2 mounted since (mountinfo now)
    runner = _Runner()
    runner.read = lambda path, host="local": (
        "61 24 147:0 / /mnt/gfs2 rw,relatime - gfs2 /dev/drbd0 rw\n"
        if path == "/proc/self/mountinfo" else None)
    demote = actions.SetDrbdRole(resource="r0", minor=0, role="Secondary")
    report = executing.apply(actions.Plan(node="n1", steps=(actions.Step(demote, "spec"),)),
                             runner, lambda: st, st, sleep=lambda s: None)
    (res,) = report.results
    assert res.outcome is executing.Outcome.FAILED and runner.calls == [], res
    assert res.detail.startswith("not run: the device /dev/drbd0 is mounted at /mnt/gfs2"), res.detail


CLAIM = ("claimed by the kernel: an exclusive open is refused (EBUSY) and no mount, holder, "
         "swap area or LIO backstore found explains it")


def test_a_kernel_claim_nothing_found_explains_refuses_what_the_take_counts():
    """REVIEW7 F2, the rule: EBUSY with no use found is a use of its own ("claim"), judged
    by ``Take.counts`` like a mount or a holder: the clone's target (overwritten) is refused
    for it; its source (copied from: only processes count) is not, as a mounted source is
    not; a probe that could not tell is said; ENXIO is nobody's claim."""
    from reconciler import executing

    st = state.HostState(host="local", devices={"/dev/vdb": (254, 16), "/dev/vdc": (254, 32)})
    add = actions.AddMdMember(clone="db", md="/dev/md100", target="/dev/vdc", source="/dev/vdb")
    both = {"/dev/vdb": True, "/dev/vdc": True}
    try:
        executing._check_taken(add, st, _Runner(claims=both))
        raise AssertionError("not refused")
    except Exception as exc:  # DeviceInUse
        text = str(exc)
    assert f"the target /dev/vdc is {CLAIM}" in text, text
    # REVIEW7c F8: DRBD's backing disk is no example (it lists a drbdN holder); where to
    # look for the claims lsblk does not show
    assert "DRBD" not in text, text
    for pointer in ("targetcli ls", "/sys/kernel/config/target/core", "/proc/mounts",
                    "btrfs filesystem show", "zpool status", "lsblk shows none of these"):
        assert pointer in text, (pointer, text)
    assert "/dev/vdb" not in text  # the source: a claim does not count for a copy's source
    executing._check_taken(add, st, _Runner(claims={"/dev/vdb": True}))  # the source alone
    executing._check_taken(add, st, _Runner(claims={"/dev/vdc": "ENXIO: No such device or "
                                                                "address"}))
    try:
        executing._check_taken(add, st, _Runner(claims={"/dev/vdc": "EIO: Input/output error"}))
        raise AssertionError("not refused")
    except Exception as exc:
        assert "the target /dev/vdc is perhaps claimed by the kernel: the exclusive-open " \
               "probe could not tell (EIO: Input/output error)" in str(exc), str(exc)


# sda held by vg0/data's map, dm-0, as sysfs shows it (its dm uuid: "LVM-", the VG's uuid
# and the LV's, without dashes; tests/fixtures/outputs/lvmlockd/state)
_VG0_DATA_MAP = {"/sys/dev/block/8:0/holders/": "dm-0\n", "/sys/block/dm-0/dm/name": "vg0-data\n",
                 "/sys/block/dm-0/dm/uuid": "LVM-vgulvu\n"}


def test_a_kernel_claim_a_use_found_explains_is_judged_as_that_use():
    """vgexport takes its PVs with its own VG's uses allowed (the VG, its LVs' dm maps): the
    kernel's EBUSY there is those maps' claim (one holder at a time), not refused again;
    a use found that counts refuses the step once, under its own name."""
    from reconciler import executing

    st = _host(devices={"/dev/sda": (8, 0)})
    export = actions.ExportVg(vg="vg0", devices=("/dev/sda",))
    held = _Runner(claims={"/dev/sda": True})  # vg0/data's map holds sda, as sysfs says now
    held.read = lambda path, host="local": _VG0_DATA_MAP.get(path)
    executing._check_taken(export, st, held)
    create = actions.CreatePv(device="/dev/sda")
    try:
        executing._check_taken(create, st, held)
        raise AssertionError("not refused")
    except Exception as exc:
        assert "a PV of VG vg0 (active here), held by dm-0" in str(exc) \
            and "claimed" not in str(exc), str(exc)


def test_a_kernel_claim_is_explained_only_by_a_claim_on_that_device_not_by_its_vg():
    """REVIEW7c F3: vg0 on sda and sdb, its only active LV on sda; sdb, an empty PV, is
    claimed by something that leaves no trace (an operator's LIO backstore). The VG being
    active here (or an lvmlockd lock) is no claim on sdb, nor is an LV's open bit (a plain
    open sets it too): the EBUSY stays unexplained and vgexport is refused, not run to hand
    sdb to another host while LIO exports it."""
    from reconciler import executing

    st = _host(devices={"/dev/sda": (8, 0), "/dev/sdb": (8, 16)})
    vg = st.vgs["vg0"]
    st.vgs["vg0"] = state.Vg(name="vg0", uuid="vgu", extent_size=Size(EXT), extent_count=200,
                             free_count=198, lock_type="none", missing_pv_count=0,
                             pvs=("/dev/sda", "/dev/sdb"), lvs=vg.lvs)
    st.pvs["/dev/sdb"] = _pv("/dev/sdb", "vg0", (8, 16))
    runner = _Runner(claims={"/dev/sda": True, "/dev/sdb": True})
    runner.read = lambda path, host="local": _VG0_DATA_MAP.get(path)
    export = actions.ExportVg(vg="vg0", devices=("/dev/sda", "/dev/sdb"))
    try:
        executing._check_taken(export, st, runner)
        raise AssertionError("not refused")
    except Exception as exc:
        text = str(exc)
    assert "the PV /dev/sdb is claimed by the kernel" in text, text
    assert "/dev/sda" not in text, text  # its own map's claim, allowed
    assert executing._claim(True, [Use("pv", "vg0")]) == Use("claim", "kernel")
    assert executing._claim(True, [Use("open", "vg0/data")]) == Use("claim", "kernel")
    assert executing._claim(True, [Use("process", "pid 7 (qemu-system-x86)")]) \
        == Use("claim", "process")  # not explained; named as perhaps its own O_EXCL
    for explains in (Use("mount", "/mnt/x"), Use("holder", "dm-3"), Use("process", "swap")):
        assert executing._claim(True, [explains]) is None


def test_a_secondary_drbd_devices_emediumtype_is_nobodys_claim():
    """REVIEW7c F2: DRBD 8.4 refuses a read-only open of a Secondary with EMEDIUMTYPE from
    its driver's open, after the kernel's claim check passed: nothing claims it. A demotion
    planned while Primary, found Secondary when it runs, is not refused for it."""
    from reconciler import executing

    demote = actions.SetDrbdRole(resource="r0", minor=0, role="Secondary")
    executing._check_taken(demote, _drbd_host(),
                           _Runner(claims={"/dev/drbd0": "EMEDIUMTYPE: Wrong medium type"}))
    assert executing._claim("EMEDIUMTYPE: Wrong medium type", []) is None


def _lio_host(backstores) -> state.HostState:
    from reconciler.state import iscsi as state_iscsi

    return state.HostState(host="local", devices={"/dev/sdx": (8, 48)},
                           iscsi=state_iscsi.IscsiState(targets={}, backstores=backstores))


def test_a_lio_backstore_is_a_use_its_own_targets_apply_may_take_again():
    """REVIEW7c F4: an apply that created backstore t1_lun0 over /dev/sdx then failed (no LUN
    yet) leaves LIO claiming it: the retry exporting it again (it reuses that backstore) is
    not refused; any other step is, naming the backstore; another target's export too."""
    from reconciler import executing

    st = _lio_host({"iblock_0/t1_lun0": "/dev/sdx"})
    assert observed_uses(st, "/dev/sdx") == (Use("backstore", "iblock_0/t1_lun0"),)
    busy = _Runner(claims={"/dev/sdx": True})

    def apply(name):
        return actions.ApplyTarget(name=name, iqn=f"iqn.2024-01.x:{name}", portals=("p",),
                                   luns=((0, "/dev/sdx"),), exports=("/dev/sdx",))

    executing._check_taken(apply("t1"), st, busy)
    for action in (actions.CreatePv(device="/dev/sdx"), apply("t2")):
        try:
            executing._check_taken(action, st, busy)
            raise AssertionError(f"not refused: {action}")
        except Exception as exc:
            text = str(exc)
        assert "/dev/sdx is exported by LIO backstore iblock_0/t1_lun0 (targetcli ls " \
               "/backstores/block)" in text and "claimed by the kernel" not in text, text


def test_a_claims_words_name_what_is_known():
    """REVIEW7c F8: a process listed with an unexplained claim is most likely its own
    exclusive opener; a probe refused for want of rights says so; a partition of a plain
    disk mounted now is named (on vdc1), not left to "the kernel"."""
    from reconciler import executing

    st = state.HostState(host="local", devices={"/dev/vdc": (254, 32)})
    create = actions.CreatePv(device="/dev/vdc")

    def refused(runner):
        try:
            executing._check_taken(create, st, runner)
        except Exception as exc:
            return str(exc)
        raise AssertionError("not refused")

    text = refused(_Runner({"/dev/vdc": ("pid 7 (mkfs.xfs)",)}, claims={"/dev/vdc": True}))
    assert "perhaps the process it is open by, with an exclusive open of its own (mkfs, " \
           "mdadm, pvcreate...), or a member" in text and "open by pid 7 (mkfs.xfs)" in text, text
    text = refused(_Runner(claims={"/dev/vdc": "EACCES: Permission denied"}))
    assert "(EACCES: Permission denied: the probe needs root, and access to the device in " \
           "its cgroup)" in text, text
    sysfs = {"/sys/dev/block/254:32/uevent": "MAJOR=254\nMINOR=32\nDEVNAME=vdc\n",
             "/sys/dev/block/254:32/": "holders\nqueue\nsize\nvdc1\n",
             "/sys/dev/block/254:32/vdc1/dev": "254:33\n",
             "/proc/self/mountinfo": "61 24 254:33 / /mnt/x rw - xfs /dev/vdc1 rw\n"}
    runner = _Runner(claims={"/dev/vdc": True})
    runner.read = lambda path, host="local": sysfs.get(path)
    text = refused(runner)
    assert "the device /dev/vdc is mounted at /mnt/x (on vdc1)" in text \
        and "claimed" not in text, text


def test_a_copys_source_alone_is_not_probed():
    """REVIEW7c F6: a claim never counts for a copy's source (busy by design while it is
    copied), so the probe is not asked about it: it could only wait on it."""
    from reconciler import executing

    st = state.HostState(host="local", devices={"/dev/vdb": (254, 16), "/dev/vdc": (254, 32)})
    add = actions.AddMdMember(clone="db", md="/dev/md100", target="/dev/vdc", source="/dev/vdb")
    runner = _Runner()
    probed: list[tuple[str, ...]] = []
    runner.claimed = lambda paths, host="local": probed.append(tuple(paths)) or {
        p: False for p in paths}
    executing._check_taken(add, st, runner)
    assert probed == [("/dev/vdc",)]


def _sysfs_runner(files, claims):
    runner = _Runner(claims=claims)
    runner.read = lambda path, host="local": files.get(path)
    return runner


def _refusal(action, st, runner) -> str:
    from reconciler import executing

    try:
        executing._check_taken(action, st, runner)
    except Exception as exc:  # DeviceInUse
        return str(exc)
    raise AssertionError(f"not refused: {action}")


def test_vgexport_takes_only_its_own_lvs_maps_as_its_own_holders():
    """Issue 22's note (the probe): vgexport allowed any holder of its PVs, so EBUSY from a
    multipath map, dm-crypt, another VG's LV, md or DRBD over a PV let it hand that disk to
    another host. Now a holder is its own only when sysfs' dm/uuid, read then, is an LV map
    of this VG ("LVM-<vg uuid><lv uuid>", its identity; not its dm name, which anyone may
    choose); any other is refused, named, with what to check. Planning, which cannot tell
    (the observed state has no holder's uuid), still leaves them to the executor."""
    from reconciler import executing

    st = _host(devices={"/dev/sda": (8, 0)})
    st.vgs["vg1"] = state.Vg(name="vg1", uuid="vg1u", extent_size=Size(EXT), extent_count=1,
                             free_count=1, lock_type="none", missing_pv_count=0, pvs=(),
                             lvs={})
    export = actions.ExportVg(vg="vg0", devices=("/dev/sda",))
    maps = {"dm-0": ("vg0-data", "LVM-vgulvu"),  # vg0/data's map
            "dm-1": ("vg0-data", "mpath-3600a0b80001"),  # a multipath map named like it
            "dm-2": ("vg1-other", "LVM-vg1uxyz"),  # another VG's LV
            "dm-3": ("luks-9f2", "CRYPT-LUKS2-9f2-luks-9f2")}  # dm-crypt

    def files(holder):
        out = {"/sys/dev/block/8:0/holders/": f"{holder}\n"}
        if holder in maps:
            out[f"/sys/block/{holder}/dm/name"] = maps[holder][0] + "\n"
            out[f"/sys/block/{holder}/dm/uuid"] = maps[holder][1] + "\n"
        return out

    busy = {"/dev/sda": True}
    executing._check_taken(export, st, _sysfs_runner(files("dm-0"), busy))
    for holder, named in (("dm-1", "mpath-3600a0b80001"), ("dm-2", "LVM-vg1uxyz"),
                          ("dm-3", "CRYPT-LUKS2-9f2-luks-9f2"), ("md100", "md100"),
                          ("drbd0", "drbd0"), ("dm-4", "dm-4")):  # dm-4: gone, or unreadable
        text = _refusal(export, st, _sysfs_runner(files(holder), busy))
        assert f"the PV /dev/sda is held by {holder}" in text and named in text, text
        assert "not a device-mapper map of an LV of VG vg0" in text, text
        assert "lsblk /dev/sda)" in text, text
        assert (f"dmsetup info {holder}, " in text) == holder.startswith("dm-"), text
        assert "claimed by the kernel" not in text, text  # the holder explains the EBUSY
        # not probed busy: the holder is still there, and still not vgexport's own
        text = _refusal(export, st, _sysfs_runner(files(holder), {}))
        assert f"held by {holder}" in text, text
    # planning cannot tell whose map an observed holder is: left to the executor, as before
    held = _host(devices={"/dev/sda": (8, 0)}, blockdevs={"/dev/sda": state.BlockDevice(
        path="/dev/sda", devno=(8, 0), holders=("dm-1",))})
    (take,) = export.takes_devices()
    assert blocking(take, held) == []
    # an observed holder the executor reads no dm uuid of now is not its own either
    text = _refusal(export, held, _sysfs_runner({}, busy))
    assert "held by dm-1" in text and "not a device-mapper map of an LV of VG vg0" in text, text


def test_vgexport_judges_the_holders_sysfs_lists_now_not_those_observed():
    """REVIEW8c F1: a holder observed but gone since (its dm-N unreadable now, or another
    map's) refused vgexport for a pass. When the PV's holders are read now, they alone are
    judged; when they cannot be read, the observed ones still are (above)."""
    from reconciler import executing

    held = _host(devices={"/dev/sda": (8, 0)}, blockdevs={"/dev/sda": state.BlockDevice(
        path="/dev/sda", devno=(8, 0), holders=("dm-1",))})
    export = actions.ExportVg(vg="vg0", devices=("/dev/sda",))
    executing._check_taken(export, held, _sysfs_runner(
        {"/sys/dev/block/8:0/holders/": ""}, {}))  # gone: nothing holds it now
    text = _refusal(export, held, _sysfs_runner(
        {"/sys/dev/block/8:0/holders/": "dm-7\n", "/sys/block/dm-7/dm/uuid": "mpath-1\n"},
        {"/dev/sda": True}))
    assert "held by dm-7" in text and "dm-1" not in text, text


def test_a_mount_gone_since_observation_neither_refuses_nor_explains_a_claim():
    """Issue 22's note (the probe): the mounts observation saw could explain the kernel's
    EBUSY at apply time (holders were read again then, mounts were not): the kernel's mount
    table now is what counts. A mount gone leaves the EBUSY unexplained (refused as a
    claim); gone and unclaimed, nothing stops the step. Unreadable, the observed mounts
    stay."""
    from reconciler import executing

    st = state.HostState(host="local", devices={"/dev/vdc": (254, 32)}, blockdevs={
        "/dev/vdc": state.BlockDevice(path="/dev/vdc", devno=(254, 32), mounts=("/mnt/old",))})
    create = actions.CreatePv(device="/dev/vdc")
    now = {"/proc/self/mountinfo": "22 1 254:1 / / rw - ext4 /dev/vda1 rw\n"}
    text = _refusal(create, st, _sysfs_runner(now, {"/dev/vdc": True}))
    assert f"the device /dev/vdc is {CLAIM}" in text and "/mnt/old" not in text, text
    executing._check_taken(create, st, _sysfs_runner(now, {}))
    text = _refusal(create, st, _sysfs_runner({}, {"/dev/vdc": True}))
    assert "mounted at /mnt/old" in text and "claimed" not in text, text


def test_an_lv_maps_dm_uuid_is_told_by_its_vgs_uuid_as_the_lab_recorded_them():
    """The lab's own pair, recorded at one moment (tests/fixtures/outputs/lvmlockd): the
    report's vg_uuid (with dashes) and sysfs' dm/uuid of that VG's lvmlock LV ("LVM-", the
    VG's and the LV's uuids without dashes): the map is vgs'. An internal map's suffix
    ("-real", "-cow") is the VG's too; the VG's uuid alone, another VG's, or a map that is
    not LVM's (multipath, dm-crypt) are not."""
    from reconciler.adapters import lvm

    lockd = FIXTURES / "outputs" / "lvmlockd"
    text = (lockd / "vg_started_a.json").read_text()
    st = lvm.parse_fullreport(text[text.index("\n") + 1:])
    (uuid,) = re.findall(r"^/sys/block/dm-0/dm/uuid:(.*)$",
                         (lockd / "state" / "vg_started_a.txt").read_text(), re.M)
    assert st.vgs["vgs"].uuid == "hSkTd1-TeRR-VQZo-b1xV-3HAK-qoOA-WqEXoy"
    assert lv_map_vg(st, uuid) == "vgs"
    assert lv_map_vg(st, uuid + "-real") == "vgs"
    twin = dataclasses.replace(st.vgs["vgs"], name="vgs_clone")  # the same uuid twice
    assert lv_map_vg(dataclasses.replace(st, vgs={**st.vgs, "vgs_clone": twin}), uuid) == ""
    for other in ("LVM-hSkTd1TeRRVQZob1xV3HAKqoOAWqEXoy", "LVM-" + "x" * 64,
                  "mpath-3600140512345678901234567890abcde", uuid[4:], "CRYPT-LUKS2-" + uuid[4:],
                  ""):
        assert lv_map_vg(st, other) == "", other
