"""Crash at every command (issue 17): seeds 001, 003 and 004 on simulated nodes.

Each seed is a ``Procedure``: a world of simulated nodes (``support.nodes``), and phases, each
one what an operator does (a workload's writes, a cut link) and the spec the nodes are then
given; every node's real pass runs to convergence after each. The procedure is run once
clean to LIST the host-changing commands each node ran; then, for each command on that list
(the parameters are generated, never picked), the procedure runs again with that node
crashing right after that command, rebooting at once (a new reconciler process), and every
node's passes going on to convergence.

What every run must show:

* **no declared data lost**: what the workload wrote before (the simulator's content: device
  fingerprints, DRBD's data fingerprints, LVs' identity and extents) is still there, on the
  node the spec says serves it;
* **never two writers**, checked after every command any node runs: no ``drbdadm primary``
  while the peer is Primary without dual-primary; no LV active on two nodes unless both hold
  it shared; no disk whose LVs are active on both servers of the move;
* **no duplicate file-system UUID left active**: no host with two active copies of one LV
  (a split copy and its origin) when the nodes are done;
* **convergence, or a blocked reason an operator can act on**: a phase ends with every node
  in sync, or with nodes blocked (exit 1) on reasons (never a failed step, an error or an
  exception, nor advice to wipe or discard: nothing was declared expendable); a blocked
  phase ends that run (later phases would start from a state nobody declared), its data is
  still checked.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import M
from support.nodes import Nodes
from test_server_move_three_commits import COMMIT1, COMMIT2, COMMIT3, LUN1, Move

from reconciler import controller
from reconciler.runner import Command
from reconciler.simulate.cluster import Cluster
from reconciler.simulate.drbd_model import CONNECTED
from reconciler.simulate.lockd_tools import dm_name


@dataclass
class Phase:
    name: str
    spec: Callable[["World"], str]
    before: Callable[["World"], None] = lambda w: None
    check: Callable[["World"], None] = lambda w: None  # what holds once converged
    order: tuple[str, ...] | None = None  # the nodes' order in each round
    blocked: bool = False  # the phase ends blocked by design (a split brain)


@dataclass
class World:
    nodes: Nodes
    objects: dict = field(default_factory=dict)  # what the procedure keeps (expected data)
    violations: list[str] = field(default_factory=list)  # "never" invariants broken


@dataclass
class Procedure:
    name: str
    build: Callable[[Path], World]
    phases: list[Phase]
    kept: Callable[[World], list[str]]  # declared data lost: what is missing, if anything
    watch: Callable[[World, str, object], None]  # after every command: two writers?
    duplicates: Callable[[World], list[str]] = lambda w: []


@dataclass
class Run:
    world: World
    ended: str  # "converged", or "blocked in <phase>"
    crashed: str | None = None  # the command the crash came after


ORDERS = ("as given", "reversed", "interleaved")


def run(proc: Procedure, tmp: Path, crash: tuple[str, int] | None = None,
        how: str = "as given") -> Run:
    """The procedure, each phase's rounds in its order ``as given`` (node a first unless the
    phase says otherwise), ``reversed``, or ``interleaved`` (the passes at the same time,
    taking turns command by command)."""
    w = proc.build(tmp)
    nodes = w.nodes
    nodes.watchers.append(lambda node, cmd: proc.watch(w, node, cmd))
    if crash is not None:
        nodes.crash_after(*crash)
    ended = "converged"
    for ph in proc.phases:
        ph.before(w)
        order = ph.order or nodes.order
        out = Nodes.converge(nodes, nodes.spec(ph.spec(w)), max_rounds=120,
                             order=order[::-1] if how == "reversed" else order,
                             interleave=how == "interleaved", reboot_crashed=True)
        _no_error(ph, out)
        w.objects["last"] = out
        if ph.blocked:
            assert all(p.exit_code == controller.EXIT_ERROR for p in out.values()), _show(out)
            continue
        if any(p.exit_code != controller.EXIT_IN_SYNC for p in out.values()):
            ended = f"blocked in {ph.name}: " + "; ".join(
                f"{n}: {b.object}: {b.reason}" for n, p in out.items() for b in p.final.blocked)
            break
        ph.check(w)
    crashed = None
    if crash is not None:
        name, k = crash
        assert nodes.nodes[name].budget is None, f"{name} never ran {k} host-changing commands"
        crashed = " ".join(nodes.changes(name)[k - 1])
    return Run(w, ended, crashed)


def _show(out) -> str:
    return "\n".join(f"{n}: exit {p.exit_code} {p.error or ''}\n{p.final}" for n, p in out.items())


# Advice that gives data up: after a crash nothing was declared expendable, so a reason
# that asks for it would lose what the nodes hold (the house rule: a blocked reason says
# what to check instead). The split brain the procedure makes on purpose is the exception.
GIVES_UP = re.compile(r"\bwipe\b|discard|give (its|their) content up", re.I)


def _no_error(ph: Phase, out) -> None:
    """Blocked is an answer an operator can act on; a failed step, an error, or advice to
    give data up is not."""
    for n, p in out.items():
        assert p.error is None, f"{ph.name}: {n}: {p.error}\n{_show(out)}"
        if p.exit_code == controller.EXIT_ERROR:
            assert p.final.blocked and all(b.reason.strip() for b in p.final.blocked), _show(out)
            for b in p.final.blocked:
                assert ph.blocked or not GIVES_UP.search(b.reason), (
                    f"{ph.name}: {n}: {b.object}: advice that gives data up: {b.reason}")


def assert_safe(proc: Procedure, r: Run) -> None:
    w = r.world
    assert not w.violations, f"two writers ({r.crashed}): {w.violations[:3]}"
    lost = proc.kept(w)
    assert not lost, f"declared data lost ({r.crashed}; {r.ended}): {lost}"
    dup = proc.duplicates(w)
    assert not dup, f"duplicate file systems left active ({r.crashed}; {r.ended}): {dup}"


# -- seed 001: an LV of a shared VG moved between nodes, then grown (lvmlockd) ---------------

LOCKD_VG = """
[vg.vgs]
nodes = ["node-a", "node-b"]
scope = "shared"
create_on = "node-a"
pvs = ["/dev/vda", "/dev/vdb"]
[vg.vgs.lv.gfs]
size = "64M"
placement = ["/dev/vdb"]
activation = {{ "*" = "shared" }}
[vg.vgs.lv.data]
size = "{size}"
activation = {{ "{holder}" = "exclusive", "*" = "inactive" }}
"""


def _lockd_build(tmp: Path) -> World:
    cluster = Cluster()
    c = cluster.join_lockd({"node-a": 1, "node-b": 2})
    cluster.add_shared_disk("/dev/vda", 1024 * M)
    cluster.add_shared_disk("/dev/vdb", 256 * M)
    return World(Nodes(tmp, cluster), {"cluster": c, "lvs": {}})


def _lockd_remember(w: World) -> None:
    """The LVs as created: their identity and where their data is (nothing moves them)."""
    vg = w.objects["cluster"].lvm.vgs["vgs"]
    w.objects["vg"] = vg.uuid
    w.objects["lvs"] = {n: (lv.uuid, *_lockd_at(lv), lv.extents) for n, lv in vg.lvs.items()
                        if lv.visible}


def _lockd_at(lv) -> tuple[str, int]:
    """Where an LV's data starts: its first segment's PV and first extent."""
    pv, start = lv.segments[0].areas[0]
    return pv.device.path, start


def _lockd_holder(w: World, node: str) -> None:
    c = w.objects["cluster"]
    lv = c.lvm.vgs["vgs"].lvs["data"]
    assert dm_name("vgs", "data") in c.nodes[node].dm
    assert c.locks.holders(lv.uuid) == {node: "ex"}
    for n in c.nodes:
        assert dm_name("vgs", "gfs") in c.nodes[n].dm, n


def _lockd_kept(w: World) -> list[str]:
    c = w.objects["cluster"]
    if not w.objects["lvs"]:
        return []
    vg = c.lvm.vgs.get("vgs")
    if vg is None or vg.uuid != w.objects["vg"]:
        return ["VG vgs is gone or was created again"]
    lost = []
    for name, (uuid, pv, start, extents) in w.objects["lvs"].items():
        lv = vg.lvs.get(name)
        if lv is None or (lv.uuid, *_lockd_at(lv)) != (uuid, pv, start) or lv.extents < extents:
            lost.append(f"{name}: was {(uuid, pv, start, extents)}, now "
                        f"{lv and (lv.uuid, *_lockd_at(lv), lv.extents)}")
    return lost


def _lockd_watch(w: World, node: str, cmd) -> None:
    c = w.objects["cluster"]
    vg = c.lvm.vgs.get("vgs")
    if vg is None:
        return
    for lv in vg.lvs.values():
        if not lv.visible:  # lvmlock: sanlock's leases, on every node by design
            continue
        up = [n for n, nd in c.nodes.items() if nd.up and dm_name("vgs", lv.name) in nd.dm]
        modes = c.locks.holders(lv.uuid)
        if len(up) > 1 and any(modes.get(n) != "sh" for n in up):
            w.violations.append(f"after {node}: {cmd}: {lv.name} active on {up}, locks {modes}")
        if "ex" in modes.values() and len(modes) > 1:
            w.violations.append(f"after {node}: {cmd}: {lv.name} locks {modes}")


def _lockd_grown(w: World) -> None:
    _lockd_holder(w, "node-b")
    assert w.objects["cluster"].lvm.vgs["vgs"].lvs["data"].extents == 12


SEED001 = Procedure(
    "seed001", _lockd_build,
    [Phase("create", lambda w: LOCKD_VG.format(size="32M", holder="node-a"),
           check=lambda w: (_lockd_holder(w, "node-a"), _lockd_remember(w))),
     Phase("move to node-b", lambda w: LOCKD_VG.format(size="32M", holder="node-b"),
           check=lambda w: _lockd_holder(w, "node-b")),
     Phase("grow on node-b", lambda w: LOCKD_VG.format(size="48M", holder="node-b"),
           check=_lockd_grown)],
    _lockd_kept, _lockd_watch)


# -- seed 003: DRBD create, first sync, failover, split brain and its resolution ---------------

DRBD = """
[drbd.r0]
protocol = "C"
initial_sync_from = "node-a"
resync_rate = "16M"
{victim}
[drbd.r0.disk]
c_plan_ahead = 0
[drbd.r0.nodes.node-a]
disk = "/dev/vdb"
address = "169.254.101.1"
role = "{role_a}"
[drbd.r0.nodes.node-b]
disk = "/dev/vdb"
address = "169.254.101.2"
role = "{role_b}"
"""


def _drbd_build(tmp: Path) -> World:
    cluster = Cluster()
    for name in ("node-a", "node-b"):
        cluster.add_host(name).add_device("/dev/vdb", 64 * M)
        cluster.join_drbd(name)
    return World(Nodes(tmp, cluster),
                 {"net": cluster.drbd, "expected": None, "primary": "node-a"})


def _res(w: World, node: str):
    return w.objects["net"].nodes[node].by_name("r0")


def _write(w: World, node: str, label: str) -> None:
    net = w.objects["net"]
    net.write(node, _res(w, node).minor, label)
    w.objects["expected"] = _res(w, node).data


def _drbd_serving(w: World, primary: str) -> None:
    other = "node-b" if primary == "node-a" else "node-a"
    p, s = _res(w, primary), _res(w, other)
    assert (p.role, s.role, p.disk, s.disk, p.cstate) == (
        "Primary", "Secondary", "UpToDate", "UpToDate", "Connected"), (p, s)


def _split(w: World) -> None:
    """After the failover: node-b (primary) writes; the link drops and node-b goes on writing;
    someone promotes node-a by hand and writes there; the link comes back: a split brain.
    node-b's data is the one declared."""
    net = w.objects["net"]
    _write(w, "node-b", "b after the failover")
    net.cut("node-a", "node-b")
    _write(w, "node-b", "b during the cut")
    res = net.nodes["node-a"].host.run(Command(argv=("drbdadm", "primary", "r0")))  # by hand
    assert res.ok, res
    net.write("node-a", _res(w, "node-a").minor, "a, promoted by hand")
    net.restore("node-a", "node-b")


