"""lvconvert to raid1 and back: sub-LVs, attrs, resync progress, refusal when out of sync."""

from __future__ import annotations

import pytest
from support import M
from support.simtools import lv_rows, run, segs_of

from reconciler.simulate import SimulatedCrash

E = 4 * M
TO_RAID1 = ("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1")
TO_LINEAR = ("lvconvert", "--yes", "--mirrors", "0")


@pytest.fixture
def mirrored(host):
    """vg/data (64 extents) on vdb converted to raid1 with a leg on vdc; 16 extents/s."""
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{64 * E}b", "vg", "/dev/vdb")
    res = run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg/data",
              "/dev/vdc")
    assert (res.rc, res.stdout) == (0, "  Logical volume vg/data successfully converted.\n")
    return host


def test_conversion_creates_lvm_sub_lvs(mirrored):
    rows = lv_rows(mirrored, "vg")
    assert {n: (r["lv_name"], r["lv_attr"], r["lv_parent"], r["lv_role"], r["lv_layout"])
            for n, r in rows.items()} == {
        "data": ("data", "rwi-a-r---", "", "public", "raid,raid1"),
        "data_rimage_0": ("[data_rimage_0]", "iwi-aor---", "data", "private,raid,image", "linear"),
        "data_rimage_1": ("[data_rimage_1]", "Iwi-aor---", "data", "private,raid,image", "linear"),
        "data_rmeta_0": ("[data_rmeta_0]", "ewi-aor---", "data", "private,raid,metadata", "linear"),
        "data_rmeta_1": ("[data_rmeta_1]", "ewi-aor---", "data", "private,raid,metadata", "linear"),
    }
    assert (rows["data"]["copy_percent"], rows["data"]["raid_sync_action"]) == ("0.00", "recover")
    assert segs_of(mirrored, "vg", "data")[0]["devices"] == "data_rimage_0(0),data_rimage_1(0)"
    assert segs_of(mirrored, "vg", "data")[0]["stripes"] == "2"
    where = {n: segs_of(mirrored, "vg", n)[0]["devices"] for n in rows if n != "data"}
    assert where == {"data_rimage_0": "/dev/vdb(0)", "data_rmeta_0": "/dev/vdb(64)",
                     "data_rmeta_1": "/dev/vdc(0)", "data_rimage_1": "/dev/vdc(1)"}


def test_sync_progresses_with_the_clock(mirrored):
    mirrored.clock.advance(2)
    assert lv_rows(mirrored, "vg")["data"]["sync_percent"] == "50.00"
    mirrored.clock.advance(2)
    rows = lv_rows(mirrored, "vg")
    assert (rows["data"]["copy_percent"], rows["data"]["raid_sync_action"]) == ("100.00", "idle")
    assert rows["data_rimage_1"]["lv_attr"] == "iwi-aor---"


def test_resync_carries_on_after_a_crash(mirrored):
    mirrored.clock.advance(1)
    mirrored.crash_after(0)
    mirrored.clock.advance(100)
    with pytest.raises(SimulatedCrash):
        run(mirrored, "lvm", "version")
    mirrored.recover()
    assert lv_rows(mirrored, "vg")["data"]["copy_percent"] == "25.00"
    mirrored.clock.advance(3)
    assert lv_rows(mirrored, "vg")["data"]["raid_sync_action"] == "idle"


def test_cannot_drop_the_only_in_sync_image(mirrored):
    res = run(mirrored, "lvconvert", "--yes", "--mirrors", "0", "vg/data", "/dev/vdb")
    assert (res.rc, res.stderr) == (5, "  Unable to remove all primary source devices\n"
                                       "  Failed to extract images from vg/data.\n")
    mirrored.clock.advance(10)
    res = run(mirrored, "lvconvert", "--yes", "--mirrors", "0", "vg/data", "/dev/vdb")
    assert (res.rc, res.stdout) == (0, "  Logical volume vg/data successfully converted.\n")
    rows = lv_rows(mirrored, "vg")
    assert set(rows) == {"data"} and rows["data"]["lv_attr"] == "-wi-a-----"
    assert [s["devices"] for s in segs_of(mirrored, "vg", "data")] == ["/dev/vdc(1)"]
    assert mirrored.pv("/dev/vdb").alloc_count == 0 and mirrored.pv("/dev/vdc").alloc_count == 64


def test_dropping_the_new_leg_while_syncing_is_allowed(mirrored):
    res = run(mirrored, "lvconvert", "--yes", "--mirrors", "0", "vg/data", "/dev/vdc")
    assert res.rc == 0
    assert [s["devices"] for s in segs_of(mirrored, "vg", "data")] == ["/dev/vdb(0)"]
    assert mirrored.pv("/dev/vdc").alloc_count == 0 and mirrored.pv("/dev/vdb").alloc_count == 64


def test_conversion_errors(host):
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{200 * E}b", "vg", "/dev/vdb")
    run(host, "lvcreate", "--yes", "--name", "fill", "--size", f"{100 * E}b", "vg", "/dev/vdc")
    res = run(host, *TO_RAID1, "vg/data", "/dev/vdc")
    assert (res.rc, res.stderr) == (5, "  Insufficient free space: 201 extents needed, but only "
                                       "155 available\n")
    assert set(lv_rows(host, "vg")) == {"data", "fill"}
    res = run(host, *TO_LINEAR, "vg/data", "/dev/vdb")
    assert (res.rc, res.stderr) == (0, "  WARNING: vg/data already has image count of 1.\n")
    run(host, "lvremove", "--yes", "vg/fill")
    run(host, *TO_RAID1, "vg/data", "/dev/vdc")
    res = run(host, *TO_RAID1, "vg/data", "/dev/vdc")
    assert (res.rc, res.stdout, res.stderr) == (
        0, "  Logical volume vg/data successfully converted.\n",
        "  WARNING: vg/data already has image count of 2.\n")
    res = run(host, *TO_LINEAR, "vg/data", "/dev/disk/by-id/virtio-disk1")
    assert res.rc == 5  # still syncing and vdb holds image 0
    res = run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg/nope")
    assert (res.rc, res.stderr) == (5, '  Failed to find logical volume "vg/nope"\n')


def test_removing_a_raid1_lv_frees_its_sub_lvs(mirrored):
    res = run(mirrored, "lvremove", "--yes", "vg/data")
    assert res.rc == 0 and lv_rows(mirrored, "vg") == {}
    assert mirrored.vg("vg").free_count == 510
    mirrored.clock.advance(100)  # nothing left to sync: no error
