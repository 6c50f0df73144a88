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

import reconciler
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


def _text_once(tmp_path, host, capsys, spec, *extra, lock=None):
    before = len(host.calls)
    code = cli.main(["--once", "--spec", str(spec), "--lock-file",
                     str(lock or tmp_path / "run" / f"lock{before}"), *extra])
    return code, capsys.readouterr(), host.calls[before:]


def test_its_warnings_and_node_are_the_first_passs(tmp_path, host, capsys, monkeypatch):
    """A spec that names only other nodes: the host's own name (no --node) gets a warning
    and exit 0, every time, the saved pass's too; the same name given with --node is an
    error (a typo must not read as in sync), saved pass or not: the key tells them apart."""
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setattr(cli.socket, "gethostname", lambda: "node-9")
    planned = []
    plan = planning.plan
    monkeypatch.setattr(planning, "plan", lambda *a, **kw: planned.append(1) or plan(*a, **kw))
    spec = write(SPEC, tmp_path)
    first = _text_once(tmp_path, host, capsys, spec)
    assert first[0] == 0 and "warning: nothing in the spec applies to node node-9" in first[1].out
    assert (tmp_path / "run" / noop_memo.FILE_NAME).exists() and len(planned) == 1
    again = _text_once(tmp_path, host, capsys, spec)
    assert again[0] == 0 and again[1].out == first[1].out  # the saved pass, its warning too
    assert "WARNING" in again[1].err and "nothing in the spec applies" in again[1].err
    assert len(planned) == 1
    named = _text_once(tmp_path, host, capsys, spec, "--node", "node-9")
    assert named[0] == 1 and "--node node-9: the spec never names node node-9" in named[1].err
    assert not named[2] and len(planned) == 1  # refused before any command


def test_a_saved_pass_is_not_used_beside_another_reconciler(tmp_path, host, capsys):
    """The lock is taken before the host is asked, as for any pass that may change it."""
    from reconciler import instance_lock
    (tmp_path / "run").mkdir(mode=0o700)
    spec = write(SPEC, tmp_path)
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0
    held = tmp_path / "run" / "held"
    instance_lock.InstanceLock(held).acquire()
    code, out, ran = _text_once(tmp_path, host, capsys, spec, "--node", "node-1", lock=held)
    assert code == 1 and "another reconciler is already running" in out.err and not ran


def test_a_miss_after_the_saved_pass_was_tried_asks_nothing_twice(tmp_path, host, capsys,
                                                                    monkeypatch):
    """The host changed since the saved pass (an LV made by hand): its first read differs,
    the spec is parsed and the pass observes and plans with what that try read, each
    command run once, all of them counted."""
    (tmp_path / "run").mkdir(mode=0o700)
    first = _once(tmp_path, host, capsys)
    host.run(runner.Command(argv=("lvcreate", "--yes", "--size", f"{4 * M}b", "--name", "byhand", "vg0")))
    tried = []
    real = controller.saved_pass
    monkeypatch.setattr(controller, "saved_pass", lambda *a, **kw: tried.append(1) or real(
        *a, **kw))
    code, doc, ran = _once(tmp_path, host, capsys)
    assert tried and code == 0 and doc["plan"] != first[1]["plan"]
    assert "byhand" in json.dumps(doc["plan"])  # (an LV the spec does not declare)
    assert len(ran) == len(set(map(tuple, ran))) == doc["processes"] == len(first[2])


def test_an_empty_node_is_an_error_saved_pass_or_not(tmp_path, host, capsys, monkeypatch):
    """``--node "$NODE"`` with the variable empty: the pass's node would be the host's name,
    but the empty name is refused, as it is without a saved pass (the key holds --node as
    given)."""
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setattr(cli.socket, "gethostname", lambda: "node-1")
    spec = write(SPEC, tmp_path)
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0
    assert _text_once(tmp_path, host, capsys, spec)[0] == 0  # (a saved pass of its own)
    code, out, ran = _text_once(tmp_path, host, capsys, spec, "--node", "")
    assert code == 1 and "the spec never names node" in out.err and not ran


def test_a_saved_read_that_cannot_be_asked_is_a_miss_with_what_was_read(
        tmp_path, host, capsys, monkeypatch):
    """A damaged saved pass (here: a read that cannot even be unpacked, after the first) is
    a miss: the pass goes on from the answers already read, each command run once, counted."""
    (tmp_path / "run").mkdir(mode=0o700)
    first = _once(tmp_path, host, capsys)
    real = noop_memo.load

    def damaged(path, want):
        saved, why = real(path, want)
        if saved is not None:
            saved = noop_memo.Saved(saved.format, saved.key,
                                    (saved.reads[0], ("run",), *saved.reads[1:]),
                                    saved.plan, saved.notes)
        return saved, why
    monkeypatch.setattr(noop_memo, "load", damaged)
    code, doc, ran = _once(tmp_path, host, capsys)
    assert code == 0 and doc == first[1] and ran == first[2]
    assert len(ran) == len(set(map(tuple, ran))) == doc["processes"]


def test_a_spec_made_writable_by_others_is_refused_though_a_pass_is_saved(tmp_path, host,
                                                                        capsys):
    (tmp_path / "run").mkdir(mode=0o700)
    spec = write(SPEC, tmp_path)
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0
    os.chmod(spec, 0o666)
    code, out, ran = _text_once(tmp_path, host, capsys, spec, "--node", "node-1")
    assert code == 1 and "spec refused (permissions)" in out.err and not ran


