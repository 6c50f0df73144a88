"""``capture`` records what every subsystem's observation reads and runs (lvmlockd, iSCSI,
DRBD, besides LVM and md), and ``--simulate DIR`` either plans as the host itself does or
refuses, naming the subsystem and the object the simulator cannot hold (issue 9)."""

import json
import shutil
import sys

from conftest import ROOT

from reconciler import controller, logs, offline
from reconciler.simulate import demo
from reconciler.spec import loading

EXAMPLES = ROOT / "specs" / "examples"
ISCSI = str(EXAMPLES / "iscsi.toml")
DRBD = str(EXAMPLES / "drbd.toml")


def _same_plan(reconcile, tmp_path, name: str, spec: str, node: str) -> str:
    code, out, err = reconcile("capture", str(tmp_path), "--simulate", name)
    assert code == 0, err
    live = reconcile("--simulate", name, "--spec", spec, "--once", "--dry-run", "--node", node)
    offline_ = reconcile("--simulate", str(tmp_path), "--spec", spec, "--once", "--dry-run",
                         "--node", node)
    # the plan is the same; the forecast after it (issue 18) may stop earlier offline, where
    # the seeded host lacks what the capture cannot hold (a login to a seeded target)
    def plan(out: str) -> str:
        return out.split("\nForecast")[0]
    assert live[0] == 2 and offline_[0] == live[0], (live, offline_)
    assert plan(offline_[1]) == plan(live[1]) and "\nForecast" in live[1], (live, offline_)
    return offline_[1]


def _one_pass(name: str, spec: str, node: str):
    logs.setup("WARNING")
    host = demo.HOSTS[name].build(node)
    env = controller.Environment(runner=host, node=node, resolve=host.resolve_device,
                                 clock=host.clock)
    controller.reconcile_once(loading.load(spec), env)
    return host


def _refused(reconcile, directory, spec: str, node: str) -> str:
    code, out, err = reconcile("--simulate", str(directory), "--spec", spec, "--once",
                               "--dry-run", "--node", node)
    assert code == 1 and "Traceback" not in err and "Plan for" not in out, (out, err)
    assert "the simulator cannot seed" in err
    return err


def test_capture_records_every_command_and_the_iscsi_files_and_plans_as_the_host(
        reconcile, tmp_path):
    out = _same_plan(reconcile, tmp_path, "iscsi", ISCSI, "old")
    assert "log in to iqn.2003-01.org.example.new:export0" in out and "pvmove" in out
    manifest = json.loads((tmp_path / offline.MANIFEST_FILE).read_text())
    assert manifest["format"] == 3 and manifest["all_commands"] == offline.COMMANDS_FILE
    commands = json.loads((tmp_path / offline.COMMANDS_FILE).read_text())
    argvs = [tuple(c["argv"][:2]) for c in commands]
    assert ("lvm", "version") in argvs and ("lvm", "fullreport") in argvs
    report = next(c for c in commands if c["argv"][:2] == ["lvm", "fullreport"])
    assert report["rc"] == 0 and '"vg_name":"vgold"' in report["stdout"].replace(" ", "")
    files = json.loads((tmp_path / offline.KERNEL_FILES).read_text())
    assert files["/etc/iscsi/initiatorname.iscsi"].strip().endswith(
        "iqn.2004-10.com.example:old")
    assert "/sys/class/iscsi_session/" in files and "/proc/drbd" in files
    # what this simulated host does not model at all is said, not hidden
    assert "lvmlockd" in manifest["not_modelled"]


def test_a_drbd_node_not_set_up_plans_offline_as_on_the_host(reconcile, tmp_path):
    out = _same_plan(reconcile, tmp_path, "seed003", DRBD, "node1")
    assert "modprobe drbd" in out and "create DRBD metadata on /dev/hdd1" in out


def test_a_drbd_resource_in_the_capture_is_refused_by_name(reconcile, tmp_path):
    host = _one_pass("seed003", DRBD, "node1")
    offline.capture_simulated(str(tmp_path), host, node="node1")
    files = json.loads((tmp_path / offline.KERNEL_FILES).read_text())
    assert "drbd1" in files["/etc/drbd.d/drbd1.res"] and files["/proc/drbd"]
    err = _refused(reconcile, tmp_path, DRBD, "node1")
    assert "DRBD" in err and "minor 0" in err


