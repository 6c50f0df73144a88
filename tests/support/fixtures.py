"""The small host most simulator tests start from: fixture ``host`` (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest
from support import G

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
