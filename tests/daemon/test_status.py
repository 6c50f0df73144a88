import json
import os
import re

import pytest

from reconciler import cli, status

from .conftest import IN_SYNC, wait_for, write_spec

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\})? (\S+)$')


def parse_textfile(text: str) -> dict[str, dict[str, float]]:
    """A strict reader of the text exposition format: HELP and TYPE before samples, every
    sample well formed, no series twice."""
    assert text.endswith("\n")
    metrics: dict[str, dict[str, float]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter"), line
            assert name not in typed, f"TYPE twice for {name}"
            typed.add(name)
            metrics[name] = {}
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), (m.group(2) or "{}")[1:-1], m.group(3)
        assert name in typed, f"{name} has no TYPE line before it"
        assert labels not in metrics[name], f"series twice: {line}"
        metrics[name][labels] = float(value)
    return metrics


def one(metrics, name):
    (value,) = metrics[name].values()
    return value


def test_status_json_and_metrics_while_a_pvmove_is_in_flight(start_daemon, spec_dir):
    write_spec(spec_dir / "vgglobal.toml", IN_SYNC.replace(
        'pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]', 'pvs = ["/dev/mapper/lun02"]'))
    r = start_daemon()
    with r.runner.lock:
        r.host.clock.advance(600)  # the pvmove is partly done
    r.daemon.request_pass("test")
    wait_for(lambda: r.daemon.passes >= 3 and r.daemon.sections["in_flight"]
             and r.daemon.sections["in_flight"][0]["eta_s"], timeout=3)
    doc = status.read(r.settings.status_dir)
    assert doc["format"] == 1 and doc["pid"] == os.getpid() and doc["node"] == "node-1"
    assert doc["state"] == status.PENDING
    assert doc["spec"]["digest"] == r.daemon.in_force.digest
    assert doc["spec"]["files"] == [str(spec_dir / "vgglobal.toml")]
    (flight,) = doc["in_flight"]
    assert flight["object"] == "lv vgglobal/lvrepnb" and flight["what"].startswith("pvmove")
    assert 0 < flight["percent"] < 100 and flight["eta_s"] > 0
    assert [d["description"] for d in doc["drift"]] == ["vgreduce /dev/mapper/lun30"]
    assert doc["last_pass"]["processes"] >= 1 and doc["last_pass"]["exit_code"] == 2

    m = parse_textfile(r.settings.metrics_file.read_text())
    assert one(m, "reconciler_in_sync") == 0
    assert one(m, "reconciler_drift_steps") == 1
    assert one(m, "reconciler_in_flight_operations") == 1
    ratio = m["reconciler_in_flight_progress_ratio"]
    (key,) = ratio
    assert 'object="lv vgglobal/lvrepnb"' in key
    assert ratio[key] == pytest.approx(flight["percent"] / 100, abs=0.02)
    assert one(m, "reconciler_last_pass_duration_seconds") >= 0
    assert one(m, "reconciler_last_pass_processes") >= 1
    assert m["reconciler_state"]['node="node-1",state="pending"'] == 1
    assert sum(m["reconciler_state"].values()) == 1

    text = status.render(doc)
    assert "CHANGES PENDING" in text
    assert "lv vgglobal/lvrepnb: pvmove" in text and "ETA" in text and "%" in text
    assert "vgreduce /dev/mapper/lun30" in text


def test_metrics_in_sync(start_daemon):
    r = start_daemon()
    m = parse_textfile(r.settings.metrics_file.read_text())
    assert one(m, "reconciler_in_sync") == 1
    assert one(m, "reconciler_drift_steps") == 0
    assert one(m, "reconciler_spec_valid") == 1
    assert one(m, "reconciler_passes_total") == 1
    assert one(m, "reconciler_last_pass_processes") == 1  # one observation, nothing to do
    assert m["reconciler_in_flight_progress_ratio"] == {}
    assert not list(r.settings.metrics_file.parent.glob(".*tmp"))


def test_label_values_are_escaped():
    doc = {"node": 'a"b\\c\nd', "state": status.IN_SYNC, "in_flight": [
        {"object": 'lv "x"', "what": "pvmove", "percent": 50.0, "eta_s": None}]}
    m = parse_textfile(status.prometheus(doc))
    assert 'node="a\\"b\\\\c\\nd"' in next(iter(m["reconciler_in_sync"]))


def test_write_atomic_replaces_whole_files(tmp_path):
    p = tmp_path / "x.prom"
    status.write_atomic(p, "old\n")
    status.write_atomic(p, "new\n")
    assert p.read_text() == "new\n"
    assert oct(p.stat().st_mode & 0o777) == "0o644"
    assert [f.name for f in tmp_path.iterdir()] == ["x.prom"]