def _drbd_kept(w: World) -> list[str]:
    want = w.objects["expected"]
    if want is None:
        return []
    lost = []
    # the declared primary serves the data written before, or (down, not attached) keeps it
    # on its disk's metadata
    node = w.objects["primary"]
    r = _res(w, node)
    meta = w.objects["net"].nodes[node].metadata.get("/dev/vdb")
    have = r.data if r is not None else meta.data if meta is not None else None
    if have != want:
        lost.append(f"{node} holds {have!r}, the data written before is {want!r}")
    return lost


def _drbd_watch(w: World, node: str, cmd) -> None:
    if cmd.argv[:2] != ("drbdadm", "primary") and not (
            cmd.argv[0] == "drbdadm" and "primary" in cmd.argv):
        return
    r = _res(w, node)
    net = w.objects["net"]
    peer = net.peer(net.nodes[node], r) if r is not None else None
    if r is not None and peer is not None and r.role == peer.role == "Primary" \
            and not r.conf.two_primaries:
        w.violations.append(f"{node}: {cmd} while the peer is Primary ({peer.cstate})")


def _mkfs(w: World, node: str) -> None:
    """The workload makes ext4 on /dev/drbd0 (node Primary, peer UpToDate and connected):
    with internal metadata the data area starts at the backing disk's offset 0, so both
    backing disks now show ext4 at 0x438 besides DRBD's signature (issue 17, finding 1)."""
    net = w.objects["net"]
    r = _res(w, node)
    peer = net.peer(net.nodes[node], r)
    assert r.role == "Primary" and r.cstate == "Connected" and peer.disk == "UpToDate"
    for n in net.nodes.values():
        n.host.model.device("/dev/vdb").signature = "ext4"
    _write(w, node, "mkfs.ext4")


