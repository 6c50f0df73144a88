"""The plan's output (issue 18): a legend of its signs; colour on a terminal only, never
with NO_COLOR; devices named as the spec spells them in the plan, the forecast and the
summary alike; the text summary and the JSON give the same figures."""

import json
import re

from conftest import ROOT

from reconciler import actions, cli

DEMO = str(ROOT / "specs" / "demo")
SPLIT = str(ROOT / "specs" / "examples" / "mirror-then-split.toml")
CLUSTER = str(ROOT / "specs" / "examples" / "cluster.toml")
BY_PATH = "/dev/disk/by-path/ip-169.254.1.2:3260-iscsi-iqn.2026-11.lab:new-lun-0"


def test_the_plan_ends_with_the_legend_of_the_signs_it_uses(reconcile):
    _, out, _ = reconcile("--simulate", "cluster", "--spec", CLUSTER, "--once", "--dry-run")
    assert out.rstrip().splitlines()[-1] == (
        "Signs: + create or add; > move or copy; - remove or drop; !! gives up data")
    assert "\x1b[" not in out  # not a terminal


def test_the_legend_names_only_the_signs_used():
    assert actions.legend("Plan:\n  nothing to do: in sync with the spec") == ""
    assert actions.legend("Plan:\n  ~ lv a/b: x\n  ! lv a/c: BLOCKED: y") == (
        "Signs: ~ change; ! blocked (nothing runs for it)")
    assert {s for s, _ in actions.SIGNS} >= {str(s) for s in actions.Symbol}


def test_colour_on_a_terminal_and_never_with_no_color(reconcile, monkeypatch):
    monkeypatch.setattr(cli, "_coloured", lambda: True)
    _, out, _ = reconcile("--simulate", "cluster", "--spec", CLUSTER, "--once", "--dry-run")
    assert "  \x1b[31m-\x1b[0m lv vgdata/scratch: lvremove" in out
    assert f"\x1b[1;31m    {actions.GIVES_UP_MARK}: the data of vgdata/scratch" in out
    monkeypatch.undo()
    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli._coloured()
    monkeypatch.delenv("NO_COLOR")
    assert cli._coloured()


def test_the_mirror_then_split_names_the_new_disk_as_the_spec_does_throughout(reconcile):
    code, out, _ = reconcile("--simulate", "seed004", "--spec", SPLIT, "--once", "--dry-run")
    assert "/dev/sdb" not in "\n".join(line for line in out.splitlines()
                                       if not line.lstrip().startswith("$"))
    assert f"+ lv vg0/srv: add raid1 leg on {BY_PATH}" in out  # pass 2: a PV by then
    code, out, _ = reconcile("--simulate", "seed004", "--spec", SPLIT, "--once", "--wait")
    assert code == 0
    summary = out.split("\nApplied over ")[1]
    assert f"lv vg0/srv: add raid1 leg on {BY_PATH}" in summary and "/dev/sdb" not in summary


def test_lvm_still_gets_its_own_name_on_the_command_line(reconcile):
    _, out, _ = reconcile("--simulate", "seed004", "--spec", SPLIT, "--once", "--dry-run",
                          "--output", "json")
    srv = next(s for s in json.loads(out)["forecast"]["steps"] if s["key"] == "lv:vg0/srv:add-leg")
    assert srv["description"] == f"add raid1 leg on {BY_PATH}"
    assert srv["argv"][-1][-1] == "/dev/sdb"


def test_the_text_summary_and_the_json_give_the_same_figures(reconcile):
    _, text, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    _, js, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait",
                         "--output", "json")
    doc = json.loads(js)
    m = re.search(r"Applied over (\d+) pass\(es\) in (\S+) of simulated time:", text)
    p = re.search(r"Processes: (\d+) \((\d+) that change the host, (\d+) observations\)", text)
    assert int(m.group(1)) == doc["passes"]
    assert (int(p.group(1)), int(p.group(2)), int(p.group(3))) == (
        doc["processes"], doc["changes"], doc["observations"])
    assert m.group(2) == actions.plans._seconds(doc["duration_s"])
    assert f"Exit {doc['exit_code']}: {doc['meaning']}." in text


def test_the_process_count_says_what_it_counts(reconcile):
    """Issue 18: the figure is the processes the reconciler started; a tool's own children
    (fsadm's helpers, a pvmove poller) are not seen from here, and the summary says so rather
    than passing the figure off as every process the run caused."""
    _, text, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    after = text.split("Processes: ")[1].splitlines()
    assert "the processes the reconciler started" in after[1]
    assert "not counted" in after[1] and "fsadm" in after[1]
