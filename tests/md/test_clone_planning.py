"""Clone planning rules on hand-made observed states (what the simulator cannot build:
persistent arrays, other RAID levels, several clones at once)."""

from __future__ import annotations

from reconciler import actions, planning
from reconciler.spec import models
from reconciler.state import (
    BlockDevice,
    CloneRecord,
    HostState,
    Ledger,
    MdArray,
    MdMember,
)

M = 1 << 20
L = "/var/lib/reconciler/clones.json"
VDA, VDB, VDC, VDD = (254, 0), (254, 16), (254, 32), (254, 48)


def spec(**clones) -> models.Spec:
    base = {"nodes": ["n"], "source": "/dev/vda", "target": "/dev/vdb", "md": "/dev/md100",
            "state": "split"}
    return models.Spec.model_validate({"clone": {name: {**base, **c} for name, c in clones.items()}})


def devs(**extra) -> dict[str, BlockDevice]:
    out = {p: BlockDevice(path=p, devno=n, name=p[5:], size=64 * M)
           for p, n in (("/dev/vda", VDA), ("/dev/vdb", VDB), ("/dev/vdc", VDC), ("/dev/vdd", VDD))}
    out.update(extra)
    return out


def host(arrays=(), records=None, problem=None, blockdevs=None) -> HostState:
    return HostState(host="local", md={a.name: a for a in arrays},
                     blockdevs=blockdevs or devs(), observed_at=100.0,
                     ledger=Ledger(path=L, clones=records or {}, problem=problem))


def array(*members, metadata="none", level="raid1", raid_disks=2, name="md100", **kw):
    ms = tuple(MdMember(name=n, index=i, devno=d, slot=s, flags=f)
               for i, (n, d, s, f) in enumerate(members))
    return MdArray(name=name, level=level, metadata=metadata, size=64 * M, members=ms,
                   raid_disks=raid_disks, array_state="clean", sync_action=kw.pop("sync_action", "idle"),
                   degraded=kw.pop("degraded", 0), **kw)


SRC = ("vda", VDA, 0, ("in_sync",))
DST = ("vdb", VDB, 1, ("in_sync",))


def plan(sp, st):
    return planning.plan(sp, st, node="n")


def test_an_existing_array_that_is_not_a_clone_is_refused():
    cases = [
        (array(SRC, DST, metadata="1.2"), "persistent array (metadata 1.2)"),
        (array(SRC, DST, level="raid5", raid_disks=3), "exists as raid5 with 3 devices"),
    ]
    for arr, words in cases:
        p = plan(spec(db={}), host([arr]))
        assert not p.steps and [b.object for b in p.blocked] == ["clone db"]
        assert words in p.blocked[0].reason


def test_a_damaged_or_unread_ledger_blocks_all_clones():
    sp = spec(a={}, b={"source": "/dev/vdc", "target": "/dev/vdd", "md": "/dev/md101"})
    p = plan(sp, host(problem=f"{L} cannot be read as a clone ledger (x)"))
    assert [b.object for b in p.blocked] == ["clone a", "clone b"] and not p.steps
    p = plan(sp, HostState(host="local", blockdevs=devs()))
    assert "the clone ledger was not read" in p.blocked[0].reason


def test_two_clones_splitting_at_once_share_one_ledger_write():
    sp = spec(a={}, b={"source": "/dev/vdc", "target": "/dev/vdd", "md": "/dev/md101"})
    st = host([array(SRC, DST), array(("vdc", VDC, 0, ("in_sync",)), ("vdd", VDD, 1, ("in_sync",)),
                                      name="md101")])
    p = plan(sp, st)
    assert [s.key for s in p.steps] == ["ledger:clones", "clone:a:stop", "clone:b:stop"]
    write = p.steps[0].action
    assert isinstance(write, actions.WriteCloneLedger)
    assert dict(write.records) == {
        "a": CloneRecord("/dev/vda", "/dev/vdb", "/dev/md100", 100.0),
        "b": CloneRecord("/dev/vdc", "/dev/vdd", "/dev/md101", 100.0)}
    assert write.describe() == "record clone a as split; record clone b as split"
    assert all(s.after == {"ledger:clones"} for s in p.steps[1:])


def test_a_record_for_other_devices_does_not_count_as_split():
    old = CloneRecord("/dev/vda", "/dev/vdc", "/dev/md100", 50.0)
    p = plan(spec(db={}), host(records={"db": old, "other": old}))
    assert [s.key for s in p.steps] == ["ledger:clones", "clone:db:build", "clone:db:add"]
    assert dict(p.steps[0].action.records) == {"other": old}  # others' records are kept
    assert p.steps[1].after == {"ledger:clones"}


def test_a_split_clone_with_its_record_is_done_whatever_its_devices_now():
    rec = CloneRecord("/dev/vda", "/dev/vdb", "/dev/md100", 50.0)
    gone = devs(**{"/dev/vda": BlockDevice(path="/dev/vda", devno=None),
                   "/dev/vdb": BlockDevice(path="/dev/vdb", devno=VDB, size=64 * M,
                                           mounts=("/srv",))})
    p = plan(spec(db={}), host(records={"db": rec}, blockdevs=gone))
    assert p.converged


def test_a_record_is_dropped_while_the_array_runs_out_of_sync():
    rec = CloneRecord("/dev/vda", "/dev/vdb", "/dev/md100", 50.0)
    recovering = array(SRC, ("vdb", VDB, 1, ("spare",)), sync_action="recover", degraded=1,
                       sync_done=8 * M, sync_total=64 * M, sync_speed=2.0 * M)
    p = plan(spec(db={}), host([recovering], records={"db": rec}))
    assert [s.key for s in p.steps] == ["ledger:clones"] and p.steps[0].action.records == ()
    f, = p.in_flight
    assert (f.percent, f.speed, f.eta) == (12.5, 2.0 * M, 28.0)
    assert "12.5% at 2.0M/s, ETA 28s" in str(p)


def test_abandoned_without_an_array_forgets_the_record_only():
    rec = CloneRecord("/dev/vda", "/dev/vdb", "/dev/md100", 50.0)
    p = plan(spec(db={"state": "abandoned"}), host(records={"db": rec}))
    assert [s.key for s in p.steps] == ["ledger:clones"]
    assert "forget the split of clone db (abandoned)" == p.steps[0].action.describe()
    assert plan(spec(db={"state": "abandoned"}), host()).converged


def test_abandoned_refuses_to_stop_an_array_in_use_or_not_its_own():
    busy = array(SRC, ("vdb", VDB, 1, ("spare",)), sync_action="recover", degraded=1,
                 mounts=("/srv/db",))
    p = plan(spec(db={"state": "abandoned"}), host([busy]))
    assert "/dev/md100 is in use (mounted at /srv/db)" in p.blocked[0].reason and not p.steps
    other = array(("vdc", VDC, 0, ("in_sync",)))
    p = plan(spec(db={"state": "abandoned"}), host([other]))
    assert "without the source" in p.blocked[0].reason and not p.steps


def test_mirrored_in_sync_is_converged_and_unmanaged_arrays_are_listed():
    st = host([array(SRC, DST), array(("vdc", VDC, 0, ("in_sync",)), name="md5", metadata="1.2")])
    p = plan(spec(db={"state": "mirrored"}), st)
    assert p.converged and p.unmanaged == ("md md5",)
