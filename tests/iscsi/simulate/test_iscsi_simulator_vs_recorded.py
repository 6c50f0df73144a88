"""The simulated iSCSI tools against the lab recordings (tests/fixtures/outputs/iscsi/): the
same sequence the recorder ran, on two simulated hosts; each iscsiadm result (exit code,
stdout, stderr) must be the recorded one, and what the observer reads from the simulated
configfs / sysfs must be what it reads from the recorded trees."""

from __future__ import annotations

import json

import pytest
from support import M
from support.iscsi_recorded import DIR, INITIATOR, TARGET, Tree, command, portal

from reconciler.adapters import iscsi
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.simulate.iscsi_model import Fabric

CHAP = "userid = labuser\npassword = labsecret1234\n"

COMPARES = sorted(str(p.relative_to(DIR.parent)) for p in DIR.rglob("*")
                  if p.is_file() and p.name != "INDEX.md")


def _run(host, *argv):
    return host.run(Command(argv=tuple(argv)))


def _same(case: str, res) -> None:
    rec = command(case)
    assert (res.rc, res.stdout, res.stderr) == (rec.rc, rec.stdout, rec.stderr), case


@pytest.fixture
def lab():
    p = portal()
    fab = Fabric()
    a, b = SimulatedHost(seed="a"), SimulatedHost(seed="b")
    fab.join(a)
    fab.join(b, initiator=INITIATOR)
    a.add_device("/dev/vda", 64 * M)
    a.add_device("/dev/vdb", 96 * M)
    a.add_vg("exp", ["/dev/vdb"])
    a.add_lv("exp", "lv0", 32 * M)
    a.md.files["/etc/chap"] = CHAP
    b.md.files["/etc/chap"] = CHAP
    b.md.files["/etc/wrong"] = "userid = labuser\npassword = wrongsecret99\n"
    return a, b, p


def _export(a, p, acl=True):
    _run(a, "modprobe", "-a", *iscsi.LIO_MODULES)
    return a.run(iscsi.lio_apply({"name": "export0", "iqn": TARGET, "portals": [p],
                                  "luns": {"0": "/dev/vda", "1": "/dev/exp/lv0"},
                                  "remove_luns": [], "acls": [INITIATOR] if acl else [],
                                  "chap_file": "/etc/chap", "delete": False}))


def test_the_recorded_sequence(lab):
    a, b, p = lab
    ip = p.split(":")[0]
    bad = ip.rsplit(".", 1)[0] + ".9"
    # configfs before anything is built: the simulator shows no target tree either
    assert iscsi.observe(lambda x: a.read(x), targets=True, sessions=False).targets is None
    assert iscsi.observe_targets(Tree("a_empty"))[0] is None
    assert _export(a, p).ok
    sim, _ = iscsi.observe_targets(lambda x: a.read(x))
    rec, _ = iscsi.observe_targets(Tree("a_exported"))
    assert _shape(sim) == _shape(rec)

    assert iscsi.observe_sessions(Tree("b_none")) == iscsi.observe_sessions(lambda x: b.read(x)) == ()
    _run(b, "modprobe", "-a", *iscsi.INITIATOR_MODULES)
    _same("discovery", _run(b, "iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", ip + ":3260"))
    res = _run(b, "iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", bad + ":3260")
    _same("discovery_unreachable", res)

    node = ("iscsiadm", "-m", "node", "-T", TARGET, "-p", p)
    assert b.run(iscsi.node_chap(p, TARGET, "/etc/wrong")).ok
    _same("login_wrong_chap", _run(b, *node, "--login"))
    assert b.run(iscsi.node_chap(p, TARGET, "/etc/chap")).ok
    _same("login", _run(b, *node, "--login"))
    _same("login_again", _run(b, *node, "--login"))
    with pytest.raises(UnsupportedCommand):  # session_list*.txt: not modelled, refused
        _run(b, "iscsiadm", "-m", "session")

    # by_path.txt: the names udev gave the disks are the simulator's aliases
    listing = command("by_path").stdout
    for lun, dev in ((0, "sda"), (1, "sdb")):
        name = f"ip-{p}-iscsi-{TARGET}-lun-{lun}"
        assert f" {name} -> ../../{dev}\n" in listing
        assert b.resolve_device(f"/dev/disk/by-path/{name}") == b.resolve_device(f"/dev/{dev}")
    sim_s = iscsi.observe_sessions(lambda x: b.read(x))
    rec_s = iscsi.observe_sessions(Tree("b_logged_in", "b_logged_in_blocks"))
    assert [_session(s) for s in sim_s] == [_session(s) for s in rec_s]
    sim, _ = iscsi.observe_targets(lambda x: a.read(x))
    rec, _ = iscsi.observe_targets(Tree("a_with_session"))
    assert _shape(sim) == _shape(rec) and sim[TARGET].sessions == (INITIATOR,)

    _same("login_no_such_target", _run(b, "iscsiadm", "-m", "node", "-T", TARGET + "-nope",
                                       "-p", p, "--login"))
    b.iscsi.nodes[(f"{bad}:3260", TARGET)] = {}  # the recorder made this record with -o new
    res = _run(b, "iscsiadm", "-m", "node", "-T", TARGET, "-p", f"{bad}:3260", "--login")
    _same("login_unreachable", res)
    res = _run(b, *node, "--logout")
    rec = command("logout")
    assert res.rc == rec.rc == 0
    assert res.stdout == rec.stdout.replace("sid: 2", "sid: 1")  # sid counts logins made
    _same("logout_again", _run(b, *node, "--logout"))
    assert iscsi.observe_sessions(lambda x: b.read(x)) == iscsi.observe_sessions(Tree("b_logged_out")) == ()

    a.iscsi.targets[TARGET].acls.clear()
    sim, _ = iscsi.observe_targets(lambda x: a.read(x))
    rec, _ = iscsi.observe_targets(Tree("a_no_acl"))
    assert _shape(sim) == _shape(rec)
    _same("login_not_in_acl", _run(b, *node, "--login"))


def _shape(targets):
    return {iqn: (t.tpg, t.enabled, t.authentication, t.generate_node_acls, t.portals,
                  {n: lun.device for n, lun in t.luns.items()},
                  {i: (a.mapped_luns, a.chap_userid, a.session) for i, a in t.acls.items()})
            for iqn, t in targets.items()}


def _session(s):
    return (s.target, s.portal, s.state, [(d.lun, d.name, d.devno) for d in s.disks])


def test_every_recorded_tree_is_json_with_the_three_tables():
    for p in (DIR / "tree").glob("*.json"):
        d = json.loads(p.read_text())
        assert set(d) == {"files", "dirs", "links"}, p
