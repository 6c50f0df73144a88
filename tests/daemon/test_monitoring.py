"""Monitoring that ships (issue 19): the alert rules and the dashboard under monitoring/, and
the metrics they need, read from textfiles the daemon writes on simulated hosts."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support import M
from support.drbdsim import Pair
from support.monitoring import RULES, missing_names, named_metrics, parsed

from reconciler import status
from reconciler.simulate import SimulatedHost

from .conftest import IN_SYNC, wait_for, write_spec


def value(metrics, name, **labels) -> float:
    want = {k: v for k, v in labels.items()}
    found = [v for ls, v in metrics[name].items() if want.items() <= dict(ls).items()]
    assert len(found) == 1, (name, labels, metrics[name])
    return found[0]


def textfile(r, node: str = "node-1") -> str:
    """What the daemon writes after the pass ``r`` (status.pass_section, status.prometheus)."""
    doc = {"node": node, "state": status.pass_state(r.result), "resync_interval_s": 300.0,
           **status.pass_section(r.result, number=1, reason="test", started_at=0.0,
                                 finished_at=1.0, etas={})}
    return status.prometheus(doc)


# -- the textfile and the names ------------------------------------------------------------------


def test_the_textfile_parses_with_prometheus_client_while_a_pvmove_is_in_flight(
        start_daemon, spec_dir):
    write_spec(spec_dir / "vgglobal.toml", IN_SYNC.replace(
        'pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]', 'pvs = ["/dev/mapper/lun02"]'))
    r = start_daemon()
    with r.runner.lock:
        r.host.clock.advance(600)
    r.daemon.request_pass("test")
    wait_for(lambda: r.daemon.passes >= 3 and r.daemon.sections["in_flight"], timeout=3)
    fams = list(text_string_to_metric_families(r.settings.metrics_file.read_text()))
    assert len(fams) >= 23 and all(f.documentation and f.type in ("gauge", "counter")
                                   for f in fams)
    assert all(s.labels["node"] == "node-1" for f in fams for s in f.samples)
    m = parsed(r.settings.metrics_file.read_text())
    assert 0 < value(m, "reconciler_in_flight_progress_ratio", object="lv vgglobal/lvrepnb") < 1
    assert value(m, "reconciler_in_flight_operations") == 1
    assert value(m, "reconciler_stalled_operations") == 0


def test_every_metric_the_rules_and_the_dashboard_name_is_in_the_textfile(start_daemon):
    names = named_metrics()
    assert {"reconciler_split_brain", "reconciler_degraded", "reconciler_stalled_operations",
            "reconciler_spec_valid", "reconciler_blocked",
            "reconciler_last_pass_timestamp_seconds",
            "reconciler_resync_interval_seconds"} <= names
    r = start_daemon()  # in sync: nothing in flight, blocked or degraded
    assert missing_names(r.settings.metrics_file.read_text()) == []


def test_before_the_first_pass_every_name_is_there_without_a_sample():
    text = status.prometheus({"node": "n", "state": status.STARTING, "started_at": 5.0})
    m = parsed(text)
    assert sorted(named_metrics() - set(m)) == []
    assert m["reconciler_last_pass_timestamp_seconds"] == {}


def test_last_pass_timestamp_and_resync_interval(start_daemon):
    r = start_daemon()
    m = parsed(r.settings.metrics_file.read_text())
    doc = status.read(r.settings.status_dir)
    assert value(m, "reconciler_last_pass_timestamp_seconds") == doc["last_pass"]["finished_at"]
    assert value(m, "reconciler_resync_interval_seconds") == 60
    assert value(m, "reconciler_start_time_seconds") <= doc["last_pass"]["finished_at"]


# -- promtool ------------------------------------------------------------------------------------


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is needed (Debian package prometheus; tests/lab/setup.sh installs it)"
    return found


@pytest.mark.real_process
def test_the_alert_rules_pass_promtool_check_rules():
    res = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                         text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0 and "SUCCESS: 8 rules found" in res.stdout, res


def fired(tmp_path: Path, text: str, at: list[str], alerts: dict[str, list[str]]) -> None:
    """``promtool test rules``: the samples of the textfile ``text``, held constant for an
    hour, make exactly the alerts ``alerts[t]`` fire at each eval time ``t`` (and no other
    alert of the rules). The rules are used without their annotations (templated text,
    checked by ``check rules``), so that only which alerts fire, and their labels, count."""
    doc = yaml.safe_load(RULES.read_text())
    for g in doc["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc))
    names = [r["alert"] for g in doc["groups"] for r in g["rules"]]
    series = [{"series": s.name + "{" + ",".join(f'{k}="{v}"' for k, v in
                                                  sorted(s.labels.items())) + "}",
               "values": f"{s.value}x60"}
              for fam in text_string_to_metric_families(text) for s in fam.samples]
    sev = {r["alert"]: r["labels"]["severity"] for g in doc["groups"] for r in g["rules"]}
    node = series[0]["series"].split('node="')[1].split('"')[0]
    tests = [{"eval_time": t, "alertname": a,
              "exp_alerts": [{"exp_labels": {"node": node, "severity": sev[a]}}]
              if a in alerts.get(t, []) else []}
             for t in at for a in names]
    (tmp_path / "t.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}]}))
    res = subprocess.run([promtool(), "test", "rules", str(tmp_path / "t.yml")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stdout + res.stderr


def _doc(r, node: str, **extra) -> str:
    return status.prometheus({"node": node, "state": status.pass_state(r.result),
                              "resync_interval_s": 300.0, "started_at": 0.0,
                              **status.pass_section(r.result, number=1, reason="t",
                                                    started_at=0.0, finished_at=60.0,
                                                    etas={}), **extra})


@pytest.mark.real_process
def test_the_alerts_fire_on_textfiles_of_no_pass_and_a_lost_disk(tmp_path):
    pair = Pair(tmp_path)
    loaded = pair.spec()
    out = pair.converge(loaded)
    # in sync: silence, until no pass came for 3 resync intervals (the last ended at 60 s,
    # every 300 s) and 5 minutes more
    fired(tmp_path, _doc(out["node-a"], "node-a"), ["5m", "16m", "22m"],
          {"22m": ["ReconcilerNoRecentPass"]})
    pair.net.fail_disk("node-b", "/dev/vdb")
    out = pair.rounds(loaded, 1)
    fired(tmp_path, _doc(out["node-a"], "node-a"), ["1m", "5m"],
          {"5m": ["ReconcilerDegraded"]})
    fired(tmp_path, _doc(out["node-b"], "node-b"), ["5m", "12m"],
          {"5m": ["ReconcilerDegraded"], "12m": ["ReconcilerDegraded", "ReconcilerBlocked"]})


@pytest.mark.real_process
def test_the_split_brain_alert_fires_at_once(tmp_path):
    pair = Pair(tmp_path)
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.cut("node-a", "node-b")
    pair.by_hand("node-b", "drbdadm", "primary", "r0")
    pair.net.write("node-a", 0, "a")
    pair.net.write("node-b", 0, "b")
    pair.net.restore("node-a", "node-b")
    out = pair.rounds(loaded, 1)
    fired(tmp_path, _doc(out["node-b"], "node-b"), ["0m", "12m"],
          {"0m": ["ReconcilerSplitBrain"], "12m": ["ReconcilerSplitBrain", "ReconcilerBlocked"]})


@pytest.mark.real_process
def test_the_alerts_fire_on_textfiles_of_a_stall_and_a_refused_spec(tmp_path, scenario):
    host = _mirror_host()
    sc = scenario(host)
    spec = sc.spec(MIRROR)
    sc.one_pass(spec)
    host.clock.advance(10)
    sc.one_pass(spec)
    host.rate_bytes_per_s = 0
    for _ in range(10):
        host.clock.advance(10)
        r = sc.one_pass(spec)
    fired(tmp_path, _doc(r, "node-1"), ["4m", "6m", "11m"],
          {"6m": ["ReconcilerMoveStalled"], "11m": ["ReconcilerMoveStalled", "ReconcilerBlocked"]})
    refused = _doc(r, "node-1", state=status.SPEC_REFUSED, spec={"error": "x.toml: bad key"})
    fired(tmp_path, refused, ["2m"], {"2m": ["ReconcilerSpecInvalid"]})


# -- the metrics the alerts need, on simulated incidents -----------------------------------------


def test_a_split_brain_is_counted_on_both_nodes_and_named(tmp_path):
    pair = Pair(tmp_path)
    loaded = pair.spec()
    out = pair.converge(loaded)
    for n in ("node-a", "node-b"):
        m = parsed(textfile(out[n], n))
        assert value(m, "reconciler_split_brain") == 0 and m["reconciler_condition"] == {}
    pair.net.cut("node-a", "node-b")
    pair.by_hand("node-b", "drbdadm", "primary", "r0")
    pair.net.write("node-a", 0, "a")
    pair.net.write("node-b", 0, "b")
    pair.net.restore("node-a", "node-b")
    out = pair.rounds(loaded, 1)
    for n in ("node-a", "node-b"):
        m = parsed(textfile(out[n], n))
        assert value(m, "reconciler_split_brain") == 1
        assert value(m, "reconciler_condition", kind="split-brain", object="drbd r0") == 1
        assert value(m, "reconciler_degraded") == 0


def test_a_drbd_disk_lost_is_degraded_on_both_nodes(tmp_path):
    pair = Pair(tmp_path)
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.fail_disk("node-b", "/dev/vdb")
    out = pair.rounds(loaded, 1)
    for n in ("node-a", "node-b"):
        m = parsed(textfile(out[n], n))
        assert value(m, "reconciler_degraded") == 1, n
        assert value(m, "reconciler_condition", kind="degraded", object="drbd r0") == 1
    detail = next(c for c in out["node-a"].final.conditions)
    assert "node-b's disk is Diskless" in detail.detail


MIRROR = """
[vg.vg0]
nodes = ["*"]
scope = "local"
pvs = ["/dev/vdb", "/dev/vdc"]
[vg.vg0.lv.data]
size = "64M"
placement = ["/dev/vdc"]
move = "mirror-then-split"
"""


def _mirror_host(rate=1 * M) -> SimulatedHost:
    host = SimulatedHost(rate_bytes_per_s=rate)
    host.add_device("/dev/vdb", 512 * M)
    host.add_device("/dev/vdc", 512 * M)
    host.add_vg("vg0", ["/dev/vdb", "/dev/vdc"])
    host.add_lv("vg0", "data", 64 * M, pvs=["/dev/vdb"])
    return host


def test_a_failed_leg_is_degraded_a_leg_being_copied_is_not(scenario):
    host = _mirror_host()
    sc = scenario(host)
    spec = sc.spec(MIRROR)
    sc.one_pass(spec)
    host.clock.advance(10)
    m = parsed(textfile(sc.one_pass(spec)))
    assert value(m, "reconciler_in_flight_operations") == 1  # the new leg is copied
    assert value(m, "reconciler_degraded") == 0
    host.fail_device("/dev/vdc")
    host.clock.advance(10)
    r = sc.one_pass(spec)
    m = parsed(textfile(r))
    assert value(m, "reconciler_degraded") == 1
    assert value(m, "reconciler_condition", kind="degraded", object="lv vg0/data") == 1
    (c,) = r.final.conditions
    assert "health" in c.detail or "cannot find" in c.detail, c.detail


def test_a_faulty_md_member_is_degraded(scenario):
    host = SimulatedHost(rate_bytes_per_s=4 * M)
    host.add_device("/dev/vda", 64 * M, aliases=("/dev/disk/by-id/old-lun",))
    host.add_device("/dev/vdb", 64 * M, aliases=("/dev/disk/by-id/new-lun",))
    host.fill("/dev/vda", "orig")
    sc = scenario(host)
    spec = sc.spec(textwrap.dedent("""
        [clone.db]
        nodes = ["node-1"]
        source = "/dev/disk/by-id/old-lun"
        target = "/dev/disk/by-id/new-lun"
        md = "/dev/md100"
        state = "mirrored"
        """))
    sc.one_pass(spec)
    host.clock.advance(4)
    assert value(parsed(textfile(sc.one_pass(spec))), "reconciler_degraded") == 0  # copying
    host.fail_device("/dev/vdb")
    host.clock.advance(4)
    m = parsed(textfile(sc.one_pass(spec)))
    assert value(m, "reconciler_degraded") == 1
    assert value(m, "reconciler_condition", kind="degraded", object="md md100") == 1


def test_a_stalled_sync_is_counted_with_its_idle_time(scenario):
    host = _mirror_host()
    sc = scenario(host)
    spec = sc.spec(MIRROR)
    sc.one_pass(spec)
    for _ in range(3):
        host.clock.advance(10)
        m = parsed(textfile(sc.one_pass(spec)))
    assert value(m, "reconciler_stalled_operations") == 0
    assert m["reconciler_in_flight_idle_seconds"] == {}
    host.rate_bytes_per_s = 0
    idle = []
    for _ in range(10):
        host.clock.advance(10)
        m = parsed(textfile(sc.one_pass(spec)))
        idle.append((m["reconciler_in_flight_idle_seconds"] and
                     value(m, "reconciler_in_flight_idle_seconds", object="lv vg0/data"),
                     value(m, "reconciler_stalled_operations")))
    assert idle[-1][1] == 1 and idle[-1][0] >= 60, idle
    assert any(s and not stalled for s, stalled in idle), idle  # idle before it is stalled
    assert value(m, "reconciler_blocked") == 1


def test_the_status_text_lists_the_conditions(tmp_path):
    pair = Pair(tmp_path)
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.fail_disk("node-b", "/dev/vdb")
    r = pair.rounds(loaded, 1)["node-a"]
    doc = {"node": "node-a", "state": status.pass_state(r.result), "pid": None,
           **status.pass_section(r.result, number=1, reason="t", started_at=0.0,
                                 finished_at=1.0, etas={})}
    text = status.render(doc)
    assert "health (what monitoring alerts on):" in text
    assert "! drbd r0: degraded: node-b's disk is Diskless" in text
