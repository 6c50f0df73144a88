"""Each modelled command: success and failure with lvm's exit codes and messages."""

from __future__ import annotations

import pytest
from support import M, G
from support.simtools import lv_rows, report, run, segs_of

from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost

E = 4 * M  # one extent


def test_lvm_version():
    res = run(SimulatedHost(), "lvm", "version")
    assert res.rc == 0 and res.stdout.startswith("  LVM version:     2.03.16(2)")


def test_pvcreate(host):
    res = run(host, "pvcreate", "--yes", "/dev/vdd")
    assert (res.rc, res.stdout) == (0, '  Physical volume "/dev/vdd" successfully created.\n')
    assert run(host, "pvcreate", "--yes", "/dev/vdx").stderr == "  No device found for /dev/vdx.\n"
    res = run(host, "pvcreate", "--yes", "/dev/vdb")
    assert res.rc == 5 and 'of volume group "vg" without -ff' in res.stderr


def test_vgcreate(host):
    res = run(host, "vgcreate", "data", "/dev/vdd")  # vdd is labelled, as recorded
    assert (res.rc, res.stdout) == (0, '  Physical volume "/dev/vdd" successfully created.\n'
                                       '  Volume group "data" successfully created\n')
    res = run(host, "vgcreate", "data", "/dev/vdd")
    assert (res.rc, res.stderr) == (5, "  A volume group called data already exists.\n")
    run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg")
    res = run(host, "vgcreate", "vg", "/dev/vdd")  # /dev/vg exists once it has an LV
    assert (res.rc, res.stderr) == (3, "  /dev/vg: already exists in filesystem\n"
                                       "  Run `vgcreate --help' for more information.\n")
    res = run(host, "vgcreate", "other", "/dev/vdb")
    assert res.rc == 5
    assert res.stderr == ("  Physical volume '/dev/vdb' is already in volume group 'vg'\n"
                          "  Unable to add physical volume '/dev/vdb' to volume group 'vg'\n"
                          "  /dev/vdb: physical volume not initialized.\n")
    h = SimulatedHost()
    h.add_device("/dev/vdb", G)
    assert run(h, "vgcreate", "--physicalextentsize", f"{16 * M}b", "v", "/dev/vdb").rc == 0
    assert h.vg("v").extent_size == 16 * M


def test_vgextend_and_vgreduce(host):
    res = run(host, "vgextend", "vg", "/dev/vdd")
    assert res.stdout.endswith('  Volume group "vg" successfully extended\n')
    assert len(host.vg("vg").pvs) == 3
    res = run(host, "vgextend", "nope", "/dev/vdd")
    assert (res.rc, res.stderr) == (5, '  Volume group "nope" not found\n'
                                       "  Cannot process volume group nope\n")
    run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg", "/dev/vdd")
    res = run(host, "vgreduce", "vg", "/dev/vdd")
    assert (res.rc, res.stderr) == (5, '  Physical volume "/dev/vdd" still in use\n')
    res = run(host, "vgreduce", "vg", "/dev/vdc")
    assert (res.rc, res.stdout) == (0, '  Removed "/dev/vdc" from volume group "vg"\n')
    assert host.pv("/dev/vdc").vg is None
    run(host, "lvremove", "--yes", "vg/a")
    assert run(host, "vgreduce", "vg", "/dev/vdd").rc == 0
    res = run(host, "vgreduce", "vg", "/dev/disk/by-id/virtio-disk1")
    assert res.rc == 5 and "Can't remove final physical volume \"/dev/vdb\"" in res.stderr


