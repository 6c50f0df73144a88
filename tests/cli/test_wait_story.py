"""``--once --wait`` reads like ``terraform apply``: the plan, progress, every step applied
over all passes, what is left, and what the exit code means (issue 9)."""

import json

from conftest import ROOT

DEMO = str(ROOT / "specs" / "demo")


def test_text_shows_plan_then_every_applied_step_then_exit_meaning(reconcile):
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    assert code == 0, out + err
    plan_at = out.index("Plan for node")
    applied_at = out.index("Applied over")
    # the plan first, with every step and why
    plan = out[plan_at:applied_at]
    assert "> lv vgglobal/lvrepnb: pvmove /dev/mapper/lun30 -> /dev/mapper/lun02  # " in plan
    assert "- vg vgglobal: vgreduce /dev/mapper/lun30  # " in plan
    # then both steps as applied, from different passes: the pvmove of pass 1 included
    summary = out[applied_at:]
    assert "started  lv vgglobal/lvrepnb: pvmove /dev/mapper/lun30 -> /dev/mapper/lun02  (pass 1, finished by pass" in summary
    assert "done  vg vgglobal: vgreduce /dev/mapper/lun30  (pass" in summary
    assert "Left:\n  nothing to do: in sync with the spec" in summary
    assert out.rstrip().endswith("Exit 0: in sync with the spec.")


def test_progress_off_a_tty_is_one_line_per_change_never_per_pass(reconcile):
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    assert code == 0
    passes = int(out.split("Applied over ")[1].split(" ")[0])
    assert passes > 20  # the pvmove takes many passes ...
    progress = [line for line in err.splitlines() if line.startswith("  … ")]
    # ... but progress says: started, 25 %, 50 %, 75 %, finished
    assert len(progress) == 5, progress
    assert progress[0].endswith("(started)") and progress[-1].endswith(": finished")
    # the per-pass "in flight" log lines are not repeated either
    assert sum("in flight:" in line for line in err.splitlines()) <= 1


def test_figures_agree_with_what_ran(reconcile):
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    processes = out.split("Processes: ")[1].splitlines()[0]
    total, rest = processes.split(" (", 1)
    changes = int(rest.split(" that change")[0])
    observations = int(rest.split(", ")[1].split(" observations")[0])
    assert int(total) == changes + observations
    ran_changes = [line for line in err.splitlines() if " ran " in line and "lvm fullreport" not in line]
    assert changes == len(ran_changes) == 2  # pvmove, vgreduce


def test_json_is_the_same_story_in_one_document(reconcile):
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait",
                               "--output", "json")
    assert code == 0
    doc = json.loads(out)
    assert [s["action"] for s in doc["plan"]["steps"]] == ["MoveExtents", "ReduceVg"]
    applied = [(a["description"], a["outcome"]) for a in doc["applied"]]
    assert applied == [("pvmove /dev/mapper/lun30 -> /dev/mapper/lun02", "started"),
                       ("vgreduce /dev/mapper/lun30", "done")]
    assert doc["applied"][0]["pass_no"] == 1 and doc["applied"][0]["finished_pass"] == doc["passes"]
    assert doc["applied"][1]["pass_no"] == doc["passes"] > 1
    assert doc["applied"][0]["commands"][0]["argv"][0] == "pvmove"
    assert doc["final"]["converged"] is True
    assert doc["exit_code"] == 0 and doc["meaning"] == "in sync with the spec"
    assert doc["processes"] == doc["changes"] + doc["observations"] and doc["changes"] == 2


def test_each_pass_end_line_counts_the_ran_lines_it_follows(reconcile):
    """The log's figures agree with its lines: per pass, the commands that change the host
    are the INFO ``ran`` lines, the observations the DEBUG ones."""
    import re

    code, _, err = reconcile("--simulate", "default", "--spec", DEMO, "--once",
                             "--log-level", "DEBUG")
    assert code == 2, err
    lines = err.splitlines()
    changed = sum(1 for ln in lines if " INFO " in ln and " ran " in ln)
    observed = sum(1 for ln in lines if " DEBUG " in ln and " ran " in ln)
    (end,) = [ln for ln in lines if "pass end:" in ln]
    m = re.search(r"(\d+) process\(es\): (\d+) that change the host, (\d+) observation", end)
    assert m, end
    assert (int(m[1]), int(m[2]), int(m[3])) == (changed + observed, changed, observed), end
    assert changed == 1  # the pvmove
