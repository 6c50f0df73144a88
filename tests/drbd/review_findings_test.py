"""Review of issue 17's merges: failing demonstrations of findings not fixed on this branch.

Not collected by default (no test_ prefix): run with
    PYTHONPATH=$PWD python3 -m pytest -q tests/drbd/review_findings_test.py
"""

from __future__ import annotations

import pytest
from drbdsim import Pair

from reconciler import controller


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def blocked(r) -> str:
    return "\n".join(b.reason for b in r.final.blocked)


def test_diskless_replacement_refused_once_is_not_a_dead_end(pair):
    """A replacement disk whose create-md is refused once (a process had it open) must be
    taken up again once the process is gone; the resource file already names it."""
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.fail_disk("node-b", "/dev/vdb")
    replaced = pair.spec(disk_b="/dev/vdc")
    pair.hosts["node-b"].open_device("/dev/vdc", 4242, "dd")
    out = pair.rounds(replaced, 1)
    assert out["node-b"].exit_code == controller.EXIT_ERROR
    pair.hosts["node-b"].close_device("/dev/vdc", 4242)
    out = pair.converge(replaced)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), \
        [str(r.final) for r in out.values()]
    assert pair.res("node-b").disk == "UpToDate" and pair.res("node-b").disk_path == "/dev/vdc"