def _incident(w: World) -> str:
    """The split brain's incident as both nodes' passes printed it (the declaration names
    the incident it was written for)."""
    found = {m for p in w.objects["last"].values() for b in p.final.blocked
             for m in re.findall(r"SPLIT BRAIN, incident ([0-9A-F]{16})", b.reason)}
    assert len(found) == 1, found
    return found.pop()


def _failover(w: World) -> None:
    _mkfs(w, "node-a")
    _write(w, "node-a", "a before the failover")
    w.objects["primary"] = "node-b"


SEED003 = Procedure(
    "seed003", _drbd_build,
    [Phase("create and first sync", lambda w: DRBD.format(role_a="primary", role_b="secondary",
                                                          victim=""),
           check=lambda w: _drbd_serving(w, "node-a")),
     Phase("failover", lambda w: DRBD.format(role_a="secondary", role_b="primary", victim=""),
           before=_failover, check=lambda w: _drbd_serving(w, "node-b")),
     Phase("split brain", lambda w: DRBD.format(role_a="secondary", role_b="primary",
                                                victim=""),
           before=_split, blocked=True),
     Phase("resolution", lambda w: DRBD.format(role_a="secondary", role_b="primary",
                                               victim=f'split_brain_victim = "node-a@{_incident(w)}"'),
           check=lambda w: (_drbd_serving(w, "node-b"),
                            _eq(_res(w, "node-a").data, w.objects["expected"])))],
    _drbd_kept, _drbd_watch)