def test_an_iscsi_session_in_the_capture_is_refused_by_name(reconcile, tmp_path):
    host = _one_pass("iscsi", ISCSI, "old")
    offline.capture_simulated(str(tmp_path), host, node="old")
    err = _refused(reconcile, tmp_path, ISCSI, "old")
    assert "iSCSI session" in err and "iqn.2003-01.org.example.new:export0" in err
    assert "192.0.2.10:3260" in err


def test_an_iscsi_target_in_the_capture_is_seeded_and_plans_as_the_host(reconcile, tmp_path):
    new = demo.iscsi_host("old").iscsi.fabric.hosts[1]  # the exporting server
    new.iscsi.targets[demo.ISCSI_IQN].enabled = False  # drift the plan must see offline too
    logs.setup("WARNING")
    env = controller.Environment(runner=new, node="new", resolve=new.resolve_device,
                                 clock=new.clock)
    live = controller.reconcile_once(loading.load(ISCSI), env, dry_run=True)
    offline.capture_simulated(str(tmp_path), new, node="new")
    files = json.loads((tmp_path / offline.KERNEL_FILES).read_text())
    assert any(p.startswith("/sys/kernel/config/target/iscsi/") for p in files)
    code, out, err = reconcile("--simulate", str(tmp_path), "--spec", ISCSI, "--once",
                               "--dry-run", "--output", "json")
    assert code == 2, err
    steps = [s["description"] for s in json.loads(out)["plan"]["steps"]]
    assert steps == [s.action.describe() for s in live.plan.steps] and len(steps) == 1
    assert "CHAP secrets are not in the capture" in err


def test_a_shared_vg_in_the_capture_is_refused_by_name(reconcile, tmp_path):
    """A lockd node's own fullreport and ``lvmlockctl --info`` in a capture: seeding the
    shared VG as a local one would plan something else than the node does."""
    from support import lockd_sim
    c = lockd_sim.cluster()
    nodes = lockd_sim.nodes(tmp_path / "spec", c)
    (tmp_path / "spec").mkdir()
    from loguru import logger
    logger.remove()  # the real passes log: not into an earlier test's closed stream
    nodes.converge(nodes.spec(lockd_sim.shared_vg(lockd_sim.data(all="shared"))), max_rounds=4)
    node = c.node("node-a")
    from reconciler.adapters import lockd as lockd_adapter
    from reconciler.adapters.lvm_report import FULLREPORT_ARGV
    from reconciler.runner import Command
    report = node.run(Command(argv=FULLREPORT_ARGV))
    info = node.run(lockd_adapter.lockctl_info("local"))
    assert report.ok and info.ok
    offline.capture(str(tmp_path), simulate="default")
    (tmp_path / offline.FULLREPORT_FILE).write_text(report.stdout)
    commands = json.loads((tmp_path / offline.COMMANDS_FILE).read_text())
    commands.append({"argv": list(info.command.argv), "rc": 0, "stdout": info.stdout,
                     "stderr": ""})
    (tmp_path / offline.COMMANDS_FILE).write_text(json.dumps(commands))
    err = _refused(reconcile, tmp_path, str(ROOT / "specs" / "demo"), "node-1")
    assert "lvmlockd" in err and "shared VG vgs" in err


def test_a_format_2_capture_is_still_read_and_says_what_it_lacks(reconcile, tmp_path):
    offline.capture(str(tmp_path / "c"), simulate="default")
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "c", old)
    (old / offline.COMMANDS_FILE).unlink()
    manifest = json.loads((old / offline.MANIFEST_FILE).read_text())
    manifest["format"] = 2
    (old / offline.MANIFEST_FILE).write_text(json.dumps(manifest))
    spec = str(ROOT / "specs" / "demo")
    new = reconcile("--simulate", str(tmp_path / "c"), "--spec", spec, "--once", "--dry-run")
    code, out, err = reconcile("--simulate", str(old), "--spec", spec, "--once", "--dry-run")
    warning, _, plan = out.partition("\n")
    assert code == 2 and plan == new[1]
    assert "format 2" in warning and "no lvmlockd, iSCSI or DRBD state" in warning
