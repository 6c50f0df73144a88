"""The small simulated hosts most tests start from: fixture ``host`` (registered in
tests/conftest.py), ``disks_host()`` and the mirror-then-split start (``mirror_host()``,
``mirror_spec()``)."""

from __future__ import annotations

import pytest
from support import G, M
from support.specs import local_vg

from reconciler.simulate import SimulatedHost


@pytest.fixture
def host() -> SimulatedHost:
    """Three 1 GiB virtio disks, vdb and vdc in VG vg, vdd unused; vdb has a by-id alias."""
    h = SimulatedHost()
    h.add_device("/dev/vdb", G, aliases=("/dev/disk/by-id/virtio-disk1",))
    h.add_device("/dev/vdc", G)
    h.add_device("/dev/vdd", G)
    h.add_vg("vg", ["/dev/vdb", "/dev/vdc"])
    return h


def disks_host(size: int, *disks: str, vg: str | None = None, **host_kw) -> SimulatedHost:
    """A simulated host (``SimulatedHost(**host_kw)``) with ``disks`` of ``size`` bytes each,
    all of them PVs of VG ``vg`` when it is named."""
    h = SimulatedHost(**host_kw)
    for d in disks:
        h.add_device(d, size)
    if vg is not None:
        h.add_vg(vg, list(disks))
    return h


def mirror_host(rate: int = 1 * M, size: int = 64 * M, fill: str | None = None) -> SimulatedHost:
    """Where a mirror-then-split starts: two 512 MiB disks in VG vg0, LV data (``size``) on
    /dev/vdb, copied at ``rate`` bytes/s; its content ``fill``ed when named."""
    h = disks_host(512 * M, "/dev/vdb", "/dev/vdc", vg="vg0", rate_bytes_per_s=rate)
    h.add_lv("vg0", "data", size, pvs=["/dev/vdb"])
    if fill is not None:
        h.fill("/dev/vg0/data", fill)
    return h


def mirror_spec(size: str = "64M", placement: tuple[str, ...] | None = ("/dev/vdc",),
                pvs: tuple[str, ...] = ("/dev/vdb", "/dev/vdc")) -> dict:
    """``mirror_host``'s spec: VG vg0 over ``pvs``, data (``size``) placed on ``placement``
    (None: no placement), moved by mirror-then-split."""
    data: dict = {"size": size}
    if placement is not None:
        data["placement"] = list(placement)
    data["move"] = "mirror-then-split"
    return local_vg("vg0", pvs, lv={"data": data})
