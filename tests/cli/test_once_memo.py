"""``reconcile --once`` down the real host's path keeps its last no-op pass beside its lock
(``noop_memo``): run again on the same host, it says the same and runs the same commands,
from the saved plan; ``--fresh`` plans from scratch; ``--simulate`` and ``--out`` never use it."""

from __future__ import annotations

import json
import os

import pytest
from support import M
from support.nodes import Nodes
from support.specs import write

from reconciler import cli, controller, noop_memo, planning, runner
from reconciler.simulate import SimulatedHost

SPEC = {"vg": {"vg0": {"nodes": ["node-1"], "pvs": ["/dev/vdb"], "lv": {"data": {"size": "8M"}}}}}


@pytest.fixture
def host(tmp_path, monkeypatch):
    host = SimulatedHost()
    host.add_device("/dev/vdb", 64 * M)
    (tmp_path / "first").mkdir()
    n = Nodes.of_hosts(tmp_path / "first", {"node-1": host})
    assert n.one_pass("node-1", n.spec(SPEC)).exit_code == 0
    monkeypatch.setattr(runner, "SubprocessRunner", lambda **_: host)
    real = controller.Environment
    monkeypatch.setattr(controller, "Environment", lambda **kw: real(
        **kw, resolve=host.resolve_device, clock=host.clock))
    return host


def _once(tmp_path, host, capsys, *extra):
    spec = write(SPEC, tmp_path)
    before = len(host.calls)
    # (one lock file per call: this process keeps each it took; the memo is beside them)
    code = cli.main(["--once", "--spec", str(spec), "--node", "node-1", "--output", "json",
                     "--lock-file", str(tmp_path / "run" / f"lock{before}"), *extra])
    out = capsys.readouterr()
    assert out.out, (code, out.err[-2000:])
    doc = json.loads(out.out)
    doc.pop("duration_s")
    return code, doc, [c.argv for c in host.calls[before:]]


def test_a_second_once_says_the_same_from_the_saved_pass(tmp_path, host, capsys, monkeypatch):
    (tmp_path / "run").mkdir(mode=0o700)
    planned = []
    plan = planning.plan
    monkeypatch.setattr(planning, "plan", lambda *a, **kw: planned.append(1) or plan(*a, **kw))
    first = _once(tmp_path, host, capsys)
    memo = tmp_path / "run" / noop_memo.FILE_NAME
    assert first[0] == 0 and memo.exists() and len(planned) == 1
    second = _once(tmp_path, host, capsys)
    assert second == first and len(planned) == 1
    # --fresh plans from scratch and replaces the saved pass (here one that does not load)
    # with its own, which the next --once uses
    memo.write_bytes(b"not a saved pass")
    fresh = _once(tmp_path, host, capsys, "--fresh")
    assert fresh == first and len(planned) == 2
    assert _once(tmp_path, host, capsys) == first and len(planned) == 2
    os.unlink(memo)
    _once(tmp_path, host, capsys, "--dry-run")  # a dry run (audit) saves and uses it too
    assert memo.exists() and len(planned) == 3


def test_simulate_out_and_wait_never_use_it():
    import argparse
    base = dict(simulate=None, out=None, wait=False, lock_file=None)
    assert cli._memo_path(argparse.Namespace(**base)) == "/run/reconciler/once-memo"
    for k, v in (("simulate", "default"), ("out", "plan.json"), ("wait", True)):
        assert cli._memo_path(argparse.Namespace(**{**base, k: v})) is None