def _eq(a, b) -> None:
    assert a == b, (a, b)


# -- seed 004: the whole server move, two hosts on the iSCSI fabric ---------------------------

BOOT = "/dev/vdd"


def _move_build(tmp: Path) -> World:
    m = Move(tmp)
    m.old.fill(BOOT, "boot")
    return World(m, {"move": m, "boot": m.old.fingerprint(BOOT), "lvs": {"root": 48 * M,
                                                                          "srv": 96 * M}})


def _lvs_on(host, vg_name: str) -> dict:
    vg = host.model.vgs.get(vg_name)
    return {} if vg is None else {n: lv for n, lv in vg.lvs.items() if lv.parent is None
                                  and lv.kind != "pvmove"}


def _size(lv) -> int:
    return lv.extents * lv.vg.extent_size


def _move_kept(w: World) -> list[str]:
    m = w.objects["move"]
    lost = []
    if m.old.fingerprint(BOOT) != w.objects["boot"]:
        lost.append("/boot's device was written")
    if w.objects.get("boot copied") and m.old.model.devices.get("/dev/sdb") is not None \
            and not m.old.md.arrays:
        if m.old.fingerprint("/dev/sdb", 64 * M) != w.objects["boot"]:
            lost.append("the /boot clone on LUN 1 differs from /boot")
    # old keeps a complete copy of every LV on its own disk: the way back
    vg0 = m.old.model.vgs.get("vg0")
    for name, size in w.objects["lvs"].items():
        lv = _lvs_on(m.old, "vg0").get(name)
        if vg0 is None or lv is None or _size(lv) < size:
            lost.append(f"old's vg0/{name} is gone or smaller")
            continue
        legs = lv.images or [lv]
        if not any(pvs and all(pv.device.path == "/dev/vda" and not pv.missing for pv in pvs)
                   for pvs in map(_pvs_under, legs)):
            lost.append(f"old's vg0/{name} has no complete copy on /dev/vda")
    return lost


