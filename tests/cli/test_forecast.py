"""The forecast (issue 18): a dry run shows every step of every pass until convergence,
replayed on a simulated copy of the host, and that is what the real passes then do.

For every example spec on the simulated host made for it (every seed procedure the
``--simulate`` hosts carry: seeds 000 to 004, the iSCSI move, the cluster), the forecast of
``--once --dry-run`` is compared with what ``--once --wait`` then does on a fresh copy of
the same host: the same steps, running the same commands, in the same order, pass by pass
(passes counted as the forecast counts them: those in which a step ran). No difference is
tolerated. The same holds for a forecast made the way a real host's is (captured, then
seeded into the simulator), where the simulator can hold the host.
"""

import json

import pytest

from conftest import ROOT

from support.scenario import Scenario  # noqa: F401 - the harness's one-host scenario
from support.seed000 import SEED000_SPEC, seed000_host

from reconciler import actions, controller, forecasting, offline
from reconciler.simulate import demo
from reconciler.spec import loading

from test_examples import RUNS


def _forecast_passes(doc: dict) -> list[list[tuple[str, list[list[str]]]]]:
    steps = doc["forecast"]["steps"]
    n = doc["forecast"]["passes"]
    return [[(s["key"], s["argv"]) for s in steps if s["pass_no"] == p] for p in range(1, n + 1)]


def _real_passes(doc: dict) -> list[list[tuple[str, list[list[str]]]]]:
    ran = [a for a in doc["applied"] if a["outcome"] != "deferred"]
    numbers = sorted({a["pass_no"] for a in ran})
    return [[(a["key"], [c["argv"] for c in a["commands"]]) for a in ran if a["pass_no"] == p]
            for p in numbers]


@pytest.mark.parametrize("host, extra, spec", RUNS, ids=[f"{h}{''.join(e)}" for h, e, _ in RUNS])
def test_the_forecast_is_what_the_passes_then_do(reconcile, host, extra, spec):
    args = ("--simulate", host, *extra, "--spec", str(ROOT / spec), "--once")
    code, out, err = reconcile(*args, "--dry-run", "--output", "json")
    assert code == controller.EXIT_PENDING, err[-3000:]
    dry = json.loads(out)
    fc = dry["forecast"]
    assert fc["copy"] == forecasting.COPIED and fc["unavailable"] is None
    assert fc["converged"] and fc["stops"] == []
    # the first pass of the forecast is the dry run's own plan, in its order, less the
    # steps that wait for an operation it starts (they come in a later pass)
    planned = [s["key"] for s in dry["plan"]["steps"]]
    first = [k for k, _ in _forecast_passes(dry)[0]]
    assert first == [k for k in planned if k in first]
    assert set(planned) <= {s["key"] for s in fc["steps"]}
    code, out, err = reconcile(*args, "--wait", "--output", "json")
    assert code == 0, err[-3000:]
    real = json.loads(out)
    assert _forecast_passes(dry) == _real_passes(real)


def test_later_passes_are_shown_in_the_text_with_what_gives_up_data(reconcile):
    # seed 003: `primary --force` comes in pass 2 only; the first complaint
    code, out, _ = reconcile("--simulate", "seed003", "--spec",
                             str(ROOT / "specs/examples/drbd.toml"), "--once", "--dry-run")
    assert code == controller.EXIT_PENDING
    plan, forecast = out.split("\nForecast ", 1)
    assert "primary --force" not in plan.split("first full sync")[0]
    assert "  pass 2:\n    > drbd drbd1: first full sync from this node" in forecast
    assert (f"      {actions.GIVES_UP_MARK}: the peer's disk is overwritten with this node's "
            f"(primary --force)\n      $ drbdadm primary --force drbd1") in forecast
    assert "then: in sync with the spec" in forecast