def test_lvcreate(host):
    res = run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{10 * E}b", "vg")
    assert (res.rc, res.stdout, res.stderr) == (0, '  Logical volume "data" created.\n', "")
    res = run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{E}b", "vg")
    assert (res.rc, res.stderr) == (5, '  Logical Volume "data" already exists in volume '
                                       'group "vg"\n')
    res = run(host, "lvcreate", "--yes", "--name", "odd", "--size", f"{E + 1}b", "vg", "/dev/vdc")
    assert (res.rc, res.stderr) == (3, "  Size is not a multiple of 512. Try using 4194304 or "
                                       "4194816.\n  Invalid argument for --size: 4194305b\n"
                                       "  Error during parsing of command line.\n")
    res = run(host, "lvcreate", "--yes", "--name", "odd", "--size", f"{E + 512}b", "vg", "/dev/vdc")
    assert res.stdout == ("  Rounding up size to full physical extent 8.00 MiB\n"
                          '  Logical volume "odd" created.\n')
    assert segs_of(host, "vg", "odd")[0]["devices"] == "/dev/vdc(0)"
    res = run(host, "lvcreate", "--yes", "--name", "big", "--size", f"{1000 * E}b", "vg")
    assert (res.rc, res.stderr) == (5, '  Volume group "vg" has insufficient free space '
                                       '(498 extents): 1000 required.\n')
    res = run(host, "lvcreate", "--yes", "--name", "big", "--size", f"{300 * E}b", "vg", "/dev/vdb")
    assert (res.rc, res.stderr) == (5, "  Insufficient free space: 300 extents needed, but "
                                       "only 245 available\n")
    res = run(host, "lvcreate", "--yes", "--name", "x", "--size", f"{E}b", "vg", "/dev/vdd")
    assert res.stderr == '  Physical Volume "/dev/vdd" not found in Volume Group "vg".\n'
    assert run(host, "lvcreate", "--yes", "--name", "pvmove3", "--size", f"{E}b", "vg").rc == 3
    res = run(host, "lvcreate", "--yes", "--name", "x", "--size", f"{E}b", "nope")
    assert (res.rc, res.stderr) == (5, '  Volume group "nope" not found\n'
                                       "  Cannot process volume group nope\n")


def test_lvextend_and_lvreduce(host):
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{25 * E}b", "vg")
    run(host, "lvcreate", "--yes", "--name", "next", "--size", f"{E}b", "vg")
    res = run(host, "lvextend", "--size", f"{50 * E}b", "vg/data")
    assert res.rc == 0
    assert res.stdout == ("  Size of logical volume vg/data changed from 100.00 MiB (25 extents) "
                          "to 200.00 MiB (50 extents).\n"
                          "  Logical volume vg/data successfully resized.\n")
    # not contiguous any more (vg/next follows data): clings to vdb after "next"
    assert [s["devices"] for s in segs_of(host, "vg", "data")] == ["/dev/vdb(0)", "/dev/vdb(26)"]
    res = run(host, "lvextend", "--size", f"{60 * E}b", "vg/data", "/dev/vdc")
    assert res.rc == 0 and segs_of(host, "vg", "data")[-1]["devices"] == "/dev/vdc(0)"
    res = run(host, "lvextend", "--size", f"{60 * E}b", "vg/data")
    assert (res.rc, res.stderr) == (5, "  New size (60 extents) matches existing size "
                                       "(60 extents).\n")
    res = run(host, "lvextend", "--size", f"{10 * E}b", "vg/data")
    assert (res.rc, res.stderr) == (5, "  New size given (10 extents) not larger than existing "
                                       "size (60 extents)\n")
    res = run(host, "lvextend", "--size", f"{1000 * E}b", "vg/data")
    assert (res.rc, res.stderr) == (5, "  Insufficient free space: 940 extents needed, but only "
                                       "449 available\n")
    res = run(host, "lvreduce", "--yes", "--size", f"{20 * E}b", "vg/data")
    assert res.rc == 0
    assert res.stderr == ("  WARNING: Reducing active logical volume to 80.00 MiB.\n"
                          "  THIS MAY DESTROY YOUR DATA (filesystem etc.)\n")
    assert "changed from 240.00 MiB (60 extents) to 80.00 MiB (20 extents)." in res.stdout
    assert [s["devices"] for s in segs_of(host, "vg", "data")] == ["/dev/vdb(0)"]
    assert host.pv("/dev/vdc").alloc_count == 0
    res = run(host, "lvreduce", "--yes", "--size", f"{30 * E}b", "vg/data")
    assert (res.rc, res.stderr) == (5, "  New size given (30 extents) not less than existing "
                                       "size (20 extents)\n")
    res = run(host, "lvextend", "--size", f"{E}b", "vg/missing")
    assert (res.rc, res.stderr) == (5, '  Failed to find logical volume "vg/missing"\n')


