"""Seed 000's host and spec, shared by the scenario modules that start from it."""

from support import M

from reconciler.simulate import SimulatedHost


def seed000_host():
    host = SimulatedHost()
    host.add_device("/dev/sdb", 808 * M, aliases=("/dev/disk/by-id/lun02",))
    host.add_device("/dev/sdc", 140 * M, aliases=("/dev/disk/by-id/lun30",))
    host.add_vg("vgglobal", ["/dev/sdb", "/dev/sdc"])
    host.add_lv("vgglobal", "lvrepnb", 128 * M, pvs=["/dev/sdc"])
    host.add_lv("vgglobal", "mygfs", 324 * M, pvs=["/dev/sdb"])
    return host


SEED000_SPEC = """
[vg.vgglobal]
nodes = ["node-1"]
pvs = ["/dev/disk/by-id/lun02"]

[vg.vgglobal.lv.lvrepnb]
size = "128M"

[vg.vgglobal.lv.mygfs]
size = "324M"
"""
