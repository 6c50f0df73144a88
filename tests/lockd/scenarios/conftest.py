"""The lockd scenarios' cluster (``c``: two nodes, one simulated lvmlockd) and its nodes
under the one harness (``n``), from support.lockd_sim."""

import pytest
from support.lockd_sim import cluster, nodes


@pytest.fixture
def c():
    return cluster()


@pytest.fixture
def n(tmp_path, c):
    return nodes(tmp_path, c)