def _pvs_under(lv) -> set:
    """The PVs an LV's extents are on (through raid images and pvmove mirrors)."""
    out = set()
    for seg in lv.segments:
        for area, _ in seg.areas:
            out |= _pvs_under(area) if hasattr(area, "segments") else {area}
    return out


def _active_on(host, path: str) -> list[str]:
    return [f"{vg.name}/{lv.name}" for vg in host.model.vgs.values() for lv in vg.lvs.values()
            if lv.parent is None and lv.active
            and any(pv.device.path == path for pv in _pvs_under(lv))]


def _move_watch(w: World, node: str, cmd) -> None:
    m = w.objects["move"]
    if m.old.crashed or m.new.crashed:
        return
    for link in m.old.iscsi.fabric.links:
        a, b = _active_on(link.initiator, link.disk), _active_on(link.exporter, link.device)
        if a and b:
            w.violations.append(f"after {node}: {cmd}: {link.disk} active on old ({a}) and "
                                f"{link.device} on new ({b})")


def _family(name: str) -> str:
    return re.sub(r"_handover$", "", name)


def _move_duplicates(w: World) -> list[str]:
    m = w.objects["move"]
    dup = []
    for node, host in (("old", m.old), ("new", m.new)):
        seen: dict[str, list[str]] = {}
        for vg in ("vg0", "vg0moved", "vgnew"):
            for name, lv in _lvs_on(host, vg).items():
                if lv.active:
                    seen.setdefault(_family(name), []).append(f"{vg}/{name}")
        dup += [f"{node}: {v}" for v in seen.values() if len(v) > 1]
    return dup


def _copied(w: World) -> None:
    m = w.objects["move"]
    for lv in ("root", "srv"):
        assert sorted({a.device.path for img in m.old.lv("vg0", lv).images
                       for seg in img.segments for a, _ in seg.areas}) == ["/dev/sda", "/dev/vda"]
    assert not m.old.md.arrays
    assert m.old.fingerprint(LUN1, 64 * M) == w.objects["boot"]
    w.objects["boot copied"] = True


def _handed_over(w: World) -> None:
    m = w.objects["move"]
    assert m.old.vg("vg0moved").exported
    assert sorted(m.old.vg("vg0moved").lvs) == ["root", "srv"]
    for lv in ("root", "srv"):
        assert m.old.lv("vg0", lv).kind == "linear"


def _taken_over(w: World) -> None:
    m = w.objects["move"]
    vg = m.new.vg("vgnew")
    assert not vg.exported and not vg.missing_pvs
    assert _size(m.new.lv("vgnew", "srv")) == 200 * M
    assert all(m.new.lv("vgnew", lv).is_active for lv in ("root", "srv"))
    assert m.old.lv("vg0", "srv").is_active


SEED004 = Procedure(
    "seed004", _move_build,
    [Phase("commit 1: export, copies, /boot clone", lambda w: COMMIT1, order=("new", "old"),
           check=_copied),
     Phase("commit 2: handover", lambda w: COMMIT2, order=("new", "old"), check=_handed_over),
     Phase("commit 3: logout, takeover, grow", lambda w: COMMIT3, order=("old", "new"),
           before=lambda w: w.objects["move"].new.grow_device("/dev/vdb", 1024 * M),
           check=_taken_over)],
    _move_kept, _move_watch, _move_duplicates)


# -- the matrix ------------------------------------------------------------------------------

PROCEDURES = {p.name: p for p in (SEED001, SEED003, SEED004)}


@functools.cache
def listing(name: str) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    """(node, n, argv) of every host-changing command the clean procedure ran."""
    with tempfile.TemporaryDirectory() as tmp:
        r = run(PROCEDURES[name], Path(tmp))
        return tuple((node, i, argv) for node in r.world.nodes.nodes
                     for i, argv in enumerate(r.world.nodes.changes(node), 1))


def _id(case) -> str:
    node, i, argv = case
    if node == "-":
        return "listing-failed"
    words = [argv[0].rsplit("/", 1)[-1], *argv[1:]]  # no interpreter path in an id
    text = re.sub(r"[^A-Za-z0-9_./=:-]+", "_", " ".join(words))
    return f"{node}-{i:02d}-{text[:70]}"


