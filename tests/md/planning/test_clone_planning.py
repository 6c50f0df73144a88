"""Clone planning rules on hand-made observed states (what the simulator cannot build:
persistent arrays, other RAID levels, several clones at once), and the ledger's rules: a
target that received a completed copy is known by its identity, never written again
unless a new ``recopy`` value asks, and its record outlives the clone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from support import M
from support.specs import spec

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

L = "/var/lib/reconciler/clones.json"
VDA, VDB, VDC, VDD = (254, 0), (254, 16), (254, 32), (254, 48)


def clone_tables(**clones) -> dict:
    """``[clone.NAME]`` tables for ``spec``: each clone the base one with its own fields."""
    base = {"nodes": ["n"], "source": "/dev/vda", "target": "/dev/vdb", "md": "/dev/md100",
            "state": "split"}
    return {"clone": {name: {**base, **c} for name, c in clones.items()}}


ALIAS = "/dev/disk/by-id/virtio-d1"  # another name of /dev/vdb


def devs(**extra) -> dict[str, BlockDevice]:
    out = {p: BlockDevice(path=p, devno=n, name=p[5:], size=64 * M, identity=f"serial:d{i}")
           for i, (p, n) in enumerate((("/dev/vda", VDA), ("/dev/vdb", VDB), ("/dev/vdc", VDC),
                                       ("/dev/vdd", VDD)))}
    out[ALIAS] = BlockDevice(path=ALIAS, devno=VDB, name="vdb", size=64 * M, identity="serial:d1")
    out.update(extra)
    return out


def host(arrays=(), records=(), problem=None, blockdevs=None, legacy=False) -> HostState:
    return HostState(host="local", md={a.name: a for a in arrays},
                     blockdevs=blockdevs or devs(), observed_at=100.0,
                     ledger=Ledger(path=L, records={r.key: r for r in records}, problem=problem,
                                   legacy=legacy))


def copy(clone="db", source="/dev/vda", target="/dev/vdb", at=50.0, **kw) -> CloneRecord:
    """A record of a completed copy, with the identities devs() gives."""
    ids = {"/dev/vda": "serial:d0", "/dev/vdb": "serial:d1", ALIAS: "serial:d1",
           "/dev/vdc": "serial:d2", "/dev/vdd": "serial:d3"}
    base = dict(clone=clone, source=source, target=target, md="/dev/md100", split_at=at,
                source_id=ids[source], target_id=ids[target], size=64 * M)
    return CloneRecord(**{**base, **kw})


def written(p, key="ledger:clones") -> dict[str, CloneRecord]:
    step, = [s for s in p.steps if s.key == key]
    return dict(step.action.records)


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
        p = plan(spec(clone_tables(db={})), host([arr]))
        assert not p.steps and [b.object for b in p.blocked] == ["clone db"]
        assert words in p.blocked[0].reason


def test_a_damaged_or_unread_ledger_blocks_all_clones():
    sp = spec(clone_tables(a={}, b={"source": "/dev/vdc", "target": "/dev/vdd", "md": "/dev/md101"}))
    p = plan(sp, host(problem=f"{L} cannot be read as a clone ledger (x)"))
    assert [b.object for b in p.blocked] == ["clone a", "clone b"] and not p.steps
    p = plan(sp, HostState(host="local", blockdevs=devs()))
    assert "the clone ledger was not read" in p.blocked[0].reason


def test_two_clones_splitting_at_once_share_one_ledger_write():
    sp = spec(clone_tables(a={}, b={"source": "/dev/vdc", "target": "/dev/vdd", "md": "/dev/md101"}))
    st = host([array(SRC, DST), array(("vdc", VDC, 0, ("in_sync",)), ("vdd", VDD, 1, ("in_sync",)),
                                      name="md101")])
    p = plan(sp, st)
    assert [s.key for s in p.steps] == ["ledger:clones", "ledger:clones:split", "clone:a:stop",
                                        "clone:b:stop"]
    synced, write = p.steps[0].action, p.steps[1].action
    assert isinstance(write, actions.WriteCloneLedger)
    records = {"serial:d1": copy("a", at=100.0),
               "serial:d3": copy("b", "/dev/vdc", "/dev/vdd", at=100.0, md="/dev/md101")}
    # first the completed syncs, then (one step, after it) the splits, then the stops
    assert dict(synced.records) == {k: replace(r, split=False) for k, r in records.items()}
    assert dict(write.records) == records
    assert write.describe() == ("record the copy of clone a on /dev/vdb; "
                                "record the copy of clone b on /dev/vdd")
    assert p.steps[1].after == {"ledger:clones"}
    assert all(s.after == {"ledger:clones", "ledger:clones:split"} for s in p.steps[2:])
    assert md_ledger_round_trip(write.records) and md_ledger_round_trip(synced.records)


def md_ledger_round_trip(records) -> bool:
    from reconciler.adapters import md
    return md.parse_ledger(L, md.ledger_text(dict(records))).records == dict(records)


def test_a_record_for_another_target_does_not_count_and_is_kept_undeclared():
    old = copy(target="/dev/vdc")  # clone db once copied onto vdc; it now names vdb
    p = plan(spec(clone_tables(db={})), host(records=[old]))
    steps = {s.key: s for s in p.steps}
    assert set(steps) == {"clone:db:build", "clone:db:add", "ledger:clones"}
    assert steps["clone:db:build"].after == frozenset()  # no record of vdb to forget first
    assert written(p) == {"serial:d2": replace(old, declared=False)}  # vdc stays protected
    assert "keep the copy on /dev/vdc protected: clone db no longer declares it" in \
        steps["ledger:clones"].action.describe()


def test_a_split_clone_with_its_record_is_done_whatever_its_devices_now():
    rec = copy()
    gone = devs(**{"/dev/vda": BlockDevice(path="/dev/vda", devno=None),
                   "/dev/vdb": BlockDevice(path="/dev/vdb", devno=VDB, size=64 * M,
                                           mounts=("/srv",), identity="serial:d1")})
    assert plan(spec(clone_tables(db={})), host(records=[rec], blockdevs=gone)).converged
    target_gone = devs(**{"/dev/vdb": BlockDevice(path="/dev/vdb", devno=None)})
    assert plan(spec(clone_tables(db={})), host(records=[rec], blockdevs=target_gone)).converged


def test_a_record_is_dropped_while_the_array_runs_out_of_sync():
    recovering = array(SRC, ("vdb", VDB, 1, ("spare",)), sync_action="recover", degraded=1,
                       sync_done=8 * M, sync_total=64 * M, sync_speed=2.0 * M)
    p = plan(spec(clone_tables(db={})), host([recovering], records=[copy()]))
    assert [s.key for s in p.steps] == ["ledger:clones"] and p.steps[0].action.records == ()
    f, = p.in_flight
    assert (f.percent, f.speed, f.eta) == (12.5, 2.0 * M, 28.0)
    assert "12.5% at 2.0M/s, ETA 28s" in str(p)


def test_a_completed_sync_is_remembered_and_its_array_gone_blocks_the_rebuild():
    mounted = array(SRC, DST, mounts=("/srv",))
    p = plan(spec(clone_tables(db={})), host([mounted]))
    assert "in sync, but /dev/md100 is in use (mounted at /srv); stop using /dev/md100 (do " \
        "not use /dev/vdb yet)" in p.blocked[0].reason
    # remembered though the split is blocked
    assert written(p) == {"serial:d1": copy(at=100.0, split=False)}
    # the array gone (a reboot, a stop by hand) without the split: never rebuilt over
    gone = plan(spec(clone_tables(db={})), host(records=[copy(split=False)]))
    reason = blocked_reason(gone)
    assert reason.startswith("the target /dev/vdb held a complete copy of /dev/vda at "
                             "1970-01-01 00:00:50 UTC and /dev/md100 is gone without the split")
    assert not gone.steps
    # a clone that never completed a sync is rebuilt from the source, as before
    assert [s.key for s in plan(spec(clone_tables(db={})), host()).steps] == ["clone:db:build",
                                                                "clone:db:add"]
    # a new recopy value copies again
    again = plan(spec(clone_tables(db={"recopy": "2"})), host(records=[copy(split=False)]))
    assert "clone:db:build" in [s.key for s in again.steps]


def test_abandoned_keeps_the_record():
    assert plan(spec(clone_tables(db={"state": "abandoned"})), host(records=[copy()])).converged
    assert plan(spec(clone_tables(db={"state": "abandoned"})), host()).converged


# -- a completed copy is never written again unless a new recopy value asks ------------------


def blocked_reason(p, name="db") -> str:
    assert not [s for s in p.steps if s.key.startswith("clone:")], p.steps
    reason, = [b.reason for b in p.blocked if b.object == f"clone {name}"]
    return reason


def test_a_respelled_target_is_the_same_target_and_stays_split():
    p = plan(spec(clone_tables(db={"target": ALIAS})), host(records=[copy()]))
    assert p.converged


def test_a_renamed_clone_is_blocked_and_the_old_record_kept():
    p = plan(spec(clone_tables(db2={})), host(records=[copy()]))
    reason = blocked_reason(p, "db2")
    assert reason.startswith("the target /dev/vdb (serial:d1) holds a completed copy of "
                             "/dev/vda (serial:d0) made by clone db at 1970-01-01 00:00:50 UTC; "
                             "clone db2 is not the clone that made it. A completed copy is never "
                             "overwritten on its own: set recopy = ")
    assert "in clone db2 to copy /dev/vda onto it again (which overwrites it)" in reason
    assert written(p) == {"serial:d1": copy(declared=False)}


def test_a_clone_declared_again_after_leaving_the_spec_is_blocked():
    p = plan(spec(clone_tables(db={})), host(records=[copy(declared=False)]))
    assert "clone db has left the spec (or named other devices) since" in blocked_reason(p)
    assert "ledger:clones" not in [s.key for s in p.steps]


@pytest.mark.parametrize("change,words", [
    ({"source": "/dev/vdc"}, "the spec now names /dev/vdc (serial:d2) as the source"),
    ({"state": "mirrored"}, 'the spec now asks for state = "mirrored", which copies again'),
])
def test_a_split_clone_asked_to_copy_again_without_a_new_recopy_value_is_blocked(change, words):
    p = plan(spec(clone_tables(db=change)), host(records=[copy(recopy="2024-06-01")]))
    assert words in blocked_reason(p)


def test_a_recopy_value_copies_once():
    used = copy(recopy="2024-06-01")
    assert plan(spec(clone_tables(db={"recopy": "2024-06-01"})), host(records=[used])).converged
    for again in (replace(used, declared=False), replace(used, clone="other")):
        p = plan(spec(clone_tables(db={"recopy": "2024-06-01"})), host(records=[again]))
        assert 'recopy = "2024-06-01" was already used for that copy' in blocked_reason(p)


def test_a_new_recopy_value_copies_from_the_source_keeping_the_record_until_replaced():
    for rec in (copy(), copy(declared=False), copy("old", recopy="1"), copy(source="/dev/vdc")):
        p = plan(spec(clone_tables(db={"recopy": "2"})), host(records=[rec]))
        steps = {s.key: s for s in p.steps}
        assert {"clone:db:build", "clone:db:add"} <= set(steps)
        assert steps["clone:db:build"].after == frozenset()  # nothing forgotten first
        if "ledger:clones" in steps:
            assert "serial:d1" in written(p)
    # once in sync, the copy is recorded with the value that asked for it
    p = plan(spec(clone_tables(db={"recopy": "2"})), host([array(SRC, DST)]))
    assert written(p, "ledger:clones:split") == {"serial:d1": copy(at=100.0, recopy="2")}


def test_a_withdrawn_recopy_after_a_refused_add_leaves_the_target_protected():
    built = array(SRC)  # the build ran, the add failed or was refused
    asked = plan(spec(clone_tables(db={"recopy": "2"})), host([built], records=[copy()]))
    steps = {s.key: s for s in asked.steps}
    assert "ledger:clones" in steps["clone:db:add"].after  # "2" marked used before the add
    assert written(asked) == {"serial:d1": copy()}  # the record stays
    mark = steps["ledger:clones"].action
    assert (dict(mark.used), dict(mark.running)) == ({"serial:d1": ("2",)}, {"serial:d1": "2"})
    withdrawn = plan(spec(clone_tables(db={})), host([built], records=[copy()]))
    reason = blocked_reason(withdrawn)
    assert "holds a completed copy" in reason and "runs without it" in reason
    assert not withdrawn.steps


def test_a_new_recopy_value_still_refuses_a_target_in_use():
    busy = devs(**{"/dev/vdb": BlockDevice(path="/dev/vdb", devno=VDB, size=64 * M,
                                           mounts=("/srv",), identity="serial:d1")})
    p = plan(spec(clone_tables(db={"recopy": "2"})), host(records=[copy()], blockdevs=busy))
    assert blocked_reason(p) == ('recopy = "2" asks for a new copy onto /dev/vdb; but the target '
                                 '/dev/vdb is mounted at /srv; the copy would overwrite it')
    assert not p.steps


def test_two_clones_naming_one_device_are_both_refused():
    p = plan(spec(clone_tables(a={}, b={"source": "/dev/vdc", "target": ALIAS, "md": "/dev/md101"})), host())
    assert not p.steps
    assert {b.object: b.reason for b in p.blocked} == {
        "clone a": f"/dev/vdb is the same device as {ALIAS} of clone b (serial:d1); a device "
                   "takes part in one clone, as one of its devices",
        "clone b": f"{ALIAS} is the same device as /dev/vdb of clone a (serial:d1); a device "
                   "takes part in one clone, as one of its devices"}


def test_records_of_clones_that_left_the_spec_are_kept_marked():
    p = plan(models.Spec(), host(records=[copy(), copy("x", "/dev/vdc", "/dev/vdd")]))
    assert written(p) == {"serial:d1": copy(declared=False),
                          "serial:d3": copy("x", "/dev/vdc", "/dev/vdd", declared=False)}
    assert plan(models.Spec(), host(records=[copy(declared=False)])).converged


def test_an_unstable_identity_also_matches_the_path_as_spelt():
    # no serial: the identity is the device number and size, which a reboot may change
    renumbered = devs(**{"/dev/vdb": BlockDevice(path="/dev/vdb", devno=(254, 64), size=64 * M,
                                                 identity="devno:254:64,size:67108864")})
    rec = copy(target_id="devno:254:16,size:67108864")
    assert plan(spec(clone_tables(db={})), host(records=[rec], blockdevs=renumbered)).converged
    assert "clone db2 is not the clone" in blocked_reason(
        plan(spec(clone_tables(db2={})), host(records=[rec], blockdevs=renumbered)), "db2")


def test_a_format_1_ledger_is_identified_and_rewritten():
    legacy = [CloneRecord(clone="db", source="/dev/vda", target="/dev/vdb", md="/dev/md100",
                          split_at=50.0),
              CloneRecord(clone="gone", source="/dev/vdx", target="/dev/vdy", md="/dev/md7",
                          split_at=40.0)]
    unseen = devs(**{p: BlockDevice(path=p, devno=None) for p in ("/dev/vdx", "/dev/vdy")})
    p = plan(spec(clone_tables(db={"target": ALIAS})), host(records=legacy, legacy=True, blockdevs=unseen))
    assert [s.key for s in p.steps] == ["ledger:clones"]
    assert written(p) == {"serial:d1": copy(),  # identified; still its clone's: stays split
                          "path:/dev/vdy": replace(legacy[1], declared=False)}
    assert p.steps[0].action.describe().startswith(
        "rewrite the ledger with device identities (format 2)")
    # renamed before the upgrade: the record protects the target all the same
    p = plan(spec(clone_tables(db2={})), host(records=legacy[:1], legacy=True))
    assert "made by clone db at" in blocked_reason(p, "db2")
    assert written(p) == {"serial:d1": copy(declared=False)}
    # an unidentified record protects its path as spelt
    p = plan(spec(clone_tables(db={"source": "/dev/vda", "target": "/dev/vdy"})),
             host(records=legacy[1:], legacy=True, blockdevs=unseen))
    assert "made by clone gone" in blocked_reason(p)


def test_abandoned_refuses_to_stop_an_array_in_use_or_not_its_own():
    busy = array(SRC, ("vdb", VDB, 1, ("spare",)), sync_action="recover", degraded=1,
                 mounts=("/srv/db",))
    p = plan(spec(clone_tables(db={"state": "abandoned"})), host([busy]))
    assert "/dev/md100 is in use (mounted at /srv/db)" in p.blocked[0].reason and not p.steps
    other = array(("vdc", VDC, 0, ("in_sync",)))
    p = plan(spec(clone_tables(db={"state": "abandoned"})), host([other]))
    assert "without the source" in p.blocked[0].reason and not p.steps


def test_mirrored_in_sync_is_converged_and_unmanaged_arrays_are_listed():
    st = host([array(SRC, DST), array(("vdc", VDC, 0, ("in_sync",)), name="md5", metadata="1.2")])
    p = plan(spec(clone_tables(db={"state": "mirrored"})), st)
    assert p.converged and p.unmanaged == ("md md5",)


def test_a_clone_device_that_is_a_vg_pv_by_another_spelling_blocks_both():
    sp = models.Spec.model_validate({
        "vg": {"vg0": {"nodes": ["n"], "scope": "local", "pvs": ["/dev/vdb"]}},
        "clone": {"db": {"nodes": ["n"], "source": "/dev/vda", "target": ALIAS,
                         "md": "/dev/md100", "state": "split"}}})
    st = replace(host(), devices={"/dev/vdb": VDB, ALIAS: VDB, "/dev/vda": VDA})
    p = plan(sp, st)
    assert not p.steps, p.steps
    reasons = {b.object: b.reason for b in p.blocked}
    assert set(reasons) == {"vg vg0", "clone db"}
    for r in reasons.values():
        assert r.startswith(f"/dev/vdb (vg.vg0.pvs) and {ALIAS} (clone.db.target) are the "
                            f"same device (254:16)")
