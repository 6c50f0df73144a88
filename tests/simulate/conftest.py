"""The small host most simulator tests start from."""

from __future__ import annotations

import pytest
from simtools import GiB

from reconciler.simulate import SimulatedHost


@pytest.fixture
def host() -> SimulatedHost:
    """Three 1 GiB virtio disks, vdb and vdc in VG vg, vdd unused; vdb has a by-id alias."""
    h = SimulatedHost()
    h.add_device("/dev/vdb", GiB, aliases=("/dev/disk/by-id/virtio-disk1",))
    h.add_device("/dev/vdc", GiB)
    h.add_device("/dev/vdd", GiB)
    h.add_vg("vg", ["/dev/vdb", "/dev/vdc"])
    return h
