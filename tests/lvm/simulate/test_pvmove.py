"""pvmove: setup, progress with the virtual clock, completion, errors, resume after a crash."""

from __future__ import annotations

import pytest
from support import M
from support.simtools import lv_rows, run, segs_of, vg_report

from reconciler.simulate import SimulatedCrash

E = 4 * M


@pytest.fixture
def moving(host):
    """vg/data (100 extents) on vdb, being moved to vdc; 64 MiB/s = 16 extents/s."""
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{100 * E}b", "vg", "/dev/vdb")
    res = run(host, "pvmove", "--background", "--name", "vg/data", "/dev/vdb", "/dev/vdc")
    assert (res.rc, res.stdout, res.stderr) == (0, "", "")
    return host


def test_setup_shows_pvmove0_and_the_locked_lv(moving):
    rows = lv_rows(moving, "vg")
    mirror = rows["pvmove0"]
    assert (mirror["lv_name"], mirror["lv_attr"], mirror["lv_layout"], mirror["lv_role"]) == (
        "[pvmove0]", "p-C-aom---", "mirror", "private,pvmove")
    assert (mirror["copy_percent"], mirror["move_pv"], mirror["lv_parent"]) == (
        "0.00", "/dev/vdb", "")
    assert rows["data"]["lv_attr"] == "-wI-a-----"
    assert [s["devices"] for s in segs_of(moving, "vg", "data")] == ["pvmove0(0)"]
    assert segs_of(moving, "vg", "pvmove0") == [{
        "lv_uuid": mirror["lv_uuid"], "segtype": "mirror", "seg_start_pe": "0",
        "seg_size_pe": "100", "stripes": "2", "devices": "/dev/vdb(0),/dev/vdc(0)"}]
    owners = [p["lv_uuid"] for p in vg_report(moving, "vg")["pvseg"]]
    assert owners.count(mirror["lv_uuid"]) == 2  # source and destination


def test_progress_follows_the_clock_and_completes(moving):
    moving.clock.advance(2.5)  # 40 of 100 extents
    assert lv_rows(moving, "vg")["pvmove0"]["copy_percent"] == "40.00"
    moving.clock.advance(3.0)
    assert lv_rows(moving, "vg")["pvmove0"]["sync_percent"] == "88.00"
    moving.clock.advance(1.0)
    rows = lv_rows(moving, "vg")
    assert set(rows) == {"data"} and rows["data"]["lv_attr"] == "-wi-a-----"
    assert [s["devices"] for s in segs_of(moving, "vg", "data")] == ["/dev/vdc(0)"]
    assert moving.pv("/dev/vdb").alloc_count == 0 and moving.pv("/dev/vdc").alloc_count == 100


def test_rate_is_configurable(host):
    host.rate_bytes_per_s = 4 * M  # one extent per second
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{10 * E}b", "vg", "/dev/vdb")
    run(host, "pvmove", "--background", "--name", "data", "/dev/vdb", "/dev/vdc")
    host.clock.advance(9)
    assert lv_rows(host, "vg")["pvmove0"]["copy_percent"] == "90.00"
    host.clock.advance(1)
    assert "pvmove0" not in lv_rows(host, "vg")


def test_split_destination_and_only_the_named_lv(host):
    host.add_device("/dev/vde", 1 << 30)
    run(host, "vgextend", "vg", "/dev/vdd", "/dev/vde")
    run(host, "lvcreate", "--yes", "--name", "fill", "--size", f"{200 * E}b", "vg", "/dev/vdc")
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{100 * E}b", "vg", "/dev/vdb")
    run(host, "lvcreate", "--yes", "--name", "other", "--size", f"{10 * E}b", "vg", "/dev/vdb")
    run(host, "lvcreate", "--yes", "--name", "fill2", "--size", f"{200 * E}b", "vg", "/dev/vdd")
    res = run(host, "pvmove", "--background", "--name", "data", "/dev/vdb", "/dev/vdc", "/dev/vdd")
    assert res.rc == 0
    assert [(s["seg_start_pe"], s["seg_size_pe"], s["devices"])
            for s in segs_of(host, "vg", "pvmove0")] == [
        ("0", "55", "/dev/vdb(0),/dev/vdc(200)"), ("55", "45", "/dev/vdb(55),/dev/vdd(200)")]
    assert [s["devices"] for s in segs_of(host, "vg", "data")] == ["pvmove0(0)", "pvmove0(0)"]
    assert [s["devices"] for s in segs_of(host, "vg", "other")] == ["/dev/vdb(100)"]
    host.clock.advance(60)
    assert [(s["seg_start_pe"], s["devices"]) for s in segs_of(host, "vg", "data")] == [
        ("0", "/dev/vdc(200)"), ("55", "/dev/vdd(200)")]