def test_another_nodes_target_keys_the_same_before_and_after_parsing(tmp_path, host, capsys,
                                                                     monkeypatch):
    """A spec that declares a target for another node: this node's pass never observes
    iSCSI and may be saved; the LIO applier's state (looked up only after parsing, for a
    spec with a target) is not in the key, so the saved pass is used before parsing, on a
    host without rtslib-fb too."""
    from reconciler.adapters import iscsi
    monkeypatch.setattr(iscsi, "applier_problem", lambda *a: "rtslib-fb is not installed")
    (tmp_path / "run").mkdir(mode=0o700)
    spec = write({**SPEC, "iscsi_target": {"gw": {
        "nodes": ["node-2"], "iqn": "iqn.2003-01.org.example.b:gw", "portals": ["10.0.0.2:3260"],
        "acls": ["iqn.2004-10.com.example:c"], "lun": {"0": {"device": "/dev/vdq"}}}}}, tmp_path)
    first = _text_once(tmp_path, host, capsys, spec, "--node", "node-1")
    assert first[0] == 0 and (tmp_path / "run" / noop_memo.FILE_NAME).exists()
    planned = []
    plan = planning.plan
    monkeypatch.setattr(planning, "plan", lambda *a, **kw: planned.append(1) or plan(*a, **kw))
    parsed = []
    monkeypatch.setattr(cli, "_load_spec", lambda *a, **kw: parsed.append(1))
    again = _text_once(tmp_path, host, capsys, spec, "--node", "node-1")
    assert again[0] == 0 and again[1].out == first[1].out and not parsed and not planned


def test_a_spec_edited_to_be_invalid_is_refused_though_a_pass_is_saved(tmp_path, host,
                                                                     capsys):
    (tmp_path / "run").mkdir(mode=0o700)
    spec = write(SPEC, tmp_path)
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0
    spec.write_text(spec.read_text().replace('size = "8M"', 'size = "eight"'))
    code, out, ran = _text_once(tmp_path, host, capsys, spec, "--node", "node-1")
    assert code == 1 and "invalid spec" in out.err and not ran


def test_a_blocked_saved_pass_says_the_same_in_every_output(tmp_path, host, capsys,
                                                            monkeypatch):
    """A plan that is blocked (a VG whose PV is not there) with nothing to do is saved and
    used: exit 1 with the reason, in text and JSON, with --detailed-exitcodes too."""
    (tmp_path / "run").mkdir(mode=0o700)
    planned = []
    plan = planning.plan
    monkeypatch.setattr(planning, "plan", lambda *a, **kw: planned.append(1) or plan(*a, **kw))
    spec = write({"vg": {**SPEC["vg"], "vg9": {"nodes": ["node-1"], "pvs": ["/dev/vdz"]}}},
                 tmp_path)
    for extra in ((), ("--output", "json"), ("--detailed-exitcodes",)):
        first = _text_once(tmp_path, host, capsys, spec, "--node", "node-1", *extra)
        again = _text_once(tmp_path, host, capsys, spec, "--node", "node-1", *extra)
        assert first[0] == again[0] == 1 and "/dev/vdz" in first[1].out
        strip = (lambda t: "\n".join(line for line in t.splitlines() if "duration_s" not in line))
        assert strip(again[1].out) == strip(first[1].out)
        assert [c.argv for c in again[2]] == [c.argv for c in first[2]]
    assert len(planned) == 1  # the first pass planned; the five after it used its plan


def test_the_same_bytes_elsewhere_use_it_and_their_own_permissions_are_checked(
        tmp_path, host, capsys, monkeypatch):
    (tmp_path / "run").mkdir(mode=0o700)
    spec = write(SPEC, tmp_path)
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0
    parsed = []
    real = cli._load_spec
    monkeypatch.setattr(cli, "_load_spec", lambda *a, **kw: parsed.append(1) or real(*a, **kw))
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / spec.name
    copy.write_bytes(spec.read_bytes())
    assert _text_once(tmp_path, host, capsys, copy, "--node", "node-1")[0] == 0 and not parsed
    os.chmod(tmp_path / "copy", 0o777)
    code, out, ran = _text_once(tmp_path, host, capsys, copy, "--node", "node-1")
    assert code == 1 and "spec refused (permissions)" in out.err and not ran


def test_a_dependency_changed_since_the_pass_was_saved_parses_again(tmp_path, host, capsys,
                                                                   monkeypatch):
    """pydantic upgraded between two --once: the key differs, the spec is parsed."""
    (tmp_path / "run").mkdir(mode=0o700)
    spec = write(SPEC, tmp_path)
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0
    deps = [(name, (found[0], [(d, (0, 0, 0, 0)) for d, _ in found[1]])
             if name == "pydantic" else found) for name, found in noop_memo.DEPENDENCIES_AT_START]
    monkeypatch.setattr(noop_memo, "IMPORTED", noop_memo.code_identity(
        reconciler.FILES_AT_START, deps))
    parsed = []
    real = cli._load_spec
    monkeypatch.setattr(cli, "_load_spec", lambda *a, **kw: parsed.append(1) or real(*a, **kw))
    assert _text_once(tmp_path, host, capsys, spec, "--node", "node-1")[0] == 0 and parsed
