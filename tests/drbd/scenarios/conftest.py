"""The DRBD scenarios' two simulated nodes (support.drbdsim.Pair), one reconciler each."""

import pytest
from support.drbdsim import Pair


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)
