"""``capture`` records everything a pass observes, and ``--simulate DIR`` plans and runs
from it, operations in flight included (issue 9)."""

import json

from conftest import ROOT

from reconciler import controller, logs, offline
from reconciler.simulate import demo
from reconciler.spec import loading

DEMO = str(ROOT / "specs" / "demo")
EXAMPLES = ROOT / "specs" / "examples"


def _start(name: str, spec: str, node: str, seconds: float):
    """An embedded host after one pass and ``seconds`` of work: mid-operation."""
    logs.setup("WARNING")
    host = demo.HOSTS[name].build(node)
    env = controller.Environment(runner=host, node=node, resolve=host.resolve_device,
                                 clock=host.clock)
    first = controller.reconcile_once(loading.load(spec), env)
    assert first.exit_code == controller.EXIT_PENDING
    host.clock.advance(seconds)
    return host


def test_capture_holds_devices_that_are_not_pvs_with_aliases_and_md_files(reconcile, tmp_path):
    code, out, _ = reconcile("capture", str(tmp_path), "--simulate", "seed004")
    assert code == 0, out
    devices = json.loads((tmp_path / offline.BLOCK_DEVICES).read_text())["devices"]
    new = next(d for d in devices if d["path"] == "/dev/sdb")  # not a PV yet
    assert new["aliases"] == [demo.ISCSI_DISK] and new["size"] == 256 * 2**30
    assert len(new["devno"]) == 2
    files = json.loads((tmp_path / offline.KERNEL_FILES).read_text())
    assert "/proc/mdstat" in files and "/proc/self/mountinfo" in files
    assert any(p.startswith("/sys/dev/block/") and p.endswith("/size") for p in files)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == 3 and manifest["node"] == "old-server"
    # offline, from the capture alone: seed 004's new disk is pvcreated and joins the VG
    code, out, err = reconcile("--simulate", str(tmp_path), "--spec",
                               str(EXAMPLES / "mirror-then-split.toml"), "--once", "--dry-run")
    assert code == 2, err
    assert f"pv {demo.ISCSI_DISK}: pvcreate" in out and "add raid1 leg" in out


def test_a_move_in_flight_when_captured_is_resumed_from_the_capture(reconcile, tmp_path):
    host = _start("default", DEMO, "node-1", 600)
    manifest = offline.capture_simulated(str(tmp_path), host)
    flight, = manifest["in_flight"]
    assert flight["what"] == "pvmove" and 0 < flight["percent"] < 100
    code, out, err = reconcile("--simulate", str(tmp_path), "--spec", DEMO, "--once", "--wait",
                               "--output", "json")
    assert code == 0, err[-3000:]
    doc = json.loads(out)
    assert doc["plan"]["in_flight"][0]["object"] == "lv vgglobal/lvrepnb"
    assert [a["description"] for a in doc["applied"]][-1] == "vgreduce /dev/mapper/lun30"
    assert doc["final"]["converged"]


def test_a_clone_in_flight_when_captured_carries_on(reconcile, tmp_path):
    host = _start("seed002", str(EXAMPLES / "clone.toml"), "node-1", 30)
    offline.capture_simulated(str(tmp_path), host, node="node-1")
    files = json.loads((tmp_path / offline.KERNEL_FILES).read_text())
    assert "md100" in files["/proc/mdstat"] and "/sys/block/md100/md/sync_completed" in files
    code, out, err = reconcile("--simulate", str(tmp_path), "--spec",
                               str(EXAMPLES / "clone.toml"), "--once", "--wait", "--output", "json")
    assert code == 0, err[-3000:]
    doc = json.loads(out)
    flight, = doc["plan"]["in_flight"]
    assert 0 < flight["percent"] < 100  # resumed where it was, not rebuilt
    assert doc["applied"] == [] and doc["final"]["converged"]


def test_a_mirror_sync_in_flight_when_captured_finishes_and_splits(reconcile, tmp_path):
    host = _start("seed004", str(EXAMPLES / "mirror-then-split.toml"), "old-server", 100)
    offline.capture_simulated(str(tmp_path), host, node="old-server")
    code, out, err = reconcile("--simulate", str(tmp_path), "--spec",
                               str(EXAMPLES / "mirror-then-split.toml"), "--once", "--wait",
                               "--output", "json")
    assert code == 0, err[-3000:]
    doc = json.loads(out)
    assert doc["plan"]["in_flight"][0]["what"] == "raid1 sync"
    assert [a["description"] for a in doc["applied"]][0].startswith("drop the in-sync leg")


def test_capture_help_documents_simulate(reconcile):
    code, out, _ = reconcile("capture", "--help")
    assert code == 0 and "--simulate SOURCE" in out


def test_simulate_source_that_is_no_capture_is_refused_by_name(reconcile, tmp_path):
    # Neither a directory nor an embedded host: the embedded hosts are named.
    code, _, err = reconcile("--simulate", str(tmp_path / "none"), "--spec", DEMO, "--once")
    assert code == 1 and "Traceback" not in err
    assert (f"--simulate {tmp_path / 'none'}: no such capture directory, and not an embedded "
            f"simulated host (cluster, default, iscsi, seed000, seed001") in err
    # A directory that 'reconcile capture' did not write.
    (tmp_path / "empty").mkdir()
    code, _, err = reconcile("--simulate", str(tmp_path / "empty"), "--spec", DEMO, "--once")
    assert code == 1 and "Traceback" not in err
    assert f"{tmp_path / 'empty'} is not a capture written by 'reconcile capture'" in err
