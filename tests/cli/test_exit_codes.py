import json
from pathlib import Path

import pytest

from reconciler import cli

DEMO = str(Path(__file__).parents[2] / "specs" / "demo")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_on_demo_reports_drift_with_exit_2(capsys):
    code, out, err = run(capsys, "--simulate", "default", "--spec", DEMO, "--once", "--dry-run")
    assert code == 2
    assert "> lv vgglobal/lvrepnb: pvmove /dev/mapper/lun30 -> /dev/mapper/lun02" in out
    assert "- vg vgglobal: vgreduce /dev/mapper/lun30" in out
    assert "unmanaged (never touched): vg vgarc" in out


def test_json_plan_lists_argv(capsys):
    code, out, _ = run(capsys, "--simulate", "default", "--spec", DEMO, "--once", "--dry-run",
                       "--output", "json")
    doc = json.loads(out)
    assert code == 2
    steps = doc["plan"]["steps"]
    assert [s["action"] for s in steps] == ["MoveExtents", "ReduceVg"]
    assert steps[0]["argv"] == [["pvmove", "--background", "--name", "vgglobal/lvrepnb",
                                 "/dev/mapper/lun30", "/dev/mapper/lun02"]]
    assert steps[1]["after"] == [steps[0]["key"]]
    assert doc["processes"] == 1


def test_once_starts_the_move_and_reports_pending(capsys):
    code, out, _ = run(capsys, "--simulate", "default", "--spec", DEMO, "--once")
    assert code == 2
    assert "started" in out and "deferred" in out


def test_wait_converges_demo_to_exit_0(capsys):
    code, out, err = run(capsys, "--simulate", "default", "--spec", DEMO, "--once", "--wait")
    assert code == 0, out
    assert "nothing to do: in sync with the spec" in out


def test_bad_spec_exit_1_without_traceback(capsys, tmp_path):
    (tmp_path / "bad.toml").write_text('[vg."x;rm -rf /"]\nnodes=["*"]\nscope="local"\npvs=["/dev/a"]\n')
    code, out, err = run(capsys, "--simulate", "default", "--spec", str(tmp_path), "--once")
    assert code == 1
    assert 'bad.toml: vg."x;rm -rf /":' in err and "Traceback" not in err


def test_blocked_plan_exit_1_with_reason(capsys, tmp_path):
    (tmp_path / "s.toml").write_text(
        '[vg.vgglobal]\nnodes=["*"]\nscope="local"\npvs=["/dev/mapper/lun02","/dev/mapper/lun30"]\n'
        '[vg.vgglobal.lv.lvrepnb]\nsize="1G"\n')
    code, out, _ = run(capsys, "--simulate", "default", "--spec", str(tmp_path), "--once")
    assert code == 1
    assert "BLOCKED: is 128G, spec says 1G: shrinking is refused" in out


def test_in_sync_exit_0(capsys, tmp_path):
    (tmp_path / "s.toml").write_text('[vg.vgarc]\nnodes=["*"]\nscope="local"\npvs=["/dev/mapper/lun00"]\n')
    code, out, _ = run(capsys, "--simulate", "default", "--spec", str(tmp_path), "--once")
    assert code == 0


def test_validate(capsys, tmp_path):
    assert run(capsys, "validate", "--spec", DEMO)[0] == 0
    (tmp_path / "s.toml").write_text("[vg.a]\nnodes=[]\npvs=['/dev/a']\n")
    code, _, err = run(capsys, "validate", "--spec", str(tmp_path))
    assert code == 1 and "vg.a.nodes" in err


def test_schema(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0 and json.loads(out)["title"] == "reconciler spec"


def test_capture_then_simulate_from_it(capsys, tmp_path):
    cap = tmp_path / "cap"
    code, out, _ = run(capsys, "capture", str(cap), "--simulate", "default")
    assert code == 0
    manifest = json.loads((cap / "manifest.json").read_text())
    assert manifest["commands"][1]["argv"][:2] == ["lvm", "fullreport"]
    assert manifest["versions"]["lvm2"]
    code, out, _ = run(capsys, "--simulate", str(cap), "--spec", DEMO, "--once", "--dry-run")
    assert code == 2
    assert "pvmove /dev/mapper/lun30 -> /dev/mapper/lun02" in out


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "2  drift found" in out


def _spec_dir(tmp_path):
    d = tmp_path / "specs"
    d.mkdir(mode=0o755)
    (d / "s.toml").write_text('[vg.vgarc]\nnodes=["*"]\nscope="local"\npvs=["/dev/mapper/lun00"]\n')
    (d / "s.toml").chmod(0o644)
    return d


def test_once_refuses_while_another_instance_holds_the_lock(capsys, tmp_path):
    from reconciler import daemon
    lock = daemon.InstanceLock(tmp_path / "lock")
    lock.acquire()
    try:
        code, out, err = run(capsys, "--spec", str(_spec_dir(tmp_path)), "--once",
                             "--lock-file", str(tmp_path / "lock"))
    finally:
        lock.release()
    assert code == 1 and "already running" in err


def test_once_refuses_a_spec_others_can_write(capsys, tmp_path):
    d = _spec_dir(tmp_path)
    (d / "s.toml").chmod(0o666)
    code, out, err = run(capsys, "--spec", str(d), "--once", "--dry-run")
    assert code == 1 and "s.toml" in err and "writ" in err