def test_lvremove(host):
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{E}b", "vg")
    res = run(host, "lvremove", "--yes", "vg/data")
    assert (res.rc, res.stdout) == (0, '  Logical volume "data" successfully removed.\n')
    assert report(host)[0]["lv"] == [] and host.vg("vg").free_count == 510
    res = run(host, "lvremove", "--yes", "vg/data")
    assert (res.rc, res.stderr) == (5, '  Failed to find logical volume "vg/data"\n')


@pytest.mark.parametrize("argv", [
    ("lvs",),
    ("lvm", "lvs"),
    ("lvcreate", "--name", "x", "--size", "4194304b", "vg"),  # no --yes: lvm would prompt
    ("lvcreate", "--yes", "--name", "x", "--size", "4G", "vg"),
    ("lvcreate", "--yes", "-n", "x", "--size", "4194304b", "vg"),
    ("lvcreate", "--yes", "--name", "x", "--size", "4194304b", "--type", "raid1", "vg"),
    ("lvremove", "-f", "vg/x"),
    ("lvremove", "--yes", "/dev/vg/x"),
    ("pvmove", "/dev/vdb"),  # foreground pvmove is not modelled
    ("pvmove", "--background", "--atomic", "/dev/vdb"),
    ("lvconvert", "--yes", "--mirrors", "+1", "vg/x"),  # relative counts are not modelled
    ("lvconvert", "--yes", "--splitmirrors", "2", "--name", "y", "vg/x"),
    ("lvconvert", "--yes", "--splitmirrors", "1", "--trackchanges", "vg/x"),
    ("lvchange", "-aey", "vg/x"),
    ("vgsplit", "--name", "x", "vg", "vg2"),
    ("vgexport", "-a"),
    ("pvresize", "--setphysicalvolumesize", "1G", "/dev/vdb"),
    ("lvextend", "--resizefs", "--size", "4G", "vg/x"),
    ("lvconvert", "--yes", "--type", "mirror", "--mirrors", "1", "vg/x"),
    ("lvm", "fullreport", "--reportformat", "json"),
    ("lvm", "version", "--verbose"),
    ("vgreduce", "--removemissing", "vg"),
])
def test_unmodelled_commands_and_flags_raise(host, argv):
    calls = len(host.calls)
    with pytest.raises(UnsupportedCommand):
        run(host, *argv)
    assert len(host.calls) <= calls + 1


def test_command_for_another_host_is_refused(host):
    with pytest.raises(UnsupportedCommand):
        host.run(Command(argv=("lvm", "version"), host="node-b"))


def test_raid_and_hidden_lv_operations_outside_the_model_raise(host):
    run(host, "lvcreate", "--yes", "--name", "m", "--size", f"{E}b", "vg", "/dev/vdb")
    run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg/m", "/dev/vdc")
    with pytest.raises(UnsupportedCommand):
        run(host, "lvextend", "--size", f"{2 * E}b", "vg/m")
    with pytest.raises(UnsupportedCommand):
        run(host, "lvremove", "--yes", "vg/m_rimage_0")
    assert set(lv_rows(host, "vg")) == {"m", "m_rimage_0", "m_rimage_1", "m_rmeta_0", "m_rmeta_1"}
