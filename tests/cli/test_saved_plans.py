"""Saved plans (issue 18): ``--once --dry-run --out PLAN.json`` writes the forecast with the
spec's digest and the relevant observed state's; ``reconcile apply PLAN.json`` runs exactly
that plan, pass after pass, or nothing (exit 3, with what changed).

A simulated host is built afresh by each process; the embedded hosts are deterministic (a
seeded generator for their uuids, the virtual clock at 0), so the host ``--simulate default
apply`` builds is the one the plan was made on, and the observed state's digest proves it.
"""

import json
import shutil

import pytest

from conftest import ROOT
from test_examples import RUNS

from reconciler import controller, forecasting
from reconciler.simulate import demo

DEMO = ROOT / "specs" / "demo"


def _save(reconcile, tmp_path, *extra, spec=None):
    plan = tmp_path / "plan.json"
    code, out, err = reconcile("--simulate", "default", "--spec", str(spec or DEMO), "--once",
                               "--dry-run", "--out", str(plan), *extra)
    assert code == controller.EXIT_PENDING, err[-2000:]
    assert f"Plan saved to {plan}" in err
    return plan


def test_a_saved_plan_holds_the_forecast_and_both_digests(reconcile, tmp_path):
    plan = _save(reconcile, tmp_path)
    doc = json.loads(plan.read_text())
    assert doc["format"] == forecasting.PLAN_FORMAT and doc["simulate"] == "default"
    assert doc["spec"]["path"] == str(DEMO) and len(doc["spec"]["digest"]) == 64
    assert set(doc["spec"]["files"]) == {str(DEMO / "vgglobal.toml")}
    assert doc["observed"]["digest"] == forecasting.digest(doc["observed"]["state"])
    assert set(doc["observed"]["state"]["vgs"]) == {"vgglobal"}  # vgarc is not managed
    assert [s["action"] for s in doc["forecast"]["steps"]] == ["MoveExtents", "ReduceVg"]


def test_apply_runs_the_saved_plan_on_a_fresh_simulated_host(reconcile, tmp_path):
    plan = _save(reconcile, tmp_path)
    code, out, err = reconcile("--simulate", "default", "apply", str(plan), "--output", "json")
    assert code == 0, err[-3000:]
    doc = json.loads(out)
    ran = [(a["key"], [c["argv"] for c in a["commands"]]) for a in doc["applied"]
           if a["outcome"] != "deferred"]
    saved = json.loads(plan.read_text())["forecast"]["steps"]
    assert ran == [(s["key"], s["argv"]) for s in saved]
    assert doc["final"]["converged"]


def test_apply_refuses_when_the_spec_changed_with_a_diff(reconcile, tmp_path):
    spec = tmp_path / "spec"
    shutil.copytree(DEMO, spec)
    plan = _save(reconcile, tmp_path, spec=spec)
    f = spec / "vgglobal.toml"
    f.write_text(f.read_text().replace('size = "128G"', 'size = "130G"'))
    code, out, err = reconcile("--simulate", "default", "apply", str(plan))
    assert code == controller.EXIT_STALE_PLAN == 3
    assert "the spec changed: digest " in out
    assert '-size = "128G"' in out and '+size = "130G"' in out
    assert out.rstrip().endswith("nothing more was run: make and review a new plan.")
    assert "lvextend" not in out + err and "pvmove --background" not in err


def test_apply_refuses_when_the_observed_state_changed_with_a_diff(reconcile, tmp_path,
                                                                  monkeypatch):
    plan = _save(reconcile, tmp_path)
    real = demo.HOSTS["default"]

    def build(node):  # someone grew lvrepnb by hand since the plan was made
        host = real.build(node)
        host.vg("vgglobal").lvs["lvrepnb"]  # exists
        from reconciler.runner import Command
        assert host.run(Command(argv=("lvextend", "--size", f"{130 * 2**30}b",
                                      "vgglobal/lvrepnb"))).ok
        host.calls.clear()
        return host

    monkeypatch.setitem(demo.HOSTS, "default", demo.Example(
        real.name, build, real.node, real.spec, real.about))
    code, out, err = reconcile("--simulate", "default", "apply", str(plan))
    assert code == 3, out + err
    assert "the observed state changed: digest " in out
    assert "~ vgs.vgglobal.lvs.lvrepnb.size: 137438953472 -> 139586437120" in out
    assert "pvmove" not in err