def test_eta_from_progress_so_far():
    from reconciler import actions
    eta = status.EtaTracker()
    f = actions.InFlight(key="k", object="o", what="w", percent=10.0)
    assert eta.update([f], now=100.0) == {"k": None}
    f2 = actions.InFlight(key="k", object="o", what="w", percent=30.0)
    assert eta.update([f2], now=110.0)["k"] == pytest.approx(35.0)
    assert eta.update([], now=120.0) == {}


def _status_cli(capsys, run_dir, *extra):
    code = cli.main(["status", "--status-dir", str(run_dir), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_reconcile_status_command(start_daemon, tmp_path, capsys):
    r = start_daemon()
    code, out, err = _status_cli(capsys, r.settings.status_dir)
    assert code == 0, err
    assert "IN SYNC" in out and "node-1" in out
    assert f"pid {os.getpid()}" in out
    code, out, _ = _status_cli(capsys, r.settings.status_dir, "--output", "json")
    assert json.loads(out)["state"] == status.IN_SYNC
    r.stop()
    code, out, _ = _status_cli(capsys, r.settings.status_dir)
    assert code == 1 and "stopped at" in out
    code, _, err = _status_cli(capsys, tmp_path / "nowhere")
    assert code == 1 and "no status" in err


def test_status_of_a_daemon_that_died_says_so(tmp_path, capsys):
    doc = {"format": 1, "node": "n", "pid": 2**22 + 12345, "state": status.IN_SYNC,
           "spec": {}, "updated_at": 0}
    (tmp_path / "status.json").write_text(json.dumps(doc))
    code, out, _ = _status_cli(capsys, tmp_path)
    assert code == 1
    assert "NOT RUNNING" in out


def test_status_exit_code_follows_the_state(tmp_path, capsys):
    for state, expected in ((status.IN_SYNC, 0), (status.PENDING, 2), (status.BLOCKED, 1),
                            (status.ERROR, 1), (status.NO_SPEC, 1)):
        doc = {"format": 1, "node": "n", "pid": os.getpid(), "state": state, "spec": {},
               "updated_at": 0, "started_at": 0}
        (tmp_path / "status.json").write_text(json.dumps(doc))
        assert _status_cli(capsys, tmp_path)[0] == expected, state


def test_a_wait_on_another_node_is_its_own_state_in_json_metrics_and_text():
    from reconciler import actions, controller

    wait = actions.InFlight(key="vg:vgs:created-elsewhere", object="vg vgs",
                            what="create the shared VG vgs", percent=None, waiting_on="node-a")
    after = actions.Step(actions.StartLockspace(vg="vgs"), "test", frozenset({wait.key}))
    final = actions.Plan(node="node-b", steps=(after,), in_flight=(wait,))
    assert final.only_waiting_on_others
    result = controller.PassResult(final, final, None, controller.EXIT_PENDING, 1, 0.0, 30.0)
    assert status.pass_state(result) == status.WAITING
    assert status.pass_state(result, dry_run=True) == status.DRIFT
    doc = {"format": 1, "node": "node-b", "state": status.pass_state(result), "pid": os.getpid(),
           **status.pass_section(result, number=1, reason="test", started_at=0.0,
                                 finished_at=1.0, etas={})}
    (flight,) = doc["in_flight"]
    assert flight["waiting_on"] == "node-a" and flight["what"] == "create the shared VG vgs"
    m = parse_textfile(status.prometheus(doc))
    assert one(m, "reconciler_in_flight_operations") == 0
    assert m["reconciler_waiting_on_node"] == {
        'node="node-b",object="vg vgs",waiting_on="node-a",what="create the shared VG vgs"': 1}
    assert m["reconciler_state"]['node="node-b",state="waiting"'] == 1
    text = status.render(doc)
    assert text.splitlines()[0].startswith("reconciler on node node-b: WAITING ON ANOTHER NODE; "
                                           "vg vgs waiting on another node: node-a: create the "
                                           "shared VG vgs")
    assert "    vg vgs: waiting on another node: node-a: create the shared VG vgs" in text
    assert status.exit_code(doc) == controller.EXIT_PENDING
    assert controller.exit_meaning(controller.EXIT_PENDING, final) == (
        "waiting on another node: node-a: create the shared VG vgs")
    # an operation of this node in flight too: pending, not only waiting
    sync = actions.InFlight(key="lv:vgs/x:sync", object="lv vgs/x", what="raid1 sync",
                            percent=5.0)
    mixed = actions.Plan(node="node-b", in_flight=(wait, sync))
    assert not mixed.only_waiting_on_others
    assert not actions.Plan(node="node-b", steps=(actions.Step(
        actions.StartLockspace(vg="other"), "test"),), in_flight=(wait,)).only_waiting_on_others