def test_errors(host):
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{100 * E}b", "vg", "/dev/vdb")
    res = run(host, "pvmove", "--background", "--name", "vg/data", "/dev/vdc", "/dev/vdb")
    assert (res.rc, res.stderr) == (5, "  No data to move for vg.\n")
    res = run(host, "pvmove", "--background", "--name", "vg/nope", "/dev/vdb", "/dev/vdc")
    assert (res.rc, res.stderr) == (5, "  Logical volume nope not found.\n")
    res = run(host, "pvmove", "--background", "--name", "other/data", "/dev/vdb", "/dev/vdc")
    assert (res.rc, res.stderr) == (3, "  Named LV and old PV must be in the same VG.\n"
                                       "  Failed to find an LV name.\n"
                                       "  Run `pvmove --help' for more information.\n")
    res = run(host, "pvmove", "--background", "--name", "data", "/dev/vdx", "/dev/vdc")
    assert (res.rc, res.stderr) == (3, '  Failed to find physical volume "/dev/vdx".\n')
    run(host, "lvcreate", "--yes", "--name", "fill", "--size", f"{200 * E}b", "vg", "/dev/vdc")
    res = run(host, "pvmove", "--background", "--name", "data", "/dev/vdb", "/dev/vdc")
    assert (res.rc, res.stderr) == (5, "  Insufficient free space: 100 extents needed, but only "
                                       "55 available\n"
                                       "  Unable to allocate mirror extents for vg/pvmove0.\n"
                                       "  Failed to convert pvmove LV to mirrored.\n")
    run(host, "lvextend", "--size", f"{255 * E}b", "vg/fill")
    res = run(host, "pvmove", "--background", "--name", "data", "/dev/vdb", "/dev/vdc")
    assert (res.rc, res.stderr) == (5, "  No extents available for allocation.\n")
    assert "pvmove0" not in lv_rows(host, "vg")


def test_a_second_pvmove_of_the_same_source_reattaches(moving):
    res = run(moving, "pvmove", "--background", "--name", "vg/data", "/dev/vdb", "/dev/vdc")
    assert (res.rc, res.stdout, res.stderr) == (
        0, "  Detected pvmove in progress for /dev/vdb.\n",
        "  WARNING: Ignoring remaining command line arguments.\n")
    assert [n for n in lv_rows(moving, "vg") if n.startswith("pvmove")] == ["pvmove0"]


def test_locked_lv_cannot_be_resized_removed_or_converted(moving):
    assert run(moving, "lvextend", "--size", f"{200 * E}b", "vg/data").stderr == (
        "  Can't resize locked logical volume vg/data.\n")
    assert run(moving, "lvremove", "--yes", "vg/data").stderr == (
        "  Can't remove locked logical volume vg/data.\n")
    res = run(moving, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg/data")
    assert (res.rc, res.stderr) == (5, "  Cannot convert locked LV vg/data.\n")


def test_interrupted_move_resumes_only_with_bare_pvmove(moving):
    moving.clock.advance(4)  # 64 extents copied, one segment: nothing finished on disk
    moving.crash_after(0)
    with pytest.raises(SimulatedCrash):
        run(moving, "lvm", "version")
    moving.clock.advance(100)  # the host is down: nothing moves
    moving.recover()
    rows = lv_rows(moving, "vg")
    assert rows["pvmove0"]["copy_percent"] == "0.00" and rows["data"]["lv_attr"] == "-wI-a-----"
    moving.clock.advance(100)  # rebooted, but no poller: no progress
    assert lv_rows(moving, "vg")["pvmove0"]["copy_percent"] == "0.00"
    res = run(moving, "pvmove", "--background")
    assert (res.rc, res.stdout, res.stderr) == (0, "", "")
    moving.clock.advance(3)
    assert lv_rows(moving, "vg")["pvmove0"]["copy_percent"] == "48.00"
    moving.clock.advance(10)
    assert [s["devices"] for s in segs_of(moving, "vg", "data")] == ["/dev/vdc(0)"]


def test_finished_segments_survive_a_crash(host):
    host.add_device("/dev/vde", 1 << 30)
    run(host, "vgextend", "vg", "/dev/vdd", "/dev/vde")
    run(host, "lvcreate", "--yes", "--name", "fill", "--size", f"{200 * E}b", "vg", "/dev/vdc")
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{100 * E}b", "vg", "/dev/vdb")
    run(host, "lvcreate", "--yes", "--name", "fill2", "--size", f"{200 * E}b", "vg", "/dev/vdd")
    run(host, "pvmove", "--background", "--name", "data", "/dev/vdb", "/dev/vdc", "/dev/vdd")
    host.clock.advance(4)  # 64 extents: the first segment (55) is done
    host.crash_after(0)
    host.recover()
    assert lv_rows(host, "vg")["pvmove0"]["copy_percent"] == "55.00"
    res = run(host, "pvmove", "--background", "/dev/vdb")  # naming the PV also resumes
    assert (res.rc, res.stdout) == (0, "  Detected pvmove in progress for /dev/vdb.\n")
    host.clock.advance(3)
    assert "pvmove0" not in lv_rows(host, "vg")
