"""``--detailed-exitcodes`` (issue 18, like Puppet's): "changes applied, now in sync" (5) is
told apart from "nothing to do" (0); without the option both are 0, as before."""

import json

from conftest import ROOT

from reconciler import controller

DEMO = str(ROOT / "specs" / "demo")
CLUSTER = str(ROOT / "specs" / "examples" / "cluster.toml")


def test_a_run_that_converges_the_host_exits_5_and_says_so(reconcile):
    code, out, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait",
                             "--detailed-exitcodes")
    assert code == controller.EXIT_CHANGED == 5
    assert out.rstrip().endswith(
        "Exit 5: changes applied, now in sync with the spec (--detailed-exitcodes).")
    code, out, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait",
                             "--detailed-exitcodes", "--output", "json")
    assert code == 5 and json.loads(out)["exit_code"] == 5


def test_without_the_option_it_is_0_as_before(reconcile):
    code, out, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    assert code == 0 and out.rstrip().endswith("Exit 0: in sync with the spec.")


def test_one_pass_that_converges_exits_5(reconcile):
    # core-02 of the cluster: pvcreate, vgcreate, lvcreate in one pass, nothing long
    code, out, _ = reconcile("--simulate", "cluster", "--node", "core-02", "--spec", CLUSTER,
                             "--once", "--detailed-exitcodes", "--output", "json")
    doc = json.loads(out)
    assert doc["applied"] and doc["final"]["converged"]
    assert code == 5 and doc["exit_code"] == 5


def test_nothing_to_do_stays_0_and_pending_stays_2(reconcile, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[vg.vgglobal]\nnodes = ["*"]\nscope = "local"\n'
                    'pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]\n'
                    '[vg.vgglobal.lv.lvrepnb]\nsize = "128G"\n'
                    '[vg.vgglobal.lv.mygfs]\nsize = "324G"\n')
    code, out, _ = reconcile("--simulate", "default", "--spec", str(spec), "--once",
                             "--detailed-exitcodes", "--output", "json")
    assert json.loads(out)["plan"]["steps"] == [] and code == 0, out
    # one pass that starts the pvmove: pending (2), with or without the option
    code, _, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once",
                           "--detailed-exitcodes")
    assert code == controller.EXIT_PENDING


def test_apply_of_a_saved_plan_exits_5_and_takes_the_option_before_the_subcommand(
        reconcile, tmp_path):
    plan = tmp_path / "plan.json"
    reconcile("--simulate", "default", "--spec", DEMO, "--once", "--dry-run", "--out", str(plan))
    code, out, err = reconcile("--simulate", "default", "--detailed-exitcodes", "apply",
                               str(plan))
    assert code == 5, err[-2000:]
