"""The embedded demo host of the README, modelled on field report 000.

Two SAN LUNs in ``vgglobal`` (lvrepnb on lun30, mygfs on lun02), a full ``vgarc`` on
lun00, and a spare unused LUN (lun31), so a spec can ask to move lvrepnb off lun30 and
drop lun30 from the VG.
"""

from __future__ import annotations

from .host import SimulatedHost
from .model import GiB

_WWID = {"lun00": "36001405a1b2c3d4e5f60000000000000", "lun02": "36001405a1b2c3d4e5f60000000000002",
         "lun30": "36001405a1b2c3d4e5f60000000000030", "lun31": "36001405a1b2c3d4e5f60000000000031"}


def _lun(host: SimulatedHost, name: str, size: int) -> str:
    path = f"/dev/mapper/{name}"
    host.add_device(path, size, aliases=(f"/dev/disk/by-id/dm-name-{name}",
                                         f"/dev/disk/by-id/dm-uuid-mpath-{_WWID[name]}"))
    return path


def default_host() -> SimulatedHost:
    host = SimulatedHost(seed="demo")
    lun00 = _lun(host, "lun00", 1075 * GiB)
    lun02 = _lun(host, "lun02", 850 * GiB)
    lun30 = _lun(host, "lun30", 150 * GiB)
    _lun(host, "lun31", 200 * GiB)
    host.add_vg("vgglobal", [lun02, lun30])
    host.add_lv("vgglobal", "lvrepnb", 128 * GiB, pvs=[lun30])
    host.add_lv("vgglobal", "mygfs", 324 * GiB, pvs=[lun02])
    host.add_vg("vgarc", [lun00])
    arc = host.vg("vgarc")
    host.add_lv("vgarc", "lvarc", arc.free_count * arc.extent_size)
    return host