def test_the_demo_forecast_has_the_vgreduce_after_the_pvmove_with_its_duration(reconcile):
    code, out, _ = reconcile("--simulate", "default", "--spec", str(ROOT / "specs/demo"),
                             "--once", "--dry-run", "--output", "json")
    fc = json.loads(out)["forecast"]
    first, second = fc["steps"]
    assert (first["pass_no"], first["action"], first["long"]) == (1, "MoveExtents", True)
    assert first["finished_pass"] == 2 and first["expected_duration_s"] > 60
    assert (second["pass_no"], second["action"], second["argv"]) == (
        2, "ReduceVg", [["vgreduce", "vgglobal", "/dev/mapper/lun30"]])
    assert fc["duration_s"] >= first["expected_duration_s"]


def test_the_cluster_lvremove_is_marked_in_the_plan_and_the_json(reconcile):
    code, out, _ = reconcile("--simulate", "cluster", "--spec",
                             str(ROOT / "specs/examples/cluster.toml"), "--once", "--dry-run",
                             "--output", "json")
    doc = json.loads(out)
    marked = {s["key"]: s["gives_up"] for s in doc["plan"]["steps"] if s["gives_up"]}
    assert marked == {"lv:vgdata/scratch:remove": "the data of vgdata/scratch is removed"}
    assert {s["key"] for s in doc["forecast"]["steps"] if s["gives_up"]} == set(marked)
    assert doc["forecast"]["gives_up"] == 1


def test_the_dry_run_leaves_the_host_untouched(tmp_path):
    host = demo.default_host()
    env = controller.Environment(runner=host, node="node-1", resolve=host.resolve_device,
                                 clock=host.clock)
    loaded = loading.load(ROOT / "specs" / "demo")
    before = len(host.calls)
    fc = forecasting.forecast(loaded, env, simulated=True)
    assert fc.passes == 2 and fc.converged
    assert host.calls[before:] == [] and host.clock.now() == 0.0


SEEDABLE = [("seed000", None), ("seed002", None), ("seed004", None), ("cluster", "core-01"),
            ("cluster", "core-02")]


@pytest.mark.parametrize("name, node", SEEDABLE)
def test_a_forecast_seeded_from_a_capture_matches_the_real_passes(tmp_path, name, node):
    # A real host's forecast: captured (read only), seeded into the simulator, replayed.
    example = demo.HOSTS[name]
    node = node or example.node
    loaded = loading.load(ROOT / example.spec)

    def env_of(host):
        return controller.Environment(runner=host, node=node, resolve=host.resolve_device,
                                      clock=host.clock)

    host = example.build(node)
    fc = forecasting.forecast(
        loaded, env_of(host), simulated=False,
        capture=lambda d: offline.capture_simulated(d, host, name=name, node=node))
    assert fc.copy == forecasting.SEEDED and not fc.unavailable, fc.unavailable
    assert not fc.durations_known and all(s.expected_s is None for s in fc.steps)
    settled = controller.reconcile_until_settled(loaded, env_of(example.build(node)))
    assert settled.exit_code == 0
    ran = [a for a in settled.applied if a.result.outcome.value != "deferred"]
    numbers = sorted({a.pass_no for a in ran})
    real = [[(a.result.step.key, [tuple(c.command.argv) for c in a.result.results])
             for a in ran if a.pass_no == p] for p in numbers]
    assert [[(s.key, list(s.argv)) for s in fc.pass_steps(n)]
            for n in range(1, fc.passes + 1)] == real
    assert fc.converged


def test_a_host_the_simulator_cannot_seed_gives_the_first_pass_and_says_why(tmp_path):
    example = demo.HOSTS["seed003"]
    host = example.build("node1")
    env = controller.Environment(runner=host, node="node1", resolve=host.resolve_device,
                                 clock=host.clock)
    host.hostname = "node1"
    fc = forecasting.forecast(
        loading.load(ROOT / example.spec), env, simulated=False,
        capture=lambda d: offline.capture_simulated(d, host, name="seed003", node="node1"))
    # seeded from the capture, the copy has no DRBD peer: said, not guessed
    assert fc.steps == [] and "the simulator cannot model this host" in fc.unavailable
    assert "DRBD" in fc.unavailable
    assert fc.render().startswith("Forecast: only the plan above: ")


