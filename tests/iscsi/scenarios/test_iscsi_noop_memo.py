"""A node whose spec holds iSCSI never keeps a no-op ``--once`` pass (``noop_memo``): its
observation reads CHAP secrets (the spec's files, LIO's ``auth/`` attributes, node
records), and no digest of a secret is ever kept on disk (the iSCSI adapter keeps them only
as a fingerprint keyed by its own process)."""

from __future__ import annotations

import os

from test_iscsi_simulated import Pair


def test_neither_the_target_nor_the_initiator_saves_a_pass(tmp_path):
    pair = Pair(tmp_path)
    loaded = pair.spec()
    assert pair.converge("a", loaded).exit_code == 0
    assert pair.converge("b", loaded).exit_code == 0
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    for node in ("a", "b"):
        memo = str(run / f"memo-{node}")
        with open(memo, "wb") as f:  # one an older version saved: removed, never read
            f.write(b"an older pass, maybe with a secret's digest")
        p = pair.one_pass(node, loaded, memo=memo)
        assert p.exit_code == 0 and not p.plan.steps
        assert not os.path.exists(memo)