def pytest_generate_tests(metafunc):
    if "crash_case" in metafunc.fixturenames:
        name = metafunc.function.__name__.split("_")[-1]
        try:
            cases = listing(name)
        except BaseException as exc:  # noqa: BLE001 - one failing case says why, no skip
            cases = (("-", 0, (f"the clean {name} procedure failed: {exc!r}"[:2000],)),)
        metafunc.parametrize("crash_case", cases, ids=[_id(c) for c in cases])


@pytest.mark.parametrize("name", sorted(PROCEDURES))
def test_the_procedure_runs_clean_and_changes_the_hosts(name, tmp_path):
    r = run(PROCEDURES[name], tmp_path)
    assert r.ended == "converged", r.ended
    assert_safe(PROCEDURES[name], r)
    assert listing(name) and {n for n, _, _ in listing(name)} == set(r.world.nodes.nodes)


@pytest.mark.parametrize("how", ORDERS[1:])
@pytest.mark.parametrize("name", sorted(PROCEDURES))
def test_the_procedure_in_every_order(name, how, tmp_path):
    """B first, and both at the same time: the same end, or a wait, never an error."""
    r = run(PROCEDURES[name], tmp_path, how=how)
    assert r.ended == "converged", r.ended
    assert_safe(PROCEDURES[name], r)


def _crash(name: str, crash_case, tmp_path) -> None:
    node, i, argv = crash_case
    if node == "-":
        pytest.fail(argv[0])
    r = run(PROCEDURES[name], tmp_path, crash=(node, i))
    assert r.crashed == " ".join(argv)
    assert_safe(PROCEDURES[name], r)


def test_crash_at_every_command_seed001(crash_case, tmp_path):
    _crash("seed001", crash_case, tmp_path)


def test_crash_at_every_command_seed003(crash_case, tmp_path):
    _crash("seed003", crash_case, tmp_path)


def test_crash_at_every_command_seed004(crash_case, tmp_path):
    _crash("seed004", crash_case, tmp_path)


# -- the checks can fail ---------------------------------------------------------------------

def _first_phases(proc: Procedure, n: int) -> Procedure:
    import dataclasses
    return dataclasses.replace(proc, phases=proc.phases[:n])


def _cmd(*argv: str):
    return Command(argv=argv)


def test_the_checks_see_what_they_are_for(tmp_path):
    for d in "134":
        (tmp_path / d).mkdir()
    # seed 001: data activated on node-a behind lvmlockd's back; then removed
    r = run(SEED001, tmp_path / "1")
    c = r.world.objects["cluster"]
    c.nodes["node-a"].dm[dm_name("vgs", "data")] = c.nodes["node-b"].dm[dm_name("vgs", "data")]
    _lockd_watch(r.world, "node-a", _cmd("lvchange", "-aey", "vgs/data"))
    assert "data active on ['node-a', 'node-b']" in r.world.violations[0]
    del c.lvm.vgs["vgs"].lvs["data"]
    assert _lockd_kept(r.world) and _lockd_kept(r.world)[0].startswith("data: was")
    # seed 003: a promotion while the peer is Primary; the declared primary's data replaced
    r = run(SEED003, tmp_path / "3")
    _res(r.world, "node-a").role = "Primary"
    _drbd_watch(r.world, "node-a", _cmd("drbdadm", "primary", "r0"))
    assert "while the peer is Primary" in r.world.violations[0]
    _res(r.world, "node-b").data = "something else"
    assert _drbd_kept(r.world)
    # seed 004: old's copy on the LUN active on new too; /boot written; a split copy active
    r = run(_first_phases(SEED004, 1), tmp_path / "4")
    m = r.world.objects["move"]
    seen_on_new = m.new.model.vgs["vg0"].lvs["root"]
    seen_on_new.active = True
    _move_watch(r.world, "new", _cmd("lvchange", "-ay", "vg0/root"))
    assert "active on old (['vg0/root', 'vg0/srv'])" in r.world.violations[0]
    m.old.write(BOOT, 0, b"over")
    assert "/boot's device was written" in _move_kept(r.world)
    m.old.model.vgs["vg0"].lvs["srv"].name = "root_handover"  # (a stand-in, active)
    m.old.model.vgs["vg0"].lvs["root_handover"] = m.old.model.vgs["vg0"].lvs.pop("srv")
    assert _move_duplicates(r.world) == ["old: ['vg0/root', 'vg0/root_handover']"]
