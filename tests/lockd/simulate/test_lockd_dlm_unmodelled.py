"""The lockd simulator models sanlock only (issue 20): a DLM VG's pass fails loudly on the
first thing it would need of corosync/DLM (corosync's quorum), never planned on a guess."""

from __future__ import annotations

import pytest
from support.lockd_sim import data, nodes, shared_vg

from reconciler.errors import UnsupportedCommand


def test_a_dlm_vg_on_the_lockd_simulator_fails_loudly(tmp_path):
    n = nodes(tmp_path)
    doc = shared_vg(data(node_a="exclusive", all="inactive"))
    doc["vg"]["vgs"]["lock_type"] = "dlm"
    with pytest.raises(UnsupportedCommand, match="corosync-quorumtool"):
        n.one_pass("node-a", n.spec(doc))