def test_apply_stops_before_a_pass_that_would_run_a_step_the_plan_does_not_hold(
        reconcile, tmp_path):
    plan = _save(reconcile, tmp_path)
    doc = json.loads(plan.read_text())
    # the vgreduce never reviewed: a pass whose plan holds it runs nothing (the first
    # pass plans it, after the pvmove)
    doc["forecast"]["steps"] = doc["forecast"]["steps"][:1]
    doc["forecast"]["planned"] = [s for s in doc["forecast"]["planned"]
                                  if not s["key"].startswith("vg:vgglobal:reduce")]
    plan.write_text(json.dumps(doc))
    code, out, err = reconcile("--simulate", "default", "apply", str(plan), "--output", "json")
    assert code == 3
    res = json.loads(out)
    assert res["applied"] == [] and res["passes"] == 1
    assert res["error"].startswith("this pass would run a step the saved plan does not hold: "
                                   "vg vgglobal: vgreduce /dev/mapper/lun30")


def test_apply_on_another_host_than_planned_runs_nothing(reconcile, tmp_path):
    plan = _save(reconcile, tmp_path)
    code, out, err = reconcile("--simulate", "seed004", "apply", str(plan))
    assert code == 3 and "was made on --simulate default" in err and "nothing was run" in err
    code, out, err = reconcile("apply", str(plan))
    assert code == 3 and "applied with no --simulate" in err


def test_out_needs_a_dry_run_and_apply_needs_a_saved_plan(reconcile, tmp_path):
    code, _, err = reconcile("--simulate", "default", "--spec", str(DEMO), "--once", "--out",
                             str(tmp_path / "p.json"))
    assert code == 1 and "--out goes with --once --dry-run" in err
    (tmp_path / "x.json").write_text("{}")
    code, _, err = reconcile("--simulate", "default", "apply", str(tmp_path / "x.json"))
    assert code == 1 and "is not a saved plan" in err


@pytest.mark.parametrize("host, extra, spec", RUNS, ids=[f"{h}{''.join(e)}" for h, e, _ in RUNS])
def test_every_example_saved_then_applied_on_a_fresh_simulated_host(reconcile, tmp_path, host,
                                                                   extra, spec):
    plan = tmp_path / "plan.json"
    code, _, err = reconcile("--simulate", host, *extra, "--spec", str(ROOT / spec), "--once",
                             "--dry-run", "--out", str(plan))
    assert code == controller.EXIT_PENDING, err[-2000:]
    code, out, err = reconcile("--simulate", host, "apply", str(plan), "--output", "json")
    assert code == 0, (out + err)[-3000:]
    ran = [(a["key"], [c["argv"] for c in a["commands"]])
           for a in json.loads(out)["applied"] if a["outcome"] != "deferred"]
    assert ran == [(s["key"], s["argv"]) for s in json.loads(plan.read_text())["forecast"]["steps"]]


def test_a_plan_made_on_a_capture_applies_on_it_however_its_path_is_spelled(
        reconcile, tmp_path, monkeypatch):
    assert reconcile("capture", str(tmp_path / "cap"), "--simulate", "default")[0] == 0
    monkeypatch.chdir(tmp_path)
    plan = tmp_path / "plan.json"
    code, _, err = reconcile("--simulate", "cap", "--spec", str(DEMO), "--once", "--dry-run",
                             "--out", str(plan))
    assert code == 2, err[-2000:]
    code, out, err = reconcile("--simulate", str(tmp_path / "cap"), "apply", str(plan))
    assert code == 0, (out + err)[-2000:]


def test_a_refusal_in_json_lists_what_changed(reconcile, tmp_path):
    spec = tmp_path / "spec"
    shutil.copytree(DEMO, spec)
    plan = _save(reconcile, tmp_path, spec=spec)
    (spec / "more.toml").write_text('[vg.vgarc]\nnodes = ["*"]\nscope = "local"\n'
                                    'pvs = ["/dev/mapper/lun00"]\n')
    code, out, _ = reconcile("--simulate", "default", "apply", str(plan), "--output", "json")
    doc = json.loads(out)
    assert code == doc["exit_code"] == 3
    assert doc["changed"][0].startswith("the spec changed: digest ")
    assert f"+++ {spec / 'more.toml'} (now)" in doc["changed"]


def test_no_plan_is_saved_without_a_forecast(reconcile, tmp_path, monkeypatch):
    monkeypatch.setattr(forecasting, "simulated_copy", lambda *a, **k: (_ for _ in ()).throw(
        forecasting.errors.ReconcilerError("no copy here")))
    plan = tmp_path / "plan.json"
    code, out, err = reconcile("--simulate", "default", "--spec", str(DEMO), "--once",
                               "--dry-run", "--out", str(plan))
    assert code == 1 and not plan.exists()
    assert "Forecast: only the plan above: the host cannot be replayed in the simulator: no copy here" in out
    assert f"no plan written to {plan}" in err


