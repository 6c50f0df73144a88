"""The builder API: devices and aliases, PVs, VGs, and lvm-like allocation."""

from __future__ import annotations

import pytest
from support import M, G
from support.simtools import EXTENTS_PER_GIB, segs_of

from reconciler.simulate import SimClock, SimulatedHost



def test_devices_resolve_through_aliases():
    h = SimulatedHost()
    h.add_device("/dev/vdb", G, aliases=("/dev/disk/by-id/virtio-a", "/dev/disk/by-path/x"))
    h.add_device("/dev/mapper/lun02", G)
    h.add_device("/dev/mapper/lun30", G)
    h.add_device("/dev/nvme0n1", G, major=259, minor=7)
    assert h.resolve_device("/dev/vdb") == (254, 16)
    assert h.resolve_device("/dev/disk/by-id/virtio-a") == (254, 16)
    assert h.resolve_device("/dev/mapper/lun02") == (253, 0)
    assert h.resolve_device("/dev/mapper/lun30") == (253, 1)
    assert h.resolve_device("/dev/nvme0n1") == (259, 7)
    assert h.resolve_device("/dev/vdz") is None
    with pytest.raises(ValueError):
        h.add_device("/dev/disk/by-id/virtio-a", G)
    with pytest.raises(ValueError):
        h.add_device("/dev/other", G, major=254, minor=16)


def test_add_vg_labels_devices_and_rejects_reuse(host):
    assert host.pv("/dev/disk/by-id/virtio-disk1").vg is host.vg("vg")
    assert host.vg("vg").extent_count == 2 * EXTENTS_PER_GIB
    with pytest.raises(ValueError):
        host.add_vg("other", ["/dev/vdb"])
    with pytest.raises(ValueError):
        host.add_vg("vg", ["/dev/vdd"])
    host.add_vg("small", ["/dev/vdd"], extent_size=32 * M)
    assert host.vg("small").extent_count == (G - M) // (32 * M)


def test_allocation_fills_one_pv_contiguously_before_the_next(host):
    host.add_lv("vg", "a", 200 * 4 * M)
    host.add_lv("vg", "b", 100 * 4 * M)  # does not fit in vdb's 55 left: one area on vdc
    host.add_lv("vg", "c", 100 * 4 * M)  # 55 on vdb + 45 on vdc? no: vdc has 155 free
    assert [s["devices"] for s in segs_of(host, "vg", "a")] == ["/dev/vdb(0)"]
    assert [s["devices"] for s in segs_of(host, "vg", "b")] == ["/dev/vdc(0)"]
    assert [s["devices"] for s in segs_of(host, "vg", "c")] == ["/dev/vdc(100)"]
    host.add_lv("vg", "d", 100 * 4 * M)  # no single area is big enough: split in PV order
    assert [(s["devices"], s["seg_start_pe"], s["seg_size_pe"])
            for s in segs_of(host, "vg", "d")] == [("/dev/vdb(200)", "0", "55"),
                                                  ("/dev/vdc(200)", "55", "45")]


def test_allocation_honours_pv_list_and_rounds_up(host):
    host.add_lv("vg", "a", 1, pvs=["/dev/vdc"])
    segs = segs_of(host, "vg", "a")
    assert segs == [{**segs[0], "seg_size_pe": "1", "devices": "/dev/vdc(0)"}]


def test_impossible_allocation_raises_value_error(host):
    with pytest.raises(ValueError, match="510 extents needed, but only 255 available"):
        host.add_lv("vg", "big", 510 * 4 * M, pvs=["/dev/vdb"])
    with pytest.raises(ValueError):
        host.add_lv("vg", "huge", 3 * G)
    with pytest.raises(ValueError):
        host.add_lv("nope", "x", G)
    host.add_lv("vg", "x", M)
    with pytest.raises(ValueError):
        host.add_lv("vg", "x", M)
    assert host.vg("vg").free_count == 2 * EXTENTS_PER_GIB - 1


def test_clock_is_virtual():
    clock = SimClock()
    seen = []
    clock.on_advance(lambda a, b: seen.append((a, b)))
    clock.sleep(3600)
    clock.advance(0.5)
    assert clock.now() == 3600.5 and seen == [(0.0, 3600.0), (3600.0, 3600.5)]
    with pytest.raises(ValueError):
        clock.advance(-1)
    h = SimulatedHost(clock=clock)
    assert h.clock is clock


def test_layout_pins_extents_per_pv(host):
    host.add_lv("vg", "a", 30 * 4 * M, layout=[("/dev/vdc", 10), ("/dev/vdb", 20)])
    assert [(s["devices"], s["seg_size_pe"]) for s in segs_of(host, "vg", "a")] == [
        ("/dev/vdc(0)", "10"), ("/dev/vdb(0)", "20")]
    with pytest.raises(ValueError):
        host.add_lv("vg", "b", 30 * 4 * M, layout=[("/dev/vdc", 10)])
    with pytest.raises(ValueError):
        host.add_lv("vg", "b", 300 * 4 * M, layout=[("/dev/vdc", 300)])


def test_lv_pvs_follow_sub_lvs(host):
    from simtools import run
    host.add_lv("vg", "a", 10 * 4 * M, pvs=["/dev/vdb"])
    run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg/a", "/dev/vdc")
    assert [pv.name for pv in host.lv("vg", "a").pvs()] == ["/dev/vdb", "/dev/vdc"]


def test_kernel_files(host):
    from reconciler.errors import UnsupportedCommand
    assert host.read("/proc/mdstat") is None  # md not loaded yet (tests/md covers md)
    with pytest.raises(UnsupportedCommand):
        host.read("/sys/block/vdb/size")
    with pytest.raises(UnsupportedCommand):
        host.read("/proc/mdstat", host="other")