def test_a_blocked_lv_does_not_hide_the_steps_of_its_vg(scenario):
    # mygfs asks to shrink without allow_shrink: the planner holds lvrepnb's move back
    # (nothing runs in a VG with a block), and the plan and the forecast say so
    sc = scenario(seed000_host())
    loaded = sc.spec(SEED000_SPEC.replace('size = "324M"', 'size = "300M"'))
    env = controller.Environment(runner=sc.host, node="node-1", resolve=sc.host.resolve_device,
                                 clock=sc.host.clock)
    fc = forecasting.forecast(loaded, env, simulated=True)
    assert fc.steps == [] and not fc.converged
    assert fc.stops[0].startswith("lv vgglobal/mygfs: BLOCKED: is 324M, spec says 300M")
    assert fc.stops[1:] == [
        "lv vgglobal/lvrepnb: pvmove /dev/sdc -> /dev/sdb: held back while the block in its "
        "VG lasts", "vg vgglobal: vgreduce /dev/sdc: held back while the block in its VG lasts"]
    plan = str(sc.one_pass(loaded, dry_run=True).plan)
    assert "held back while the block above lasts" in plan
    assert "    > lv vgglobal/lvrepnb: pvmove /dev/sdc -> /dev/sdb  # " in plan


def test_a_blocked_vg_does_not_hide_the_forecast_of_another_vg(scenario):
    # vgglobal's move goes on, pass after pass, while vgb is blocked (a shrink refused)
    from support import M
    host = seed000_host()
    host.add_device("/dev/sdd", 200 * M)
    host.add_vg("vgb", ["/dev/sdd"])
    host.add_lv("vgb", "x", 100 * M)
    sc = scenario(host)
    loaded = sc.spec(SEED000_SPEC + '\n[vg.vgb]\nnodes = ["node-1"]\npvs = ["/dev/sdd"]\n'
                     '[vg.vgb.lv.x]\nsize = "52M"\n')
    env = controller.Environment(runner=sc.host, node="node-1", resolve=sc.host.resolve_device,
                                 clock=sc.host.clock)
    fc = forecasting.forecast(loaded, env, simulated=True)
    assert [(s.pass_no, s.action) for s in fc.steps] == [(1, "MoveExtents"), (2, "ReduceVg")]
    assert not fc.converged
    assert len(fc.stops) == 1 and fc.stops[0].startswith("lv vgb/x: BLOCKED: ")


def test_a_wait_on_another_node_is_where_the_forecast_stops(reconcile):
    # node-b of seed 001 before node-a made the VG: nothing here can move
    from reconciler.simulate.lockd_tools import LockdCluster
    from reconciler.simulate import demo as d
    cluster = LockdCluster({"node-a": 1, "node-b": 2})
    cluster.add_disk(d.SEED001_LUN, 512 * 2**30)
    node = cluster.node("node-b")
    env = controller.Environment(runner=node, node="node-b", resolve=node.resolve_device,
                                 clock=node.clock)
    fc = forecasting.forecast(loading.load(ROOT / "specs/examples/lvmlockd.toml"), env,
                              simulated=True)
    assert not fc.converged and fc.stops
    assert all(actions.WAITING in s for s in fc.stops[:1]), fc.stops
    assert "stops: " in fc.render()


def test_a_multi_terabyte_move_is_forecast_to_its_end(scenario):
    # a 6 TiB pvmove at the simulator's rate: hours of simulated time, a few passes
    from support import G
    from reconciler.simulate import SimulatedHost
    host = SimulatedHost()
    host.add_device("/dev/sdb", 6200 * G)
    host.add_device("/dev/sdc", 6200 * G)
    host.add_vg("big", ["/dev/sdb", "/dev/sdc"])
    host.add_lv("big", "data", 6144 * G, pvs=["/dev/sdb"])
    sc = scenario(host)
    loaded = sc.spec('[vg.big]\nnodes = ["node-1"]\npvs = ["/dev/sdc"]\n'
                     '[vg.big.lv.data]\nsize = "6144G"\n')
    env = controller.Environment(runner=host, node="node-1", resolve=host.resolve_device,
                                 clock=host.clock)
    fc = forecasting.forecast(loaded, env, simulated=True, max_passes=200)
    assert fc.converged, fc.stops
    assert [(s.pass_no, s.action) for s in fc.steps] == [(1, "MoveExtents"), (2, "ReduceVg")]
    assert fc.steps[0].expected_s > 3600


