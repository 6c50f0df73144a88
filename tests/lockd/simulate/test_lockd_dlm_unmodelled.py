"""The lockd simulator models sanlock only (issue 20): a DLM VG's pass fails loudly on the
first thing it would need of corosync/DLM (corosync's quorum), never planned on a guess.

The DLM recordings (tests/fixtures/outputs/dlm) are therefore not compared with the
simulator: the parsers are tested on them (tests/lockd/planning/test_lockd_dlm_quorum.py),
and the facts the README states are checked here, file by file."""

from __future__ import annotations

import re

import pytest
from support import FIXTURES
from support.lockd_sim import data, nodes, shared_vg

from reconciler.errors import UnsupportedCommand

DLM = FIXTURES / "outputs" / "dlm" / "commands"
COMPARES = tuple(f"dlm/commands/{p.name}" for p in sorted(DLM.glob("*.txt")))


def recorded(case: str) -> tuple[int, str, str]:
    text = (DLM / f"{case}.txt").read_text()
    rc = int(re.search(r"^rc: (-?\d+)$", text, re.M).group(1))
    out, err = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)
    return rc, out, err


def test_a_dlm_vg_on_the_lockd_simulator_fails_loudly(tmp_path):
    n = nodes(tmp_path)
    doc = shared_vg(data(node_a="exclusive", all="inactive"))
    doc["vg"]["vgs"]["lock_type"] = "dlm"
    with pytest.raises(UnsupportedCommand, match="corosync-quorumtool"):
        n.one_pass("node-a", n.spec(doc))


def test_the_dlm_recordings_say_what_the_readme_says():
    seen = set()

    def rec(case):
        seen.add(f"dlm/commands/{case}.txt")
        return recorded(case)

    rc, out, _ = rec("vgcreate_shared_dlm_a")
    assert rc == 0 and "VG vgd starting dlm lockspace" in out
    rc, out, _ = rec("lock_start_b")
    assert rc == 0 and "VG vgd starting dlm lockspace" in out
    assert rec("lvcreate_a")[0] == 0 and rec("lvchange_aey_a")[0] == 0
    rc, _, err = rec("lvchange_aey_held_b")
    assert rc == 5 and "LV locked by other host: vgd/lv1" in err
    for node in ("a", "b"):  # the DLM's own view: both nodes members of the VG's lockspace
        rc, out, _ = rec(f"dlm_tool_ls_{node}")
        assert rc == 0 and re.search(r"name\s+lvm_vgd\n(?:.*\n)*?members\s+1 2 \n", out), out
        rc, out, _ = rec(f"lockctl_info_{node}")
        assert rc == 0 and "LS dlm lvm_vgd" in out
    assert rec("dlm_tool_ls_no_dlm_controld_b")[0] == 1
    rc, out, _ = rec("lockctl_info_no_dlm_controld_b")
    assert "LS dlm REM:lvm_vgd" in out
    rc, _, err = rec("lock_start_no_dlm_controld_b")
    assert rc == 5 and "Start a lock manager, lvmlockd did not find one running." in err
    assert "lock manager dlm is not running" in err
    rc, out, _ = rec("dlm_tool_status_a")
    assert rc == 0 and "quorate 1" in out and "fence_pid 0" in out
    for case in ("quorumtool_quorate_a", "quorumtool_alone_a", "quorumtool_no_corosync_a"):
        rc, out, err = rec(case)
    assert (rc, err.strip()) == (1, "Cannot initialize CMAP service")
    assert seen == set(COMPARES)
