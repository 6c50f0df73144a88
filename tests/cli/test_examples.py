"""Every file of specs/examples runs on an embedded simulated host made for it, and
converges (issue 9); a spec with nothing for this node says which nodes it names."""

import json

import pytest

from conftest import ROOT

from reconciler import cli
from reconciler.simulate import demo

EXAMPLES = ROOT / "specs" / "examples"

# (host, extra args, spec file): the commands the README gives
RUNS = [
    ("seed000", (), "specs/demo"),
    ("seed001", (), "specs/examples/lvmlockd.toml"),
    ("seed001", ("--node", "node-b"), "specs/examples/lvmlockd.toml"),
    ("seed002", (), "specs/examples/clone.toml"),
    ("seed004", (), "specs/examples/mirror-then-split.toml"),
    ("iscsi", (), "specs/examples/iscsi.toml"),
    ("cluster", (), "specs/examples/cluster.toml"),
    ("cluster", ("--node", "core-02"), "specs/examples/cluster.toml"),
    ("seed003", (), "specs/examples/drbd.toml"),
    ("seed003", ("--node", "node2"), "specs/examples/drbd.toml"),
]


def test_every_example_file_has_a_host_and_a_run():
    files = {f"specs/examples/{p.name}" for p in EXAMPLES.glob("*.toml")}
    assert files == {spec for _, _, spec in RUNS if spec.startswith("specs/examples/")}
    assert files <= {e.spec for e in demo.HOSTS.values()}


@pytest.mark.parametrize("host, extra, spec", RUNS, ids=[f"{h}{''.join(e)}" for h, e, _ in RUNS])
def test_example_converges_on_its_host(reconcile, host, extra, spec):
    code, out, err = reconcile("--simulate", host, *extra, "--spec", str(ROOT / spec),
                               "--once", "--wait", "--output", "json")
    assert code == 0, err[-3000:]
    doc = json.loads(out)
    assert doc["plan"]["steps"], "the example must have something to show"
    assert doc["final"]["converged"] and doc["warnings"] == []
    done = {a["outcome"] for a in doc["applied"]}
    assert done <= {"done", "started"}, doc["applied"]
    assert len(doc["applied"]) >= len(doc["plan"]["steps"])


def test_clone_example_copies_the_data(reconcile, monkeypatch):
    built = {}
    real = demo.HOSTS["seed002"]

    def build(node):
        built["host"] = real.build(node)
        return built["host"]

    monkeypatch.setitem(demo.HOSTS, "seed002", demo.Example(
        real.name, build, real.node, real.spec, real.about))
    code, out, err = reconcile("--simulate", "seed002", "--spec",
                               str(EXAMPLES / "clone.toml"), "--once", "--wait")
    assert code == 0, out + err
    host = built["host"]
    old, new = "/dev/mapper/oldsan-vm-db", "/dev/mapper/newsan-vm-db"
    size = host.model.device(old).size
    assert host.fingerprint(new, size) == host.fingerprint(old, size)


def test_nothing_for_this_host_names_the_nodes_and_exits_0(reconcile, monkeypatch):
    # No --node: the host's own name. A shared spec may name only some hosts; an explicit
    # --node it never names is an error (tests/cli/test_conventions.py).
    monkeypatch.setattr(cli.socket, "gethostname", lambda: "node-9")
    code, out, err = reconcile("--simulate", "default", "--spec",
                               str(EXAMPLES / "cluster.toml"), "--once")
    assert code == 0
    assert ("warning: nothing in the spec applies to node node-9: it names node(s) "
            "core-01, core-02") in out
    assert "nothing in the spec applies to node node-9" in err


def test_validate_names_the_nodes(reconcile):
    code, out, _ = reconcile("validate", "--spec", str(EXAMPLES / "cluster.toml"))
    assert code == 0 and "node(s) core-01, core-02" in out


def _keep_seed001(monkeypatch) -> dict:
    built = {}
    real = demo.HOSTS["seed001"]

    def build(node):
        built["node"] = real.build(node)
        return built["node"]

    monkeypatch.setitem(demo.HOSTS, "seed001", demo.Example(
        real.name, build, real.node, real.spec, real.about))
    return built


def _modes(cluster, vg: str = "vgsan") -> dict[str, dict[str, str]]:
    lvs = cluster.lvm.vgs[vg].lvs
    return {lv: cluster.locks.holders(lvs[lv].uuid) for lv in ("data", "gfs")}


def test_lvmlockd_example_node_a_creates_the_vg_and_leaves_data_to_node_b(reconcile, monkeypatch):
    built = _keep_seed001(monkeypatch)
    code, out, err = reconcile("--simulate", "seed001", "--spec", str(EXAMPLES / "lvmlockd.toml"),
                               "--once", "--wait")
    assert code == 0, out + err
    node = built["node"]
    assert node.name == "node-a"
    assert [c.argv[0] for c in node.calls if c.mutates] == ["vgcreate", "lvcreate", "lvcreate",
                                                              "lvchange"]
    assert "vgcreate --shared (sanlock) on /dev/mapper/lun01" in out
    assert _modes(node.c) == {"data": {}, "gfs": {"node-a": "sh"}}


def test_lvmlockd_example_node_b_starts_the_lockspace_and_activates(reconcile, monkeypatch):
    built = _keep_seed001(monkeypatch)
    code, out, err = reconcile("--simulate", "seed001", "--node", "node-b", "--spec",
                               str(EXAMPLES / "lvmlockd.toml"), "--once", "--wait")
    assert code == 0, out + err
    node = built["node"]
    assert [c.argv for c in node.calls if c.mutates] == [
        ("vgchange", "--lock-start", "vgsan"), ("lvchange", "-aey", "vgsan/data"),
        ("lvchange", "-asy", "vgsan/gfs")]
    assert "start the lockspace on this node" in out
    assert _modes(node.c) == {"data": {"node-b": "ex"}, "gfs": {"node-a": "sh", "node-b": "sh"}}
    assert "vgsan" in node.c.nodes["node-b"].lockspaces


def test_lvmlockd_example_other_nodes_and_capture_are_refused_by_name(reconcile, tmp_path):
    code, _, err = reconcile("--simulate", "seed001", "--node", "node-c", "--spec",
                             str(EXAMPLES / "lvmlockd.toml"), "--once")
    assert code == 1 and "plays node-a or node-b, not 'node-c'" in err
    code, _, err = reconcile("capture", str(tmp_path / "cap"), "--simulate", "seed001")
    assert code == 1 and "simulated lvmlockd cluster" in err and "Traceback" not in err