SEED004 = ROOT / "specs" / "examples" / "mirror-then-split.toml"


def _cut_short(monkeypatch, passes):
    """The replay cut short after ``passes`` passes (its limit): what it never got to run is
    only ever deferred on the copy."""
    real = forecasting.forecast
    monkeypatch.setattr(forecasting, "forecast",
                        lambda *a, **k: real(*a, **{**k, "max_passes": passes}))


def test_a_step_only_deferred_in_the_replay_is_shown_as_such_and_never_applied(
        reconcile, tmp_path, monkeypatch):
    # seed 004: the replay stops after two passes (the second only waits), while vg0/root's
    # new leg syncs: its `lvconvert -m0` (drop the leg on /dev/md0) was planned there,
    # deferred, never run; the apply then met it runnable (and ran it, and vg0/srv's too)
    _cut_short(monkeypatch, 2)
    plan = tmp_path / "plan.json"
    code, out, err = reconcile("--simulate", "seed004", "--spec", str(SEED004), "--once",
                               "--dry-run", "--out", str(plan))
    assert code == controller.EXIT_PENDING, err[-2000:]
    forecast = out.split("\nForecast ", 1)[1]
    assert "  pass 2:" not in forecast
    assert ("    - lv vg0/root: drop the in-sync leg on /dev/md0 (lvconvert -m0)  "
            "[deferred in the replay: ") in forecast
    doc = json.loads(plan.read_text())
    assert '"--mirrors", "0"' not in json.dumps(doc["forecast"]["steps"])
    deferred = {d["key"]: d for d in doc["forecast"]["deferred"]}
    drop = [d for d in deferred.values() if d["action"] == "DropMirrorLeg"]
    assert drop and drop[0]["object"] == "lv vg0/root" and drop[0]["outcome"] == "deferred"
    monkeypatch.undo()
    code, out, err = reconcile("--simulate", "seed004", "apply", str(plan), "--output", "json")
    assert code == controller.EXIT_STALE_PLAN, (out + err)[-3000:]
    res = json.loads(out)
    ran = [(a["key"], [c["argv"] for c in a["commands"]]) for a in res["applied"]
           if a["outcome"] != "deferred"]
    assert ran == [(s["key"], s["argv"]) for s in doc["forecast"]["steps"]]
    assert '"--mirrors", "0"' not in json.dumps(res["applied"])
    assert res["error"].startswith("lv vg0/root: drop the in-sync leg on /dev/md0 "
                                   "(lvconvert -m0): not reviewed as runnable: the saved plan "
                                   "shows it only deferred in the replay")


def test_a_step_never_runs_in_an_earlier_pass_than_the_one_it_was_reviewed_in(
        reconcile, tmp_path):
    plan = _save(reconcile, tmp_path)
    doc = json.loads(plan.read_text())
    # the vgreduce reviewed for pass 3: apply's pass 2 (the first after the move) may not
    # run it
    for r in doc["forecast"]["reviewed"]:
        if r["key"].startswith("vg:vgglobal:reduce"):
            r["pass_no"] = 3
    plan.write_text(json.dumps(doc))
    code, out, err = reconcile("--simulate", "default", "apply", str(plan), "--output", "json")
    assert code == controller.EXIT_STALE_PLAN, (out + err)[-3000:]
    res = json.loads(out)
    assert [a["key"] for a in res["applied"] if a["outcome"] != "deferred"] == [
        "lv:vgglobal/lvrepnb:move:/dev/mapper/lun30"]
    assert "ran vgreduce" not in err and "ran pvmove" in err
    assert res["error"].startswith("vg vgglobal: vgreduce /dev/mapper/lun30")
    assert res["error"].endswith("reviewed for pass 3 of the forecast, this is its pass 2")


def test_a_step_runs_no_more_times_than_the_forecast_shows_it(reconcile, tmp_path):
    # each run the forecast shows authorizes one run: the pvmove's one taken away, the
    # first pass stops before it (the plan-level check still knows the step)
    plan = _save(reconcile, tmp_path)
    doc = json.loads(plan.read_text())
    move = [r for r in doc["forecast"]["reviewed"] if r["key"].startswith("lv:vgglobal/lvrepnb:move")]
    assert len(move) == 1
    doc["forecast"]["reviewed"].remove(move[0])
    plan.write_text(json.dumps(doc))
    code, out, err = reconcile("--simulate", "default", "apply", str(plan), "--output", "json")
    assert code == controller.EXIT_STALE_PLAN
    res = json.loads(out)
    assert res["applied"] == [] or all(a["outcome"] == "deferred" for a in res["applied"])
    assert "ran pvmove" not in err
    assert "not reviewed as runnable" in res["error"]
