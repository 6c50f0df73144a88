"""``--wait`` never waits in silence, and ``--wait-timeout`` ends it (issue 17, finding 10):
a node waiting for ``create_on`` to create a shared VG that never comes says on whom it
waits and for what at least once a minute of the run's (simulated) clock, and gives up at
its deadline with exit 4 and a last line naming what it still waited for."""

import json
import re

from conftest import ROOT
from support import specs

DEMO = str(ROOT / "specs" / "demo")
NEVER = specs.toml(specs.shared_vg("vgnew", ["/dev/mapper/lun01"], lock_type="sanlock"))
WAIT = "vg vgnew: waiting on another node: node-a: create the shared VG vgnew"


def _seconds(text):
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", text))


def test_a_wait_on_create_on_is_said_every_minute_and_ends_at_the_deadline(reconcile, tmp_path):
    spec = tmp_path / "never.toml"
    spec.write_text(NEVER)
    code, out, err = reconcile("--simulate", "seed001", "--node", "node-b", "--spec", str(spec),
                               "--once", "--wait", "--wait-timeout", "10m")
    assert code == 4, out + err
    assert "in 10m00s of simulated time" in out
    assert out.rstrip().splitlines()[-1] == (
        "Exit 4: the --wait deadline passed, still waiting on another node: node-a: create "
        "the shared VG vgnew.")
    said = [line for line in err.splitlines() if line.startswith(f"  … {WAIT}")]
    assert said[0] == f"  … {WAIT}"
    times = [0] + [_seconds(line.rsplit("(for ", 1)[1]) for line in said[1:]]
    assert times == sorted(times) and len(times) >= 10, said
    assert all(b - a <= 60 for a, b in zip(times, times[1:] + [600])), times


def test_the_deadline_in_json_and_on_an_operation_in_flight(reconcile):
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait",
                               "--wait-timeout", "30s", "--output", "json")
    assert code == 4, err
    doc = json.loads(out)
    assert doc["exit_code"] == 4 and doc["duration_s"] == 30.0
    assert doc["meaning"].startswith("the --wait deadline passed with changes still pending: "
                                     "lv vgglobal/lvrepnb: ")
    # without a deadline the same run converges
    code, out, _ = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait")
    assert code == 0


def test_wait_timeout_needs_wait_and_a_duration(reconcile):
    code, _, err = reconcile("--simulate", "default", "--spec", DEMO, "--once",
                             "--wait-timeout", "5m")
    assert code == 1 and "--wait-timeout goes with --wait" in err
    for bad in ("soon", "0", "5x", "-1m", "m"):
        code, _, err = reconcile("--simulate", "default", "--spec", DEMO, "--once", "--wait",
                                 "--wait-timeout", bad)
        assert code == 1 and "--wait-timeout" in err, bad


def test_once_a_wait_on_another_node_is_exit_2_logged_at_info(reconcile, tmp_path):
    spec = tmp_path / "never.toml"
    spec.write_text(NEVER)
    code, out, err = reconcile("--simulate", "seed001", "--node", "node-b", "--spec", str(spec),
                               "--once")
    assert code == 2, out + err
    assert f"  … {WAIT}\n" in out
    assert any(" INFO " in line and line.endswith(
        "waiting on another node: node-a: create the shared VG vgnew") for line in err.splitlines()), err
    code, out, _ = reconcile("--simulate", "seed001", "--node", "node-b", "--spec", str(spec),
                             "--once", "--output", "json")
    (flight,) = json.loads(out)["final"]["in_flight"]
    assert (flight["waiting_on"], flight["what"]) == ("node-a", "create the shared VG vgnew")