def test_a_replay_cut_short_says_so(scenario):
    sc = scenario(seed000_host())
    loaded = sc.spec(SEED000_SPEC)
    env = controller.Environment(runner=sc.host, node="node-1", resolve=sc.host.resolve_device,
                                 clock=sc.host.clock)
    fc = forecasting.forecast(loaded, env, simulated=True, max_passes=1)
    assert not fc.converged
    assert fc.stops[-1] == ("the replay ended at its limit of 1 passes, before the host was "
                            "in sync")


SCENARIO_SEEDS = {
    "seed000": (seed000_host, SEED000_SPEC),
    "from-scratch": (lambda: _scratch_host(), """
        [vg.data]
        nodes = ["*"]
        scope = "local"
        pvs = ["/dev/vdb", "/dev/vdc"]
        [vg.data.lv.db]
        size = "300M"
        placement = ["/dev/vdc"]
        [vg.data.lv.logs]
        size = "100M"
        """),
}


def _scratch_host():
    from support import G
    from reconciler.simulate import SimulatedHost
    host = SimulatedHost()
    host.add_device("/dev/vdb", 1 * G)
    host.add_device("/dev/vdc", 1 * G)
    return host


@pytest.mark.parametrize("name", sorted(SCENARIO_SEEDS))
def test_the_scenarios_seed_procedures_forecast_what_their_passes_do(scenario, name):
    build, text = SCENARIO_SEEDS[name]
    forecast_host, real_host = build(), build()
    sc = scenario(real_host)
    loaded = sc.spec(text)
    env = controller.Environment(runner=forecast_host, node="node-1",
                                 resolve=forecast_host.resolve_device, clock=forecast_host.clock)
    fc = forecasting.forecast(loaded, env, simulated=True)
    assert fc.converged and fc.steps
    real_env = controller.Environment(runner=real_host, node="node-1",
                                      resolve=real_host.resolve_device, clock=real_host.clock)
    settled = controller.reconcile_until_settled(loaded, real_env)
    assert settled.exit_code == 0
    ran = [a for a in settled.applied if a.result.outcome.value != "deferred"]
    numbers = sorted({a.pass_no for a in ran})
    real = [[(a.result.step.key, tuple(tuple(c.command.argv) for c in a.result.results))
             for a in ran if a.pass_no == p] for p in numbers]
    assert [[(s.key, s.argv) for s in fc.pass_steps(n)] for n in range(1, fc.passes + 1)] == real


def test_an_operation_in_flight_is_shown_with_the_time_the_hosts_rate_leaves():
    # seed 002's clone mid-copy: md's own counters give its speed, so the time left
    example = demo.HOSTS["seed002"]
    host = example.build("node-1")
    env = controller.Environment(runner=host, node="node-1", resolve=host.resolve_device,
                                 clock=host.clock)
    loaded = loading.load(ROOT / example.spec)
    assert controller.reconcile_once(loaded, env).exit_code == controller.EXIT_PENDING
    host.clock.advance(30.0)
    dry = controller.reconcile_once(loaded, env, dry_run=True)
    fc = forecasting.forecast(loaded, env, simulated=True, first=dry.plan)
    (f,) = fc.in_flight
    assert f.eta is not None and 0 < f.eta < 300
    assert f"  … now: clone vm-db: {f.what} in progress, " in fc.render()
    assert "left at the rate the host shows" in fc.render()
    assert fc.as_dict()["in_flight"][0]["expected_left_s"] == round(f.eta, 1)
    assert fc.converged
